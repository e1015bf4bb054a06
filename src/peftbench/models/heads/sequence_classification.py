"""A decoder's sequence classification, pooled at the last token the attention mask attends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.models.heads.inputs import attended_last_positions

if TYPE_CHECKING:
    import torch


class DecoderForSequenceClassification:
    """A decoder's XForSequenceClassification, pooling the last token the attention mask attends.

    transformers' own head finds the last token that is not the pad token in `input_ids`; peft's
    prompt tuning and p-tuning give `inputs_embeds` instead, and the head then takes the last
    position, a padding token in every row shorter than its batch's longest (right padding). The
    mask says where each row's text ends whatever the input, and with any padding side. Prefix
    tuning needs `past_key_values` in this signature: peft hands it the model's `forward` only then.
    """

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        import torch
        from transformers.modeling_outputs import SequenceClassifierOutputWithPast

        outputs = getattr(self, self.base_model_prefix)(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        logits = self.score(hidden[rows, attended_last_positions(attention_mask, hidden)])
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
