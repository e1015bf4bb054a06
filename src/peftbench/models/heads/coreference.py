"""A light start-to-end coreference model over any encoder: span scores, top-k pruning, pairwise links.

In the style of Lee et al. (2017, 2018) at the size of the light variants (one coarse, bilinear
antecedent score; no higher-order refinement, no speaker or genre features):

- a span is (first word, last word) within one sentence, at most `coref_max_span_width` words;
  its representation is [h(first sub-word of its first word); h(last sub-word of its last word);
  a width embedding];
- mention score s_m(i) = FFNN(g_i); the spans with the best s_m, `coref_top_span_ratio` times the
  words (at least one), are kept (top-k pruning);
- antecedent score s(i, j) = s_m(i) + s_m(j) + (Q g_i)·(K g_j) for each kept span j before i, and 0
  for the dummy antecedent ε (i is new, or no mention);
- loss: the marginal log-likelihood of i's gold antecedents among the kept spans (ε when it has
  none), plus a binary cross-entropy that teaches s_m which candidate spans are mentions at all;
- prediction: each kept span's best antecedent; a link to ε is none.

The head (`coref`) is new on every load and always trains; the encoder is what a method adapts.
`logits` is, for each candidate span, the index of the candidate span it links to, or -1: that is
what `tasks.coreference` turns into clusters and scores.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import TYPE_CHECKING, Any

from peftbench.models.heads.inputs import IGNORED, given_inputs

if TYPE_CHECKING:
    import torch

HEAD = "coref"
NO_LINK = -1
WIDTH_EMBEDDING = 20
HEAD_DEFAULTS = {"coref_max_span_width": 10, "coref_top_span_ratio": 0.4, "coref_ffnn_size": 150}
"""Written into the model's config, so that a saved model rebuilds its head at the same size."""


def with_head_defaults(config: Any) -> Any:
    """`config` with each of HEAD_DEFAULTS it does not set yet (a saved model's own sizes are kept)."""
    for name, value in HEAD_DEFAULTS.items():
        if getattr(config, name, None) is None:
            setattr(config, name, value)
    return config


def coreference_head_modules(missing: tuple[str, ...]) -> tuple[str, ...]:
    """The new modules as the methods see them: the head is one module (peft's modules_to_save wraps
    it once), whatever else the checkpoint lacked."""
    return (HEAD, *(m for m in missing if m.split(".")[0] != HEAD))


@cache
def coreference_class(encoder_class: type) -> type:
    """BertModel -> BertForCoreference: the family's PreTrainedModel with the encoder and the head."""
    pretrained = next(c for c in encoder_class.__mro__[1:] if c.__name__.endswith("PreTrainedModel"))
    family = encoder_class.__name__.removesuffix("Model")
    return type(
        f"{family}ForCoreference", (EncoderForCoreference, pretrained), {"encoder_class": encoder_class}
    )


def coref_head(config: Any) -> torch.nn.Module:
    """The span scorer: width embedding, mention FFNN, the bilinear pair score's two projections."""
    from torch import nn

    span = 2 * config.hidden_size + WIDTH_EMBEDDING
    size = config.coref_ffnn_size
    dropout = getattr(config, "hidden_dropout_prob", 0.1)
    head = nn.Module()
    head.width = nn.Embedding(config.coref_max_span_width, WIDTH_EMBEDDING)
    head.mention = nn.Sequential(nn.Linear(span, size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(size, 1))
    head.query = nn.Linear(span, size)
    head.key = nn.Linear(span, size)
    return head


class EncoderForCoreference:
    """Mixed over the family's PreTrainedModel (see `coreference_class`); the encoder sits under the
    family's `base_model_prefix`, so checkpoints load into it as into XModel.

    Batch (tasks.coreference builds it): input_ids, attention_mask [rows, tokens]; `text_mask`, the
    text's own mask (prompt tuning prepends virtual tokens to the hidden states: the text is their
    last `text_mask.shape[1]` positions); span_starts, span_ends [rows, spans] (token positions),
    span_widths (words - 1), span_mask (1: a candidate; 0: padding, or a gold mention no candidate
    covers, kept only so that it counts against recall); top_k [rows]; labels [rows, spans]: the
    span's entity (1, 2, ...), 0 for none, IGNORED for padding.
    """

    encoder_class: type
    accepts_loss_kwargs = False  # the loss is a mean over the batch's kept spans

    def __init__(self, config: Any):
        super().__init__(config)  # type: ignore[call-arg]
        takes_pooler = "add_pooling_layer" in inspect.signature(self.encoder_class.__init__).parameters
        encoder = (
            self.encoder_class(config, add_pooling_layer=False)
            if takes_pooler
            else self.encoder_class(config)
        )
        setattr(self, self.base_model_prefix, encoder)  # type: ignore[attr-defined]
        self.coref = coref_head(config)
        self.post_init()  # type: ignore[attr-defined]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        past_key_values: Any = None,
        text_mask: torch.Tensor | None = None,
        span_starts: torch.Tensor | None = None,
        span_ends: torch.Tensor | None = None,
        span_widths: torch.Tensor | None = None,
        span_mask: torch.Tensor | None = None,
        top_k: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,  # output_attentions, return_dict, ... that peft passes on: not used
    ) -> Any:
        from transformers.modeling_outputs import TokenClassifierOutput

        given = given_inputs(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
            past_key_values=past_key_values,
        )
        encoder = getattr(self, self.base_model_prefix)  # type: ignore[attr-defined]
        hidden = encoder(**given).last_hidden_state
        if text_mask is not None:
            hidden = hidden[:, -text_mask.shape[1] :]
        scores = span_scores(self.coref, hidden, span_starts, span_ends, span_widths, span_mask, top_k)
        loss = coref_loss(scores, labels, span_mask) if labels is not None else None
        return TokenClassifierOutput(loss=loss, logits=predicted_links(scores))


