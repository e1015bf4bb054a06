"""The benchmark catalog against hub-schema fixtures: columns, labels and splits line up.

Every catalog entry with a fixture (tests/fixtures/<folder>/, the hub dataset's own columns and value
types, text written for the tests) is loaded with its source swapped for the fixture files: its
split protocol, columns and labels must fit the data, and its task type must prepare it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from peftbench.core.spec import DataSource, ModelRef, TaskSpec, TrainingSettings
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_tokenizer
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from peftbench.tasks.catalog import DEV_AS_TEST, SLO_SUPERGLUE
from peftbench.tasks.labels import label_index
from peftbench.tasks.sources import load_split
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures"

FIXTURE_OF = {
    **{
        name: name
        for name in (
            "hucola",
            "hurte",
            "husst",
            "huwnli",
            "hucb",
            "slo_boolq",
            "slo_cb",
            "slo_copa",
            "slo_rte",
            "slo_multirc",
            "slo_wsc",
            "slo_wic",
            "slo_record",
            "boolq",
            "cb",
            "copa",
            "sst5",
            "slo_en_translation",
            "slo_ner",
            "senticoref",
            "coref149",
            "conll2012_en",
        )
    },
    # Fixtures written with the task types that read them (multiple choice, generation, instruction).
    "hucopa": "hucopa",
    "commonsense_qa": "commonsense_qa",
    "xsum": "xsum",
    **dict.fromkeys(
        ("belle_0.6m", "belle_2m", "belle_4m", "belle_math_0.25m", "belle_0.5m", "belle_1m"), "belle_instruct"
    ),
}
NO_FIXTURE = {
    *("sst2", "cola", "rte"),
    *("movie_sentiment", "tweet_sentiment", "presupposition_nli", "epistemic_nli"),
}
"""GLUE entries from before the catalog grew (hub only) and bundled data (real, already offline)."""

# Each hub dataset's columns and value types, from its card or its published data files. A list
# holds one item type; a dict is a struct.
HUB_SCHEMAS: dict[str, dict[str, Any]] = {
    "hucola": {"id": str, "sentence": str, "label": int},
    "hurte": {"id": str, "premise": str, "hypothesis": str, "label": int},
    "husst": {"id": str, "sentence": str, "label": str},
    "huwnli": {"orig_id": str, "id": str, "sentence1": str, "sentence2": str, "label": int},
    "hucb": {"id": str, "premise": str, "hypothesis": str, "label": str},
    "slo_boolq": {"question": str, "passage": str, "idx": int, "label": bool},
    "slo_cb": {"premise": str, "hypothesis": str, "idx": int, "label": str},
    "slo_copa": {"premise": str, "choice1": str, "choice2": str, "question": str, "idx": int, "label": int},
    "slo_rte": {"premise": str, "hypothesis": str, "idx": int, "label": str},
    # SuperGLUE's own nested rows (tasks/row_layouts.py flattens them). The Slovene archive's MultiRC
    # keys its questions and answers by position (dicts, "0", "1", ...) and writes labels as floats.
    "slo_multirc": {
        "idx": int,
        "version": float,
        "passage": {
            "text": str,
            "questions": {
                "0": {
                    "question": str,
                    "idx": int,
                    "answers": {
                        "0": {"text": str, "idx": int, "label": float},
                        "1": {"text": str, "idx": int, "label": float},
                    },
                }
            },
        },
    },
    "slo_wsc": {
        "text": str,
        "target": {"span1_index": int, "span1_text": str, "span2_index": int, "span2_text": str},
        "idx": int,
        "label": bool,
    },
    "slo_wic": {
        "word": str,
        "sentence1": str,
        "sentence2": str,
        "idx": int,
        "start1": int,
        "end1": int,
        "start2": int,
        "end2": int,
        "version": float,
        "label": bool,
    },
    "slo_record": {
        "idx": int,
        "passage": {"text": str, "entities": [{"start": int, "end": int}]},
        "qas": [{"query": str, "answers": [{"start": int, "end": int, "text": str}], "idx": int}],
    },
    "boolq": {"question": str, "passage": str, "idx": int, "label": int},
    "cb": {"premise": str, "hypothesis": str, "idx": int, "label": int},
    "copa": {"premise": str, "choice1": str, "choice2": str, "question": str, "idx": int, "label": int},
    "sst5": {"text": str, "label": int, "label_text": str},
    "commonsense_qa": {
        "id": str,
        "question": str,
        "question_concept": str,
        "choices": {"label": [str], "text": [str]},
        "answerKey": str,
    },
    "slo_en_translation": {"translation": {"en": str, "sl": str}},
    "slo_ner": {
        "id_doc": str,
        "idx_par": int,
        "idx_sent": int,
        "id_words": [str],
        "words": [str],
        "lemmas": [str],
        "msds": [str],
        "ne_tags": [str],
    },
}
UNLABELLED_TEST = {"slo_boolq", "slo_cb", "slo_copa", "slo_rte", "slo_wsc", "slo_wic"}
"""SuperGLUE's JSONL test rows carry no label at all (aps/super_glue on the hub writes -1 instead)."""

