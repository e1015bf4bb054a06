import logging

__version__ = "0.1.0"

# peft imports bitsandbytes when it is installed; on a CPU machine bitsandbytes then warns that it
# cannot fetch an optional 4-bit CPU kernel from the hub. QLoRA runs only on GPUs, so the warning
# says nothing about any peftbench run and would only clutter every run's log.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
