"""Zero-shot multiple choice as lm-evaluation-harness defines it: each choice's log-likelihood."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.models.heads.inputs import IGNORED

if TYPE_CHECKING:
    import torch


class DecoderForChoiceLikelihood:
    """A decoder's causal LM that scores each choice by its log-likelihood after the context.

    Done inside `forward` so that the Trainer's own evaluation and prediction give the task's metrics.

    Batch: one row per (example, choice), an example's choices in consecutive rows: input_ids and
    attention_mask [rows, length]; `target_ids` [rows, length], the choice's tokens where they
    stand and IGNORED elsewhere (context, padding); `choice_lengths` [examples, choices, 2], each
    choice's length in characters and in UTF-8 bytes; `choice_label` [examples], the gold choice
    (not `labels`, which peft's prompt learning would extend as if it were one label per token).

    Output: logits [examples, choices, 3], each choice's summed token log-probability, and that
    divided by its length in characters and in bytes; loss: the causal-LM loss (mean per token)
    on the gold choice's tokens only. Without `target_ids` this is the plain causal LM.
    Prompt-learning peft methods put virtual tokens before the input: targets are aligned to the
    right end of the logits, which keeps them in place.
    """

    accepts_loss_kwargs = False  # the loss is a mean over the batch's gold tokens

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        target_ids: torch.Tensor | None = None,
        choice_lengths: torch.Tensor | None = None,
        choice_label: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        import torch
        from torch.nn.functional import cross_entropy, pad
        from transformers.modeling_outputs import MultipleChoiceModelOutput

        causal_lm = super().forward  # type: ignore[misc]
        if target_ids is None or choice_lengths is None:
            return causal_lm(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        kwargs["use_cache"] = False
        logits = causal_lm(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
        targets = pad(target_ids, (logits.shape[1] - target_ids.shape[1], 0), value=IGNORED)[:, 1:]
        token_logprobs = -cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORED, reduction="none"
        ).view(targets.shape)
        examples, choices = choice_lengths.shape[:2]
        sums = token_logprobs.sum(-1).view(examples, choices)
        lengths = choice_lengths.to(sums.dtype)
        scores = torch.stack([sums, sums / lengths[..., 0], sums / lengths[..., 1]], dim=-1)
        loss = None
        if choice_label is not None:
            gold = torch.arange(examples, device=sums.device) * choices + choice_label
            loss = -token_logprobs[gold].sum() / targets[gold].ne(IGNORED).sum().clamp(min=1)
        return MultipleChoiceModelOutput(loss=loss, logits=scores)
