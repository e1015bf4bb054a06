"""Token classification (one tag per token) whose tags stay on their tokens under virtual tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.models.heads.inputs import given_inputs

if TYPE_CHECKING:
    import torch


class VirtualTokensForTokenClassification:
    """XForTokenClassification whose tags stay on their tokens when prompt tuning or p-tuning prepends
    virtual tokens.

    peft feeds those methods' virtual tokens in `inputs_embeds` before the text, so the head returns
    one tag per virtual token too, and the loss against one label per text token fails (or, with
    matching lengths, would misalign). The text's tags are the last `labels.shape[1]` positions: the
    rest are dropped before the loss. Without labels nothing tells the lengths apart: all are returned.
    The mixed class keeps "ForTokenClassification" in its name: transformers picks the loss by class
    name.
    """

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """The inputs are named: the Trainer keeps only the dataset columns `forward` names."""
        inputs = given_inputs(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
        )
        outputs = super().forward(**inputs, **kwargs)  # type: ignore[misc]
        if labels is None:
            return outputs
        outputs.logits = outputs.logits[:, -labels.shape[1] :].contiguous()
        outputs.loss = self.loss_function(
            logits=outputs.logits,
            labels=labels,
            config=self.config,
            num_items_in_batch=kwargs.get("num_items_in_batch"),
        )
        return outputs
