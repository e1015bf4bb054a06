"""Fine-tuning methods, one module each, all registered in METHODS."""

from peftbench.methods import bitfit, full, lora, prompts
from peftbench.methods.base import METHODS, Method, MethodParams, register_method

__all__ = [
    "METHODS",
    "Method",
    "MethodParams",
    "bitfit",
    "full",
    "lora",
    "prompts",
    "register_method",
]
