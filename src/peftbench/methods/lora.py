"""LoRA (Hu et al., 2021) through peft's LoraConfig, with rsLoRA and DoRA as switches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from peftbench.methods.base import MethodParams, added_param, register_method
from peftbench.methods.peft_adapter import PeftMethod
from peftbench.models.families import family_traits

if TYPE_CHECKING:
    from torch import nn

    from peftbench.models.loading import LoadedModel

TargetModules = list[str] | Literal["all-linear", "attention"] | None


class LoraParams(MethodParams):
    r: int = Field(8, gt=0, description="Rank of the update matrices.")
    lora_alpha: float = Field(16, gt=0, description="Scaling numerator: the update is scaled by alpha / r.")
    lora_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: TargetModules = Field(
        None,
        description="Module names to adapt; 'attention' (the family's attention projections); "
        "'all-linear'; or None for peft's default per architecture.",
    )
    bias: Literal["none", "lora_only", "all"] = Field("none", description="Which biases also train.")
    use_rslora: bool | None = added_param("Rank-stabilised scaling alpha / sqrt(r) (default: off).")
    use_dora: bool | None = added_param(
        "DoRA: learn each weight's magnitude apart from its direction (default: off)."
    )


def target_modules_for(value: TargetModules, model: nn.Module) -> list[str] | str | None:
    """Our `target_modules` as peft's: the 'attention' preset becomes the family's module names."""
    if value != "attention":
        return value
    try:
        traits = family_traits(model.config.model_type, "target_modules 'attention'")  # type: ignore[union-attr]
    except ValueError as err:
        raise ValueError(f"{err}; give the module names as a list.") from None
    return list(traits.attention_modules)


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
            target_modules=target_modules_for(params.target_modules, loaded.model),
            bias=params.bias,
            use_rslora=bool(params.use_rslora),
            use_dora=bool(params.use_dora),
        )
