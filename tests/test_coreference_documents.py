"""Coreference rows of every supported form read as one form: (doc_key, sentences, clusters of word spans)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftbench.tasks.coreference.documents import document_of
from tests.coreference_fixture import rows

SENTICOREF = Path(__file__).parent / "fixtures" / "senticoref" / "train.jsonl"


def test_the_clarin_corpora_in_the_cjvt_hub_schema_read_as_word_spans():
    row = json.loads(SENTICOREF.read_text("utf-8").splitlines()[1])
    document = document_of(row, "words", "coref_clusters")
    words = [w for sentence in document["sentences"] for w in sentence]  # paragraphs flattened
    named = [[" ".join(words[a : b + 1]) for a, b in cluster] for cluster in document["clusters"]]
    assert named == [["Župan", "župan"], ["novo knjižnico", "Knjižnica"]]
    with pytest.raises(ValueError, match="within its 16 words"):
        document_of(row | {"coref_clusters": [[[3, 40]]]}, "words", "coref_clusters")


def test_the_jsonl_form_reads_as_it_is_and_names_a_bad_mention():
    row = rows("train")[0]
    document = document_of(row, "sentences", "clusters")
    assert document["doc_key"] == row["doc_key"] and document["sentences"] == row["sentences"]
    assert document["clusters"] == [[tuple(m) for m in cluster] for cluster in row["clusters"]]
    with pytest.raises(ValueError, match=r"mention \[2, 1\] is not \[first word, last word\]"):
        document_of(row | {"clusters": [[[2, 1]]]}, "sentences", "clusters")
    with pytest.raises(ValueError, match="which `mentions` lacks"):
        document_of({"words": [["a"]], "coref_clusters": [["m9"]], "mentions": []}, "words", "coref_clusters")


def test_the_document_key_is_the_first_of_doc_key_id_doc_id():
    base = {"words": [["a"]], "coref_clusters": []}
    assert document_of(base | {"id_doc": 7, "id": "x"}, "words", "coref_clusters")["doc_key"] == "7"
    assert document_of(base | {"id": "x"}, "words", "coref_clusters")["doc_key"] == "x"
    assert document_of(base, "words", "coref_clusters")["doc_key"] is None