# The first training examples' class indices, worked out by hand from the fixture rows.
EXPECTED_TRAIN_LABELS = {
    "hucola": [1, 0, 1, 0, 1, 0, 1, 0, 1],
    "hurte": [1, 0, 1, 0, 1, 0, 1, 0, 1],
    "husst": [2, 0, 1, 2, 0, 1, 2, 0, 1],  # positive, negative, neutral, ...
    "huwnli": [1, 0, 1, 0, 1, 0, 1, 0, 1],
    "hucb": [2, 0, 1, 2, 0, 1, 2, 0, 1],  # neutral, entailment, contradiction, ...
    "slo_boolq": [1, 1, 0, 0, 1, 0, 1, 0, 1],  # JSON true/false
    "slo_cb": [2, 0, 1, 2, 0, 1, 2, 0, 1],
    "slo_rte": [0, 1, 0, 1, 0, 1, 0, 1, 0],  # entailment, not_entailment, ...
    "slo_multirc": [1, 0, 0, 1, 1, 0, 0, 1, 1, 0],  # 5 passages × (right, wrong), odd ones reversed
    "slo_wsc": [1, 1, 1, 1, 0],
    "slo_wic": [1, 0, 1, 0, 1],
    "boolq": [1, 0, 0, 1, 0, 1, 1, 0, 1],
    "cb": [2, 0, 1, 2, 0, 1, 2, 0, 1],
    "sst5": [0, 1, 2, 3, 4, 0, 1, 2, 3, 4],  # published splits: all 10 rows train
}

DECODER_TYPES = {"generation", "instruction"}
WITH_FIXTURE = sorted(FIXTURE_OF)


def with_fixture(name: str) -> TaskSpec:
    """The catalog entry with its source swapped for its fixture files (same splits, same columns)."""
    folder = FIXTURES / FIXTURE_OF[name]
    found = [*folder.glob("*.jsonl"), *folder.glob("*.v4_gold_conll")]  # *_conll: CoNLL-2012 coreference
    files = {p.name.split(".")[0]: str(p) for p in sorted(found)}
    assert files, f"no fixture files in {folder}"
    task = TASK_CATALOG[name]
    if task.test_source is not None:  # BELLE: absolute row counts of million-row sets, one common test set
        return task.model_copy(
            update={
                "source": DataSource(files=files),
                "splits": {"train": "train", "validation": "validation", "test": "test"},
                "test_source": DataSource(bundled="belle_eval_standin"),
            }
        )
    return task.model_copy(update={"source": DataSource(files=files, layout=task.source.layout)})


def task_type(name: str):
    kind = TASK_CATALOG[name].type
    assert kind in TASK_TYPES, f"task type {kind!r} of {name!r} is not registered (yet): {sorted(TASK_TYPES)}"
    return TASK_TYPES[kind]


def column(data: Any, dotted: str) -> list[Any]:
    """A column's values; dots enter structs (`translation.en`, `choices.text`)."""
    top, *inner = dotted.split(".")
    assert top in data.column_names, f"no column {top!r}; the data has {data.column_names}"
    values = data[top]
    for key in inner:
        values = [v[key] for v in values]
    return list(values)


