"""Fine-tuning methods, one module each, all registered in METHODS."""

from peftbench.methods import adalora, bitfit, full, ia3, lora, none, prompts, qlora
from peftbench.methods.base import METHODS, Method, MethodParams, register_method

__all__ = [
    "METHODS",
    "Method",
    "MethodParams",
    "adalora",
    "bitfit",
    "full",
    "ia3",
    "lora",
    "none",
    "prompts",
    "qlora",
    "register_method",
]
