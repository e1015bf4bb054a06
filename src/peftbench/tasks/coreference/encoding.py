"""Coreference documents as model inputs: windows of whole sentences, each with its candidate spans.

A document is cut into windows of whole sentences that fit `max_length` tokens, each window an
example (a sentence longer than that is cut, and its mentions past the cut go unfound); a link
between two windows is neither learned nor scored. Every span of up to `coref_max_span_width` words
inside one sentence is a candidate; a gold mention that is no candidate (wider, or cut off) is kept
in the labels with span mask 0, so that it counts against recall.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from peftbench.models.heads.coreference import HEAD_DEFAULTS
from peftbench.models.heads.inputs import IGNORED
from peftbench.tasks.base import EXAMPLE_ID
from peftbench.tasks.coreference.documents import document_of

if TYPE_CHECKING:
    from peftbench.core.spec import TaskSpec

MAX_SPAN_WIDTH = HEAD_DEFAULTS["coref_max_span_width"]
TOP_SPAN_RATIO = HEAD_DEFAULTS["coref_top_span_ratio"]
SPAN_COLUMNS = ("span_starts", "span_ends", "span_widths", "span_mask", "labels")
SPAN_WORDS = "span_words"  # each candidate's [first word, last word] in the document: for predictions
TOKEN_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")
TOKEN_POSITIONS = ("span_starts", "span_ends")  # they move with the tokens when padding goes left
WordSpan = tuple[int, int]


class SpanRow(NamedTuple):
    """One span of a window: its words (in the window), where its tokens are, and its entity (0: none)."""

    words: WordSpan
    span_starts: int
    span_ends: int
    span_widths: int
    span_mask: int
    labels: int


class DocumentWindows:
    """Documents -> windows of whole sentences, each with its candidate spans and their entities."""

    def __init__(self, task: TaskSpec, tokenizer: Any, max_length: int):
        self.task, self.tokenizer, self.max_length = task, tokenizer, max_length

    def __call__(self, data: Any) -> Any:
        words_column, clusters_column = self.task.text_columns[0], self.task.label_column

        def encode(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
            out: dict[str, list[Any]] = {}
            for offset, index in enumerate(indices):
                row = {name: values[offset] for name, values in batch.items()}
                try:
                    document = document_of(row, words_column, clusters_column)
                except (ValueError, TypeError, IndexError, KeyError) as err:
                    raise ValueError(f"Task {self.task.name!r}, document {index}: {err}") from err
                for window in self.windows(document, index):
                    for name, value in window.items():
                        out.setdefault(name, []).append(value)
            return out

        return data.map(encode, batched=True, with_indices=True, remove_columns=data.column_names)

    def windows(self, document: dict[str, Any], index: int) -> list[dict[str, Any]]:
        """The document's windows, encoded; ids `doc_key` (one window) or `doc_key/n`."""
        budget = self.max_length - self.tokenizer.num_special_tokens_to_add()
        groups: list[list[int]] = [[]]
        used = 0
        for number, sentence in enumerate(document["sentences"]):
            tokens = sum(len(self.tokenizer.tokenize(word)) or 1 for word in sentence)
            if groups[-1] and used + tokens > budget:
                groups.append([])
                used = 0
            groups[-1].append(number)
            used += tokens
        key = document["doc_key"] if document["doc_key"] is not None else str(index)
        encoded = [self.encode_window(document, group) for group in groups]
        for n, window in enumerate(encoded):
            window[EXAMPLE_ID] = key if len(encoded) == 1 else f"{key}/{n}"
        return encoded

    def encode_window(self, document: dict[str, Any], sentence_numbers: list[int]) -> dict[str, Any]:
        """One window's tokens, its span columns (SPAN_COLUMNS), `top_k` and the spans' document words."""
        sentences = document["sentences"]
        first_word = sum(len(s) for s in sentences[: sentence_numbers[0]])
        words = [w for n in sentence_numbers for w in sentences[n]]
        encoded = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=self.max_length)
        first_token, last_token = token_bounds(encoded.word_ids())
        candidates = candidate_spans([len(sentences[n]) for n in sentence_numbers], set(first_token))
        gold = window_entities(document["clusters"], first_word, len(words))
        rows = span_rows(candidates, first_token, last_token, gold)
        return {
            **encoded,
            **{name: [getattr(row, name) for row in rows] for name in SPAN_COLUMNS},
            "top_k": max(1, math.ceil(TOP_SPAN_RATIO * len(first_token))),
            SPAN_WORDS: [[first_word + start, first_word + end] for start, end in (r.words for r in rows)],
        }


