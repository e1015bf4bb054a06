"""Coreference documents in the one form every reader gives, from the row forms the hub and JSONL hold.

The form is the JSONL form of the e2e-coref family of models (Lee et al., 2017), which is also what a
local JSONL file for a `coreference` task holds:

    {"doc_key": "bc/cctv/00/cctv_0001_0", "sentences": [["He", "came", "."], ...],
     "clusters": [[[0, 0], [5, 6]], ...]}

`clusters` lists each entity's mentions as [first word, last word] (inclusive), words counted over
the whole document. Also read: the CLARIN.SI corpora as cjvt/senticoref and cjvt/coref149 publish
them on the hub: `words` (sentences of words, SentiCoref grouping them in paragraphs), `mentions`
(each with its `global_word_indices`) and `coref_clusters` (mention ids). The CoNLL-2012 column
files are read into the same form by conll.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DOCUMENT_KEYS = ("doc_key", "id_doc", "id")  # where each form keeps the document's name, first found


def document_of(row: Mapping[str, Any], words_column: str, clusters_column: str) -> dict[str, Any]:
    """A row of any supported form as (doc_key, sentences, clusters) in the JSONL form, checked.

    Raises ValueError saying what is wrong (the caller adds which task, split and row).
    """
    sentences = flat_sentences(row[words_column])
    words = sum(len(s) for s in sentences)
    entities = word_clusters(row, clusters_column)
    clusters = [[word_span(mention, words) for mention in entity] for entity in entities]
    key = next((row[name] for name in DOCUMENT_KEYS if name in row), None)
    return {"doc_key": None if key is None else str(key), "sentences": sentences, "clusters": clusters}


def word_clusters(row: Mapping[str, Any], clusters_column: str) -> list:
    """The row's clusters of mentions: as given, or (cjvt's schema: mention ids) looked up as word spans."""
    clusters = row[clusters_column] or []
    if clusters and clusters[0] and isinstance(clusters[0][0], str):
        return clusters_from_mention_ids(clusters, row.get("mentions") or [])
    return clusters


def word_span(mention: Sequence[int], words: int) -> tuple[int, int]:
    """A mention as (first word, last word), checked to lie within the document's `words` words."""
    if len(mention) != 2 or not 0 <= mention[0] <= mention[1] < words:
        raise ValueError(f"mention {list(mention)} is not [first word, last word] within its {words} words")
    return int(mention[0]), int(mention[1])


def flat_sentences(words: Sequence[Any]) -> list[list[str]]:
    """Sentences of words; SentiCoref's paragraphs of sentences are flattened into their sentences."""
    if words and words[0] and not isinstance(words[0][0], str):
        return [list(sentence) for paragraph in words for sentence in paragraph]
    return [list(sentence) for sentence in words]


def clusters_from_mention_ids(
    clusters: Iterable[Sequence[str]], mentions: Sequence[Mapping[str, Any]]
) -> list:
    """cjvt's clusters of mention ids as [first, last] word spans (a discontinuous mention: its extent)."""
    where = {}
    for mention in mentions:
        indices = mention["mention_data"]["global_word_indices"]
        where[mention["id_mention"]] = [min(indices), max(indices)]
    try:
        return [[where[mention_id] for mention_id in entity] for entity in clusters]
    except KeyError as err:
        raise ValueError(f"cluster names mention {err.args[0]!r}, which `mentions` lacks") from None
