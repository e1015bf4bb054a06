"""The token_classification task type on a fixture with CoNLL-2003's schema (tokens, ner_tags)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.predictions import read_predictions
from peftbench.core.spec import DataSource, RunSpec, TaskSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_tokenizer
from peftbench.run.one import run_one
from peftbench.tasks import TASK_TYPES
from peftbench.tasks.metrics import entity_metrics

FIXTURE = Path(__file__).parent / "fixtures" / "ner_demo"
TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
TASK = TASK_TYPES["token_classification"]
SETTINGS = TrainingSettings(max_length=64, batch_size=4, eval_batch_size=4)


def ner(**fields) -> TaskSpec:
    spec = {
        "name": "ner_demo",
        "type": "token_classification",
        "source": DataSource(files={s: str(FIXTURE / f"{s}.jsonl") for s in ("train", "validation", "test")}),
        "text_columns": ["tokens"],
        "label_column": "ner_tags",
        "labels": TAGS,
        "metric": "entity_f1",
    }
    return TaskSpec(**(spec | fields))


def rows(split: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURE / f"{split}.jsonl").read_text("utf-8").splitlines()]


def test_problems_are_found_before_anything_runs():
    def keys(task: TaskSpec) -> list[str]:
        return [key for key, *_ in TASK.problems(task)]

    assert keys(ner()) == []
    assert keys(ner(labels=["O", "PER", "B-LOC"])) == ["labels"]  # not BIO
    assert keys(ner(labels=None)) == ["labels"]
    assert keys(ner(text_columns=["tokens", "pos_tags"])) == ["text_columns"]
    assert keys(ner(metric="mcc")) == ["metric"]


def test_a_tag_goes_on_the_first_sub_word_of_its_word():
    tokenizer = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    data = TASK.prepare_data(ner(), tokenizer, SETTINGS)
    first = data.train[0]
    words, tags = rows("train")[0]["tokens"], rows("train")[0]["ner_tags"]
    pieces = [tokenizer.tokenize(w) for w in words]
    assert any(len(p) > 1 for p in pieces)  # "Kovacs" is several word pieces
    expected = [-100]  # [CLS]
    for word_pieces, tag in zip(pieces, tags, strict=True):
        expected += [tag] + [-100] * (len(word_pieces) - 1)
    assert first["labels"] == [*expected, -100]  # [SEP]
    assert data.test_ids == [r["id"] for r in rows("test")]
    batch = data.collator([data.train[i] for i in range(3)])
    assert batch["labels"].shape == batch["input_ids"].shape and (batch["labels"][1:, -1] == -100).any()


def test_tags_given_as_names_are_looked_up(tmp_path: Path):
    for split in ("train", "validation", "test"):
        named = [r | {"ner_tags": [TAGS[t] for t in r["ner_tags"]]} for r in rows(split)]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in named), "utf-8")
    source = DataSource(files={s: str(tmp_path / f"{s}.jsonl") for s in ("train", "validation", "test")})
    tokenizer = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    by_name = TASK.prepare_data(ner(source=source), tokenizer, SETTINGS)
    by_index = TASK.prepare_data(ner(), tokenizer, SETTINGS)
    assert by_name.validation["labels"] == by_index.validation["labels"]


def test_run_one_predicts_a_tag_per_word_and_scores_them(tmp_path: Path):
    spec = RunSpec(
        sweep="t",
        model=MODEL_CATALOG["minilm-l6"],
        task=ner(),
        method="lora",
        label="lora",
        params=METHODS["lora"].Params().model_dump(),
        training=SETTINGS.model_copy(update={"max_steps": 3, "learning_rate": 5e-3}),
        seed=0,
    )
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    assert set(result.test) == {"entity_f1", "entity_precision", "entity_recall", "accuracy", "loss"}
    predictions = read_predictions(RunPaths(tmp_path).test_predictions)
    predicted = [p.text.split(" ") for p in predictions]
    gold = [[TAGS[t] for t in r["ner_tags"]] for r in rows("test")]
    assert [len(p) for p in predicted] == [len(g) for g in gold]  # every word is tagged
    assert [p.id for p in predictions] == [r["id"] for r in rows("test")]
    # The metrics of the run are those of its written predictions against the gold tags.
    for metric, value in entity_metrics(predicted, gold).items():
        assert result.test[metric] == pytest.approx(value)