def token_bounds(word_ids: Iterable[int | None]) -> tuple[dict[int, int], dict[int, int]]:
    """Each encoded word's first and last token position (a word cut off by truncation has none)."""
    first_token: dict[int, int] = {}
    last_token: dict[int, int] = {}
    for position, word in enumerate(word_ids):
        if word is not None:
            first_token.setdefault(word, position)
            last_token[word] = position
    return first_token, last_token


def window_entities(
    clusters: Sequence[Sequence[WordSpan]], first_word: int, words: int
) -> dict[WordSpan, int]:
    """The entity (numbered from 1) of each gold mention inside the window's `words` words from
    `first_word`, as a word span within the window."""
    return {
        (start - first_word, end - first_word): number
        for number, cluster in enumerate(clusters, start=1)
        for start, end in cluster
        if first_word <= start and end < first_word + words
    }


def span_rows(
    candidates: list[WordSpan],
    first_token: dict[int, int],
    last_token: dict[int, int],
    gold: dict[WordSpan, int],
) -> list[SpanRow]:
    """The candidates, each with its entity (0: none), then the gold mentions no candidate covers:
    mask 0, so they are counted against recall and never predicted."""
    entities = dict(gold)
    rows = [
        SpanRow(span, first_token[span[0]], last_token[span[1]], span[1] - span[0], 1, entities.pop(span, 0))
        for span in candidates
    ]
    return rows + [SpanRow(span, 0, 0, 0, 0, entity) for span, entity in sorted(entities.items())]


def candidate_spans(sentence_lengths: list[int], encoded_words: set[int]) -> list[WordSpan]:
    """Every (first, last) word span within one sentence, at most MAX_SPAN_WIDTH words, whose words all
    survived truncation; in document order."""
    spans, first = [], 0
    for length in sentence_lengths:
        for start in range(first, first + length):
            for end in range(start, min(start + MAX_SPAN_WIDTH, first + length)):
                if end in encoded_words:
                    spans.append((start, end))
        first += length
    return spans


class SpanCollator:
    """Pads the tokens (the tokenizer's own padding, either side) and the spans (mask 0, labels -100).

    `text_mask` is the padded attention mask under its own name: peft's prompt learning extends
    `attention_mask` by its virtual tokens, and the head needs the text's own length.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        token_columns = [k for k in TOKEN_COLUMNS if k in features[0]]
        tokens = [{k: f[k] for k in token_columns} for f in features]
        batch = dict(self.tokenizer.pad(tokens, return_tensors="pt"))
        batch["text_mask"] = batch["attention_mask"].clone()
        shifts = self.padding_before(features, batch["input_ids"].shape[1])
        spans = max(len(f["labels"]) for f in features)
        for name in SPAN_COLUMNS:
            batch[name] = torch.tensor(span_column(name, features, shifts, spans))
        batch["top_k"] = torch.tensor([f["top_k"] for f in features])
        return batch

    def padding_before(self, features: list[dict[str, Any]], length: int) -> list[int]:
        """How far each row's tokens moved right: the padding put before them (none when padding right)."""
        if self.tokenizer.padding_side != "left":
            return [0] * len(features)
        return [length - len(f["input_ids"]) for f in features]


def span_column(name: str, features: list[dict[str, Any]], shifts: list[int], spans: int) -> list[list[int]]:
    """One span column of a batch: token positions moved with the padding, every row `spans` long."""
    fill = IGNORED if name == "labels" else 0
    rows = [list(f[name]) for f in features]
    if name in TOKEN_POSITIONS:
        rows = [[v + shift for v in row] for row, shift in zip(rows, shifts, strict=True)]
    return [row + [fill] * (spans - len(row)) for row in rows]