def matches(value: Any, kind: Any) -> bool:
    if isinstance(kind, dict):
        same_keys = isinstance(value, dict) and set(value) == set(kind)
        return same_keys and all(matches(value[k], kind[k]) for k in kind)
    if isinstance(kind, list):
        return isinstance(value, list) and all(matches(v, kind[0]) for v in value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def test_every_entry_outside_the_old_ones_has_a_fixture():
    assert set(TASK_CATALOG) == set(FIXTURE_OF) | NO_FIXTURE


@pytest.mark.parametrize("name", sorted(TASK_CATALOG))
def test_every_entry_fits_its_task_type(name: str):
    task = TASK_CATALOG[name]
    assert task_type(name).problems(task) == []
    assert set(task.splits) == {"train", "validation", "test"}


@pytest.mark.parametrize("folder", sorted(HUB_SCHEMAS))
def test_fixture_has_the_hub_schema(folder: str):
    schema = HUB_SCHEMAS[folder]
    files = sorted((FIXTURES / folder).glob("*.jsonl"))
    assert files
    for path in files:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert 6 <= len(rows) <= 12, f"{path}: {len(rows)} rows"
        expected = dict(schema)
        if folder in UNLABELLED_TEST and path.stem == "test":
            expected.pop("label")
        if folder == "slo_multirc" and path.stem == "test":  # the label sits on each answer
            question = expected["passage"]["questions"]["0"]
            answers = {k: {"text": str, "idx": int} for k in question["answers"]}
            expected["passage"] = {"text": str, "questions": {"0": question | {"answers": answers}}}
        if folder == "slo_record" and path.stem == "test":  # test queries carry no answers
            expected["qas"] = [{k: v for k, v in expected["qas"][0].items() if k != "answers"}]
        for i, row in enumerate(rows):
            assert set(row) == set(expected), f"{path}:{i + 1} columns {sorted(row)}"
            bad = {k: v for k, v in row.items() if not matches(v, expected[k])}
            assert not bad, f"{path}:{i + 1} values of the wrong type: {bad}"


@pytest.mark.parametrize("name", WITH_FIXTURE)
def test_columns_and_labels_line_up_on_every_split(name: str):
    task = with_fixture(name)
    for split in ("train", "validation", "test"):
        data = load_split(task, split)
        assert len(data) > 0, f"{name}/{split}: {task.splits[split]} is empty"
        for col in task.text_columns:
            assert all(isinstance(v, str | list) for v in column(data, col))
        if task.target_column:
            assert all(isinstance(v, str) and v for v in column(data, task.target_column))
        if task.labels:
            values = column(data, task.label_column)
            tags = [t for v in values for t in v] if task.type == "token_classification" else values
            indices = [label_index(task.labels, v) for v in tags]  # raises on a value that does not fit
            assert all(0 <= i < len(task.labels) for i in indices)
        if task.choice_columns:
            assert len(task.choice_columns) == len(task.labels or ())
            for col in task.choice_columns:
                column(data, col)
        if task.choices_column and task.type == "multiple_choice":
            assert {len(c) for c in column(data, task.choices_column)} == {len(task.labels or ())}
        if task.type == "cloze_choice":  # each query's own candidates; its gold answers among them
            candidates, answers = column(data, task.choices_column), column(data, task.label_column)
            assert all(len(c) == len(set(c)) > 1 for c in candidates)
            assert all(set(a) <= set(c) for a, c in zip(answers, candidates, strict=True))
        if task.type == "token_classification":
            words, tags = column(data, task.text_columns[0]), column(data, task.label_column)
            assert [len(w) for w in words] == [len(t) for t in tags]


def test_hidden_test_labels_mean_validation_is_test_and_train_is_cut_for_selection():
    task = with_fixture("hucola")
    assert task.splits == DEV_AS_TEST
    sizes = {split: len(load_split(task, split)) for split in ("train", "validation", "test")}
    assert sizes == {"train": 9, "validation": 1, "test": 6}
    held_out = load_split(task, "validation")["id"]
    assert held_out == ["9"] and "9" not in load_split(task, "train")["id"]


def test_slovene_superglue_reads_the_clarin_layout_with_val_as_validation(tmp_path: Path):
    assert TASK_CATALOG["slo_rte"].source.hub == f"{SLO_SUPERGLUE}/RTE"
    folder = tmp_path / "SuperGLUE-HumanT" / "RTE"
    folder.mkdir(parents=True)
    for ours, theirs in {"train": "train", "validation": "val", "test": "test"}.items():
        shutil.copy(FIXTURES / "slo_rte" / f"{ours}.jsonl", folder / f"{theirs}.jsonl")
    task = TASK_CATALOG["slo_rte"].model_copy(update={"source": DataSource(hub=str(folder))})
    test = load_split(task, "test")
    assert test["idx"] == list(range(10, 16)), "test is CLARIN's val.jsonl"
    assert test["label"][:2] == ["entailment", "not_entailment"]


@pytest.fixture(scope="module")
def encoder_tokenizer():
    return load_tokenizer(MODEL_CATALOG["minilm-l6"])


@pytest.mark.parametrize("name", WITH_FIXTURE)
def test_its_task_type_prepares_the_fixture(name: str, encoder_tokenizer, request):
    task, kind = with_fixture(name), task_type(name)
    if task.type in DECODER_TYPES:
        decoder = request.getfixturevalue("tiny_decoder")
        tokenizer = load_tokenizer(ModelRef(name="tiny-llama", source=str(decoder), family="llama"))
    else:
        tokenizer = encoder_tokenizer
    data = kind.prepare_data(
        task, tokenizer, TrainingSettings(max_length=64, batch_size=4, max_new_tokens=16)
    )
    assert len(data.train) > 0 and len(data.validation) > 0 and len(data.test) > 0
    assert "input_ids" in data.train.column_names
    if name in EXPECTED_TRAIN_LABELS:
        assert list(data.train["labels"]) == EXPECTED_TRAIN_LABELS[name]
