"""Prompt tuning (Lester et al., 2021): trainable virtual-token embeddings, through peft."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from peftbench.methods.base import MethodParams, register_method
from peftbench.methods.peft_adapter import PeftMethod

if TYPE_CHECKING:
    from peftbench.models import LoadedModel


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
class PromptTuning(PeftMethod):
    name = "prompt_tuning"
    Params = PromptTuningParams
    description = "Learned virtual tokens prepended to the input; the model stays frozen."

    def peft_config(self, loaded: LoadedModel, params: PromptTuningParams) -> Any:  # type: ignore[override]
        from peft import PromptTuningConfig, PromptTuningInit

        text = params.init == "text"
        return PromptTuningConfig(
            num_virtual_tokens=params.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.TEXT if text else PromptTuningInit.RANDOM,
            prompt_tuning_init_text=params.init_text if text else None,
            tokenizer_name_or_path=loaded.source_path if text else None,
        )
