"""GPU memory a run needs, estimated before submission (the groundwork of the memory planner).

The ZeRO-3 figure follows DeepSpeed's own estimate for model states
(`estimate_zero3_model_states_mem_needs`: about 18 bytes per parameter shared across the GPUs, plus
4 bytes per parameter of the largest layer, which every GPU gathers whole). Parameter counts come
from the model's config alone, built on torch's meta device, so no weights are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParameterCount:
    total: int
    largest_layer: int  # the biggest single weight tensor (usually the embedding)


def count_from_config(config: Any) -> ParameterCount:
    """Exact parameter counts of a transformers config, without allocating any weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = (
        AutoModelForCausalLM
        if getattr(config, "is_decoder", False) or _is_causal(config)
        else (AutoModelForSequenceClassification)
    )
    with torch.device("meta"):
        model = auto.from_config(config)
    sizes = {id(p): p.numel() for p in model.parameters()}  # tied weights counted once
    return ParameterCount(total=sum(sizes.values()), largest_layer=max(sizes.values()))


def _is_causal(config: Any) -> bool:
    return any(a.endswith("ForCausalLM") for a in getattr(config, "architectures", None) or [])


def zero3_model_states_bytes(
    params: ParameterCount, gpus_per_node: int, nodes: int = 1, offload: bool = False
) -> int:
    """Per-GPU bytes of ZeRO-3 model states (fp16/bf16 weights + grads, fp32 master, Adam moments).

    With CPU offload of parameters and optimizer, only the largest layer's gathered copy stays on GPU.
    """
    gathered = 4 * params.largest_layer
    if offload:
        return gathered
    return gathered + 18 * params.total // (gpus_per_node * nodes)
