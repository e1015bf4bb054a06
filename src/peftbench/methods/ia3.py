"""(IA)³ (Liu et al., 2022): learned vectors that rescale keys, values and feed-forward activations.

Through peft's IA3Config. The presets follow the paper: keys and values are scaled on their output,
the feed-forward block on the input of its down projection. Where a family fuses its attention
projections into one layer (gpt2, gpt_neox, modernbert), that layer is scaled whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from peftbench.methods.base import MethodParams, register_method
from peftbench.methods.peft_adapter import PeftMethod

if TYPE_CHECKING:
    from torch import nn

    from peftbench.models.loading import LoadedModel

_BERT_LIKE = (("key", "value"), (r"layer\.\d+\.output\.dense",))  # not attention.output.dense
_LLAMA_LIKE = (("k_proj", "v_proj"), ("down_proj",))

# transformers model_type -> (attention modules, feed-forward modules): module-name endings (regex).
IA3_MODULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "camembert", "electra"), _BERT_LIKE),
    "deberta-v2": (("key_proj", "value_proj"), (r"layer\.\d+\.output\.dense",)),
    "distilbert": (("k_lin", "v_lin"), ("lin2",)),
    "modernbert": (("attn.Wqkv",), ("mlp.Wo",)),
    "gpt2": (("c_attn",), (r"mlp\.c_proj",)),
    "gpt_neox": (("query_key_value",), ("dense_4h_to_h",)),
    **dict.fromkeys(("llama", "mistral", "qwen2", "gemma"), _LLAMA_LIKE),
    **dict.fromkeys(("t5", "mt5"), (("k", "v"), ("wo",))),
    "bart": (("k_proj", "v_proj"), ("fc2",)),
}


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
    family = model.config.model_type  # type: ignore[union-attr]
    if family not in IA3_MODULES:
        raise ValueError(
            f"IA3 has no preset for model type {family!r} (presets: {', '.join(sorted(IA3_MODULES))}); "
            "give target_modules and feedforward_modules."
        )
    attention, feedforward = IA3_MODULES[family]
    return ending_pattern(attention + feedforward), ending_pattern(feedforward)


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
