"""SuperGLUE's nested rows reshaped for our task types: MultiRC one row per answer, WSC and WiC pairs."""

from __future__ import annotations

from datasets import Dataset

from peftbench.tasks.row_layouts import apply_layout, multirc_rows
from tests.test_generation import read_rows


def test_multirc_becomes_one_row_per_answer_with_superglues_three_indices():
    rows = read_rows("slo_multirc", "train")[:2]
    flat = apply_layout(Dataset.from_list(rows), "superglue_multirc")
    assert len(flat) == 4
    assert flat["idx"] == ["0-0-0", "0-0-1", "1-0-0", "1-0-1"]
    assert flat["question_idx"] == ["0-0", "0-0", "1-0", "1-0"]  # MultiRC's em groups by it
    assert flat["label"] == [1, 0, 0, 1]
    assert flat["context"][0] == "Kaj je Ana kupila na tržnici?\n" + rows[0]["passage"]["text"]
    assert flat["answer"][:2] == ["Jabolka in hruške.", "Kruh in mleko."]


def test_multirc_reads_the_slovene_archives_own_shape():
    """The CLARIN.SI archive's MultiRC (both variants, json/MultiRC/, as a public copy shows: see
    tasks/catalog.py) keeps questions and answers as dicts keyed by position, writes labels and
    indices as 1.0, "0.0" or "0,0", and has a question without text and answers without text. The
    shapes are the archive's; the words are ours."""
    row = {
        "idx": 3,
        "version": 1.1,
        "passage": {
            "text": "Ana je kupila jabolka.",
            "questions": {
                "1": {
                    "question": "Kdo?",
                    "idx": 1.0,
                    "answers": {"0": {"text": "Ana", "label": 1.0, "idx": "2,0"}},
                },
                "0": {
                    "question": "Kaj je kupila?",
                    "idx": 0,
                    "answers": {
                        "1": {"text": "Hruške", "label": "0,0", "idx": 1.0},
                        "0": {"text": "Jabolka", "label": "1.0", "idx": 0},
                        "2": {"label": 0.0, "idx": 3.0},  # no text: nothing to classify
                    },
                },
                "2": {"idx": 2.0, "answers": {"0": {"text": "Da", "label": 0, "idx": 4}}},  # no question
            },
        },
    }
    flat = multirc_rows({key: [value] for key, value in row.items()})  # as datasets hands the rows over
    assert flat["idx"] == ["3-0-0", "3-0-1", "3-1-2"]
    assert flat["question_idx"] == ["3-0", "3-0", "3-1"]
    assert flat["answer"] == ["Jabolka", "Hruške", "Ana"]
    assert flat["label"] == [1, 0, 1]
    english = {
        "idx": [0],
        "passage": [{"text": "T", "questions": [{"question": "Q", "answers": [{"text": "A"}]}]}],
    }
    assert multirc_rows(english)["idx"] == ["0-0-0"]  # SuperGLUE's own lists, no indices: positions


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


def test_record_becomes_one_row_per_query_with_the_distinct_entity_texts():
    rows = read_rows("slo_record", "train")[:2]
    flat = apply_layout(Dataset.from_list(rows), "superglue_record")
    assert flat["idx"] == [0, 1, 2]  # the queries' own idx; the first passage has two queries
    assert flat["query"][1] == "Sestri sta se iz Pariza odpeljali v @placeholder."
    # "Majo" is two entity spans of the passage, one candidate; spans are `end`-inclusive offsets.
    assert flat["candidates"][0] == ["Ana Novak", "Pariz", "Parizu", "Majo", "Lyon"]
    assert flat["candidates"][0] == flat["candidates"][1]
    assert flat["answers"][:2] == [["Ana Novak"], ["Lyon"]]
    assert flat["answers"][2] == ["Sava"]  # two gold spans of the same text: one answer
    assert flat["passage"][2] == rows[1]["passage"]["text"]
    test = apply_layout(Dataset.from_list(read_rows("slo_record", "test")[:1]), "superglue_record")
    assert test["answers"] == [[]] and test["candidates"] == [["Bled", "Bledu"]]  # test: no answers


def test_a_layout_is_applied_anew_each_time_never_read_from_datasets_cache(tmp_path, monkeypatch):
    """datasets fingerprints a packaged function by its name, not its code: a layout an upgrade
    changed would come back from its cache as the old rows (MultiRC without `question_idx`, seen).
    The reshaped rows live in memory only, and the tokenization cache key follows the layout's code."""
    from datasets import load_dataset

    from peftbench.tasks import row_layouts, token_cache

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    data = load_dataset("json", data_files={"train": "tests/fixtures/slo_multirc/train.jsonl"}, split="train")
    assert data.cache_files  # the source rows are on disk, where datasets would cache a map too
    rows = apply_layout(data, "superglue_multirc")
    assert "question_idx" in rows.column_names and rows.cache_files == []

    before = token_cache.layout_code("superglue_multirc")
    original = row_layouts.LAYOUTS["superglue_multirc"]

    def multirc_rows(batch):  # same name and module, other code: as after an upgrade
        return {k: v for k, v in original(batch).items() if k != "question_idx"}

    monkeypatch.setitem(row_layouts.LAYOUTS, "superglue_multirc", multirc_rows)
    assert token_cache.layout_code("superglue_multirc") != before
