"""SuperGLUE's nested rows reshaped for our task types: MultiRC one row per answer, WSC and WiC pairs."""

from __future__ import annotations

from datasets import Dataset

from peftbench.tasks.row_layouts import apply_layout
from tests.test_generation import read_rows


def test_multirc_becomes_one_row_per_answer_with_superglues_three_indices():
    rows = read_rows("slo_multirc", "train")[:2]
    flat = apply_layout(Dataset.from_list(rows), "superglue_multirc")
    assert len(flat) == 4
    assert flat["idx"] == ["0-0-0", "0-0-1", "1-0-0", "1-0-1"]
    assert flat["label"] == [1, 0, 0, 1]
    assert flat["context"][0] == "Kaj je Ana kupila na tržnici?\n" + rows[0]["passage"]["text"]
    assert flat["answer"][:2] == ["Jabolka in hruške.", "Kruh in mleko."]


def test_wsc_asks_whether_the_pronoun_is_the_candidate_and_wic_names_the_word():
    wsc = apply_layout(Dataset.from_list(read_rows("slo_wsc", "train")[:1]), "superglue_wsc")
    assert wsc[0] == {
        "idx": 0,
        "text": "Pokal ni šel v kovček, ker je bil prevelik.",
        "question": "je → Pokal?",
        "label": True,
    }
    wic = apply_layout(Dataset.from_list(read_rows("slo_wic", "test")[:1]), "superglue_wic")
    assert set(wic.column_names) == {"idx", "context", "sentence2"}  # test rows: no label
    assert wic[0]["context"] == "gora: Na vrhu gore je bil sneg."
