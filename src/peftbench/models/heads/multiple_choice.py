"""Multiple choice for a decoder-only LM, for which transformers has no XForMultipleChoice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.models.heads.inputs import attended_last_positions

if TYPE_CHECKING:
    import torch


class DecoderForMultipleChoice:
    """Multiple choice for a decoder-only LM (transformers has none), mixed over XForSequenceClassification.

    Takes input_ids/attention_mask of shape [examples, choices, length], like transformers'
    encoder XForMultipleChoice. Each (context, choice) sequence gets one score from the head
    (`score`, num_labels=1) on the hidden state of its last non-padding token; the scores of an
    example's choices are its logits; the loss is cross-entropy over them.
    """

    accepts_loss_kwargs = False  # the loss is a mean over examples: the Trainer divides for accumulation

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        import torch
        from torch.nn.functional import cross_entropy
        from transformers.modeling_outputs import MultipleChoiceModelOutput

        given = input_ids if input_ids is not None else inputs_embeds
        examples, choices = given.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(given.shape[:3], dtype=torch.long, device=given.device)
        mask = attention_mask.flatten(0, 1)
        hidden = getattr(self, self.base_model_prefix)(
            input_ids=input_ids.flatten(0, 1) if input_ids is not None else None,
            inputs_embeds=inputs_embeds.flatten(0, 1) if inputs_embeds is not None else None,
            attention_mask=mask,
            **kwargs,
        ).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        pooled = hidden[rows, attended_last_positions(mask, hidden)]
        logits = self.score(pooled).view(examples, choices)
        loss = cross_entropy(logits.float(), labels) if labels is not None else None
        return MultipleChoiceModelOutput(loss=loss, logits=logits)
