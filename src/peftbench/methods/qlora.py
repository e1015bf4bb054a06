"""QLoRA (Dettmers et al., 2023): LoRA on a base model loaded in 4-bit NF4 through bitsandbytes.

The base is quantized while it loads (`loading_options`), with double quantization and bf16
compute; the task head stays in full precision (transformers keeps a model's last module
unquantized). bitsandbytes needs a CUDA GPU, so a run asking for none is refused before submission.
Untested here: this machine has neither a GPU nor bitsandbytes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from peftbench.methods.base import MethodParams, register_method
from peftbench.methods.lora import Lora, LoraParams

if TYPE_CHECKING:
    from torch import nn

    from peftbench.core.spec import ResourceRequest
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel


@register_method
class QLora(Lora):
    name = "qlora"
    Params = LoraParams
    description = "LoRA on a 4-bit NF4-quantized, frozen base model (bitsandbytes; CUDA only)."

    def unsupported_reason(
        self, traits: FamilyTraits, params: MethodParams, resources: ResourceRequest
    ) -> str | None:
        if resources.gpus == 0:
            return (
                "QLoRA needs a CUDA GPU (bitsandbytes 4-bit); this run asks for resources.gpus: 0. "
                "Give the method block resources: {gpus: 1}, or use 'lora' on CPU"
            )
        return None

    def loading_options(self, params: MethodParams) -> dict[str, Any]:
        import torch
        from transformers import BitsAndBytesConfig

        return {
            "quantization_config": BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            ),
            # Each process of a multi-GPU run keeps its own 4-bit copy on its own GPU.
            "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))},
        }

    def prepare(self, loaded: LoadedModel, params: MethodParams) -> nn.Module:
        from peft import prepare_model_for_kbit_training

        # Norms and head in fp32 and the base frozen; gradient checkpointing stays the Trainer's
        # switch (training.gradient_checkpointing), as for every other method.
        prepare_model_for_kbit_training(loaded.model, use_gradient_checkpointing=False)
        return super().prepare(loaded, params)