class SpanScores:
    """What one forward pass scored: every candidate's mention score, the kept spans and their pairs."""

    def __init__(
        self, mention: torch.Tensor, kept: torch.Tensor, kept_mask: torch.Tensor, pairs: torch.Tensor
    ):
        self.mention = mention  # [rows, spans]: s_m, -inf where no candidate
        self.kept = kept  # [rows, k]: candidate indices of the kept spans, in document order
        self.kept_mask = kept_mask  # [rows, k]: False where a row keeps fewer than k
        self.pairs = pairs  # [rows, k, 1 + k]: s(i, ε) = 0, then s(i, j); -inf where j is not before i


def span_scores(
    head: Any,
    hidden: torch.Tensor,
    starts: torch.Tensor,
    ends: torch.Tensor,
    widths: torch.Tensor,
    mask: torch.Tensor,
    top_k: torch.Tensor,
) -> SpanScores:
    import torch

    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
    spans = torch.cat([hidden[rows, starts], hidden[rows, ends], head.width(widths)], dim=-1).float()
    valid = mask.bool()
    mention = head.mention(spans).squeeze(-1).masked_fill(~valid, float("-inf"))
    k = int(top_k.max().clamp(min=1, max=mention.shape[1]))
    best = mention.topk(k, dim=-1).indices
    kept_mask = torch.arange(k, device=hidden.device)[None, :] < torch.minimum(top_k, valid.sum(-1))[:, None]
    best = best.masked_fill(~kept_mask, mention.shape[1])  # sorts last, so that the kept come first
    order = best.sort(dim=-1).values
    kept_mask = order < mention.shape[1]
    kept = order.masked_fill(~kept_mask, 0)
    g = spans[rows, kept]
    s_m = mention[rows, kept].masked_fill(~kept_mask, 0.0)
    pair = head.query(g) @ head.key(g).transpose(1, 2) + s_m[:, :, None] + s_m[:, None, :]
    before = torch.ones(k, k, device=hidden.device, dtype=torch.bool).tril(-1)
    allowed = before[None] & kept_mask[:, None, :] & kept_mask[:, :, None]
    pair = pair.masked_fill(~allowed, float("-inf"))
    pairs = torch.cat([torch.zeros_like(pair[:, :, :1]), pair], dim=-1)
    return SpanScores(mention, kept, kept_mask, pairs)


def coref_loss(scores: SpanScores, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Antecedent marginal log-likelihood over the kept spans + mention detection cross-entropy."""
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits

    rows = torch.arange(labels.shape[0], device=labels.device)[:, None]
    entity = labels[rows, scores.kept].masked_fill(~scores.kept_mask, 0).clamp(min=0)
    same = (entity[:, :, None] == entity[:, None, :]) & (entity[:, :, None] > 0)
    gold = same & torch.isfinite(scores.pairs[:, :, 1:])
    gold = torch.cat([~gold.any(-1, keepdim=True), gold], dim=-1)
    marginal = scores.pairs.masked_fill(~gold, float("-inf")).logsumexp(-1)
    per_span = scores.pairs.logsumexp(-1) - marginal
    antecedent = per_span[scores.kept_mask].mean() if scores.kept_mask.any() else per_span.sum() * 0
    candidates = mask.bool() & labels.ne(IGNORED)
    is_mention = labels.gt(0).float()
    detection = (
        binary_cross_entropy_with_logits(scores.mention[candidates], is_mention[candidates])
        if candidates.any()
        else scores.mention.new_zeros(())
    )
    return antecedent + detection


def predicted_links(scores: SpanScores) -> torch.Tensor:
    """[rows, spans]: the candidate index each span links to (its best antecedent), or NO_LINK."""
    import torch

    best = scores.pairs.argmax(-1)  # 0: ε
    rows = torch.arange(best.shape[0], device=best.device)[:, None]
    antecedent = scores.kept.gather(1, (best - 1).clamp(min=0))
    linked = (best > 0) & scores.kept_mask
    links = torch.full_like(scores.mention, NO_LINK, dtype=torch.long)
    links[rows.expand_as(scores.kept)[linked], scores.kept[linked]] = antecedent[linked]
    return links.float()
