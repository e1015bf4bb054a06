"""Prompt-learning methods through peft: virtual tokens the frozen model reads with its input.

- prompt tuning (Lester et al., 2021): the virtual tokens' embeddings train;
- p-tuning (Liu et al., 2021): the embeddings come from a small trained MLP (the prompt encoder);
- prefix tuning (Li & Liang, 2021): trained keys and values at every layer, given to the model
  as past_key_values, so only families whose attention takes them can use it.

What trains is a prompt, not a change to the weights: none can be merged into a parent model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from peftbench.core.method_traits import MethodTraits
from peftbench.methods.base import MethodParams, register_method
from peftbench.methods.peft_adapter import PeftMethod

if TYPE_CHECKING:
    from torch import nn

    from peftbench.core.spec import ResourceRequest
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel


class PromptLearning(PeftMethod):
    """Fills in what peft cannot read from every model config (e.g. distilbert's `dim`)."""

    mergeable = False
    traits = MethodTraits(adds_virtual_tokens=True)

    @staticmethod
    def sized_for(config: Any, model: nn.Module, token_dim: int | None = None) -> Any:
        """`config` with token_dim (the width of one virtual token) and num_attention_heads set.

        Virtual tokens join the input embeddings, whose width can differ from the hidden size
        (electra-small: 128 vs 256).
        """
        config.token_dim = token_dim or model.get_input_embeddings().embedding_dim  # type: ignore[operator]
        config.num_attention_heads = getattr(model.config, "num_attention_heads", None)
        return config


class PromptTuningParams(MethodParams):
    num_virtual_tokens: int = Field(20, gt=0, description="Length of the learned soft prompt.")
    init: Literal["random", "text"] = Field("random", description="Start from random vectors or a text.")
    init_text: str | None = Field(
        None, description="The text whose embeddings start the prompt (init: text)."
    )

    @model_validator(mode="after")
    def _text_given(self) -> PromptTuningParams:
        if self.init == "text" and not self.init_text:
            raise ValueError("init 'text' needs init_text")
        return self


@register_method
class PromptTuning(PromptLearning):
    name = "prompt_tuning"
    Params = PromptTuningParams
    description = "Learned virtual tokens prepended to the input; the model stays frozen."

    def peft_config(self, loaded: LoadedModel, params: PromptTuningParams) -> Any:  # type: ignore[override]
        from peft import PromptTuningConfig, PromptTuningInit

        text = params.init == "text"
        config = PromptTuningConfig(
            num_virtual_tokens=params.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.TEXT if text else PromptTuningInit.RANDOM,
            prompt_tuning_init_text=params.init_text if text else None,
            tokenizer_name_or_path=loaded.source_path if text else None,
        )
        return self.sized_for(config, loaded.model)


class PTuningParams(MethodParams):
    num_virtual_tokens: int = Field(20, gt=0, description="Number of virtual tokens.")
    encoder_hidden_size: int | None = Field(
        None, gt=0, description="Hidden size of the prompt encoder's MLP (default: the token width)."
    )


@register_method
class PTuning(PromptLearning):
    name = "p_tuning"
    Params = PTuningParams
    description = "Virtual tokens produced by a trained MLP prompt encoder; the model stays frozen."

    def peft_config(self, loaded: LoadedModel, params: PTuningParams) -> Any:  # type: ignore[override]
        from peft import PromptEncoderConfig

        config = self.sized_for(
            PromptEncoderConfig(num_virtual_tokens=params.num_virtual_tokens), loaded.model
        )
        config.encoder_hidden_size = params.encoder_hidden_size or config.token_dim
        return config


class PrefixTuningParams(MethodParams):
    num_virtual_tokens: int = Field(20, gt=0, description="Length of the prefix at every layer.")
    encoder_hidden_size: int | None = Field(
        None,
        gt=0,
        description="If set, the prefix comes from an MLP of this hidden size (prefix_projection); "
        "default: the prefix itself trains.",
    )


@register_method
class PrefixTuning(PromptLearning):
    name = "prefix_tuning"
    Params = PrefixTuningParams
    description = "Trained keys and values prepended at every attention layer; the model stays frozen."

    def unsupported_reason(
        self, traits: FamilyTraits, params: MethodParams, resources: ResourceRequest
    ) -> str | None:
        if not traits.takes_past_key_values:
            return (
                "its attention takes no past_key_values, which prefix tuning needs; "
                "use p_tuning or prompt_tuning (virtual tokens on the input) instead"
            )
        return None

    def peft_config(self, loaded: LoadedModel, params: PrefixTuningParams) -> Any:  # type: ignore[override]
        from peft import PrefixTuningConfig

        projected = params.encoder_hidden_size is not None
        config = PrefixTuningConfig(
            num_virtual_tokens=params.num_virtual_tokens,
            prefix_projection=projected,
            encoder_hidden_size=params.encoder_hidden_size if projected else None,
        )
        # The prefix holds keys and values: its width is the hidden size, not the embeddings'.
        return self.sized_for(config, loaded.model, token_dim=loaded.model.config.hidden_size)  # type: ignore[union-attr]
