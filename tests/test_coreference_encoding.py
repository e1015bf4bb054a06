"""Coreference documents as model inputs: windows, candidate spans, missed gold mentions, padding."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset

from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_tokenizer
from peftbench.tasks.base import EXAMPLE_ID
from peftbench.tasks.coreference.encoding import MAX_SPAN_WIDTH, SPAN_WORDS, DocumentWindows, SpanCollator
from tests.coreference_fixture import coref, rows


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(MODEL_CATALOG["minilm-l6"])


@pytest.fixture(scope="module")
def prepared(tokenizer):
    """The fixture's training documents as windows: (the windows, their batch padded on the right)."""
    windows = DocumentWindows(coref(), tokenizer, max_length=64)(Dataset.from_list(rows("train")))
    return windows, SpanCollator(tokenizer)([windows[i] for i in range(len(windows))])


def test_windows_candidates_and_missed_gold_mentions(tokenizer):
    """A long document splits into windows of whole sentences; a gold mention wider than the widest
    candidate stays in the labels (it counts against recall) but is no candidate (span_mask 0)."""
    long_name = ["the", *["very"] * MAX_SPAN_WIDTH, "old", "man"]
    document = {
        "doc_key": "long",
        "sentences": [[*long_name, "slept", "."], ["He", "woke", "."], ["It", "rained", "."]],
        "clusters": [[[0, len(long_name) - 1], [len(long_name) + 2, len(long_name) + 2]]],
    }
    windows = DocumentWindows(coref(), tokenizer, max_length=20)(Dataset.from_list([document]))
    assert windows[EXAMPLE_ID] == ["long/0", "long/1"]  # 15 + 3 word pieces fill the 18 a window holds
    first = windows[0]
    missed = [i for i, m in enumerate(first["span_mask"]) if m == 0]
    assert [first[SPAN_WORDS][i] for i in missed] == [[0, len(long_name) - 1]]
    assert first["labels"][missed[0]] == 1
    he = first[SPAN_WORDS].index([len(long_name) + 2, len(long_name) + 2])
    assert first["labels"][he] == 1 and first["span_mask"][he] == 1
    assert all(
        e - s < MAX_SPAN_WIDTH for (s, e), m in zip(first[SPAN_WORDS], first["span_mask"], strict=True) if m
    )


def test_left_padding_moves_the_span_positions_with_the_tokens(prepared, tokenizer):
    """Encoders pad right; a tokenizer that pads left shifts every token, and the spans with them."""
    windows, right = prepared
    features = [windows[i] for i in range(len(windows))]
    collator = SpanCollator(tokenizer)
    tokenizer.padding_side = "left"
    try:
        left = collator(features)
    finally:
        tokenizer.padding_side = "right"
    rows, real = torch.arange(len(features))[:, None], right["labels"] != -100  # not the span padding
    for starts in ("span_starts", "span_ends"):
        at_left, at_right = left["input_ids"][rows, left[starts]], right["input_ids"][rows, right[starts]]
        assert torch.equal(at_left[real], at_right[real])
    assert torch.equal(left["text_mask"], left["attention_mask"]) and not torch.equal(
        left["text_mask"], right["text_mask"]
    )
