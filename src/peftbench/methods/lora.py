"""LoRA (Hu et al., 2021) through peft's LoraConfig."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from peftbench.methods.base import MethodParams, register_method
from peftbench.methods.peft_adapter import PeftMethod

if TYPE_CHECKING:
    from peftbench.models import LoadedModel


class LoraParams(MethodParams):
    r: int = Field(8, gt=0, description="Rank of the update matrices.")
    lora_alpha: float = Field(16, gt=0, description="Scaling numerator: the update is scaled by alpha / r.")
    lora_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None,
        description="Module names to adapt; 'all-linear'; or None for peft's default per architecture.",
    )
    bias: Literal["none", "lora_only", "all"] = Field("none", description="Which biases also train.")


@register_method
class Lora(PeftMethod):
    name = "lora"
    Params = LoraParams
    description = "Low-rank updates on chosen linear layers; the base stays frozen."

    def peft_config(self, loaded: LoadedModel, params: LoraParams) -> Any:  # type: ignore[override]
        from peft import LoraConfig

        return LoraConfig(
            r=params.r,
            lora_alpha=params.lora_alpha,
            lora_dropout=params.lora_dropout,
            target_modules=params.target_modules,
            bias=params.bias,
        )
