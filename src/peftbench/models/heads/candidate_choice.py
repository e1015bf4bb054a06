"""A head that picks one of each example's own, varying number of candidates (ReCoRD's entities).

Each (context, candidate) sequence gets one score from the family's sequence-classification head
(num_labels=1; decoders pool their last attended token, as DecoderForSequenceClassification). A
batch holds input_ids/attention_mask [examples, candidates, length], every example's candidate
list padded to the batch's longest; `labels` [examples, candidates, 2] holds each candidate's exact
match and token F1 against the example's gold answers, and PADDED on a padded candidate.

Loss: the marginal log-likelihood of the gold candidates (exact match 1) under a softmax over the
example's real candidates; padded ones are masked out. An example whose candidates hold no gold
answer adds nothing. Logits: each candidate's score, padded candidates included (the metrics mask
them by their PADDED labels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.models.heads.inputs import IGNORED, given_inputs

if TYPE_CHECKING:
    import torch

PADDED = IGNORED  # both labels of a padded candidate: no loss or metric counts it


class ForCandidateChoice:
    """Mixed over a family's XForSequenceClassification (num_labels=1): see the module docstring."""

    accepts_loss_kwargs = False  # the loss is a mean over examples: the Trainer divides for accumulation

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        from transformers.modeling_outputs import MultipleChoiceModelOutput

        examples, candidates = input_ids.shape[:2]
        given = given_inputs(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        flat = {name: value.flatten(0, 1) for name, value in given.items()}
        logits = super().forward(**flat, **kwargs).logits.view(examples, candidates)  # type: ignore[misc]
        loss = candidate_loss(logits, labels) if labels is not None else None
        return MultipleChoiceModelOutput(loss=loss, logits=logits)


def candidate_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-log Σ_gold softmax(logits over the real candidates), mean over examples that have a gold one."""
    scores = logits.float().masked_fill(labels[..., 0] == PADDED, float("-inf"))
    gold = scores.masked_fill(labels[..., 0] != 1, float("-inf"))
    has_gold = labels[..., 0].eq(1).any(-1)
    if not has_gold.any():
        return logits.sum() * 0.0  # keeps the graph: a batch without gold answers teaches nothing
    return (scores.logsumexp(-1) - gold.logsumexp(-1))[has_gold].mean()
