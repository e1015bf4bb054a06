"""Build the DeepSpeed ops the runs need, once, before any run does: `cpu_adam` (zero3_offload),
and on a CPU-only machine DeepSpeed's shared-memory collectives (`deepspeed_shm_comm`).

    .venv/bin/python scripts/build_deepspeed_ops.py        # `make deepspeed-ops`; CI runs it first

The image prebuilds them into DeepSpeed itself (DS_BUILD_CPU_ADAM=1 at install, apptainer/peftbench.def).
A venv installed from the lock has none prebuilt: this compiles them with the machine's g++ into
TORCH_EXTENSIONS_DIR (default ~/.cache/torch_extensions), where DeepSpeed then loads them without
compiling again (torch still asks `ninja` whether they are current: the same ninja must be on PATH).
Run before the tests, it keeps the compile out of the first zero3_offload run and out of every
test's time. `peftbench doctor` says whether each op loads without compiling.
"""

from __future__ import annotations

import sys
import time


def needed_ops() -> list[str]:
    """The ops of our engines (core.engines.DEEPSPEED_OPS), plus DeepSpeed's CPU collectives on CPU."""
    from deepspeed.accelerator import get_accelerator

    from peftbench.core.engines import DEEPSPEED_OPS

    ops = {op for engine_ops in DEEPSPEED_OPS.values() for op in engine_ops}
    if get_accelerator().device_name() == "cpu":  # every DeepSpeed run on CPU joins through it
        ops.add("deepspeed_shm_comm")
    return sorted(ops)


def main() -> int:
    from deepspeed.ops.op_builder.all_ops import ALL_OPS

    for name in needed_ops():
        start = time.perf_counter()
        builder = ALL_OPS[name]
        if not builder.is_compatible(verbose=True):
            print(f"{name}: not compatible with this machine", file=sys.stderr)
            return 1
        builder.load(verbose=False)
        print(f"{name}: ready ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
