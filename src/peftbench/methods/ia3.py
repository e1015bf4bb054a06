"""(IA)³ (Liu et al., 2022): learned vectors that rescale keys, values and feed-forward activations.

Through peft's IA3Config. The presets (models/families.py) follow the paper: keys and values are
scaled on their output, the feed-forward block on the input of its down projection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from peftbench.methods.base import MethodParams, register_method
from peftbench.methods.peft_adapter import PeftMethod
from peftbench.models.families import family_traits

if TYPE_CHECKING:
    from torch import nn

    from peftbench.models.loading import LoadedModel


class Ia3Params(MethodParams):
    target_modules: list[str] | None = Field(
        None, description="Module names to rescale (default: the family's preset, see docs/methods.md)."
    )
    feedforward_modules: list[str] | None = Field(
        None, description="Those of target_modules scaled on their input (given with target_modules)."
    )

    @model_validator(mode="after")
    def _given_together(self) -> Ia3Params:
        if (self.target_modules is None) != (self.feedforward_modules is None):
            raise ValueError(
                "give target_modules and feedforward_modules together (or neither, for the preset)"
            )
        extra = set(self.feedforward_modules or ()) - set(self.target_modules or ())
        if extra:
            raise ValueError(f"feedforward_modules {sorted(extra)} are not in target_modules")
        return self


def ending_pattern(endings: tuple[str, ...] | list[str]) -> str:
    """A regex that peft full-matches against module names: any name ending in one of `endings`."""
    return rf".*\.(?:{'|'.join(endings)})"


def ia3_modules(model: nn.Module) -> tuple[str, str]:
    """(target, feed-forward) module patterns of the model's family preset."""
    try:
        traits = family_traits(model.config.model_type, "IA3")  # type: ignore[union-attr]
    except ValueError as err:
        raise ValueError(f"{err}; give target_modules and feedforward_modules.") from None
    return (
        ending_pattern(traits.ia3_attention + traits.ia3_feedforward),
        ending_pattern(traits.ia3_feedforward),
    )


@register_method
class Ia3(PeftMethod):
    name = "ia3"
    Params = Ia3Params
    description = "Learned rescaling vectors on keys, values and feed-forward activations."

    def peft_config(self, loaded: LoadedModel, params: Ia3Params) -> Any:  # type: ignore[override]
        from peft import IA3Config

        if params.target_modules is None:
            target, feedforward = ia3_modules(loaded.model)
            return IA3Config(target_modules=target, feedforward_modules=feedforward)
        return IA3Config(target_modules=params.target_modules, feedforward_modules=params.feedforward_modules)
