"""The tokenization cache: one tokenisation per task and split for a whole sweep, safe under races."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from peftbench.core.spec import DataSource, TaskSpec, TrainingSettings
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_tokenizer
from peftbench.run.one import run_one
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from peftbench.tasks import token_cache as tc
from peftbench.tasks.token_cache import TokenizationCache, cache_root, tokenizer_fingerprint
from tests.conftest import TINY_TRAINING, demo_run

CLASSIFICATION = TASK_TYPES["classification"]
MOVIES = TASK_CATALOG["movie_sentiment"]
TINY = TrainingSettings.model_validate(TINY_TRAINING)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(MODEL_CATALOG["minilm-l6"])


def builds() -> int:
    return sum(tc.BUILDS.values())


def entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def test_a_second_preparation_reuses_every_split_and_gives_the_same_rows(tmp_path: Path, tokenizer):
    cache = TokenizationCache(tmp_path)
    before = builds()
    first = CLASSIFICATION.prepare_data(MOVIES, tokenizer, TINY, cache=cache)
    assert builds() - before == 3 and len(entries(tmp_path)) == 3
    second = CLASSIFICATION.prepare_data(MOVIES, tokenizer, TINY, cache=TokenizationCache(tmp_path))
    assert builds() - before == 3, "the second preparation tokenized again"
    uncached = CLASSIFICATION.prepare_data(MOVIES, tokenizer, TINY)
    for split in ("train", "validation", "test"):
        assert getattr(second, split).to_list() == getattr(uncached, split).to_list()
        assert getattr(first, split).to_list() == getattr(uncached, split).to_list()
    assert second.train_tokens == uncached.train_tokens
    key = json.loads((tmp_path / entries(tmp_path)[0] / tc.KEY_FILE).read_text())
    assert {"source", "tokenizer", "max_length", "text_columns", "label_column", "limit"} <= set(key)


def test_the_key_follows_max_length_and_limits(tmp_path: Path, tokenizer):
    cache = TokenizationCache(tmp_path)
    CLASSIFICATION.prepare_data(MOVIES, tokenizer, TINY, cache=cache)
    before = builds()
    longer = TINY.model_copy(update={"max_length": 32})
    CLASSIFICATION.prepare_data(MOVIES, tokenizer, longer, cache=cache)
    assert builds() - before == 3
    more_train = TINY.model_copy(update={"max_train_samples": 64})
    CLASSIFICATION.prepare_data(MOVIES, tokenizer, more_train, cache=cache)
    assert builds() - before == 4, "only the training split's limit changed"
    assert len(entries(tmp_path)) == 7


def test_the_key_follows_the_bytes_of_local_files(tmp_path: Path, tokenizer):
    rows = [{"text": f"sentence {i}", "label": i % 2} for i in range(8)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = TaskSpec(
        name="local",
        source=DataSource(files={"train": str(data)}),
        splits={"train": "train", "validation": "train", "test": "train"},
        text_columns=["text"],
        labels=["a", "b"],
    )
    cache = TokenizationCache(tmp_path / "cache")
    before = builds()
    CLASSIFICATION.prepare_data(task, tokenizer, TINY, cache=cache)
    assert builds() - before == 2, "validation and test are the same slice of the same file: one entry"
    rows[0]["text"] = "a changed sentence"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    changed = CLASSIFICATION.prepare_data(task, tokenizer, TINY, cache=cache)
    assert builds() - before == 4
    assert changed.train[0]["input_ids"] == tokenizer("a changed sentence", truncation=True)["input_ids"]


def test_an_encoding_only_the_training_split_gets_has_an_entry_of_its_own(tmp_path: Path, tokenizer):
    """Log-likelihood multiple choice trains on the gold choice alone: the training split differs from
    the others even where all three read the same rows, which share one entry."""
    rows = Path(__file__).parent / "fixtures" / "hucopa" / "train.jsonl"
    task = TaskSpec(
        name="hucopa",
        type="multiple_choice",
        source=DataSource(files={"train": str(rows)}),
        splits={"train": "train", "validation": "train", "test": "train"},
        text_columns=["premise"],
        choice_columns=["choice1", "choice2"],
        labels=["1", "2"],
        scoring="loglikelihood",
    )
    before = builds()
    data = TASK_TYPES["multiple_choice"].prepare_data(
        task, tokenizer, TrainingSettings(max_length=64), cache=TokenizationCache(tmp_path)
    )
    assert builds() - before == 2 and len(entries(tmp_path)) == 2
    assert len(data.train[0]["input_ids"]) == 1 and len(data.validation[0]["input_ids"]) == 2
    assert data.train_tokens == sum(len(ids) for row in data.train["input_ids"] for ids in row)


def test_the_tokenizer_fingerprint_follows_the_vocabulary_not_the_truncation_state(tokenizer):
    before = tokenizer_fingerprint(tokenizer)
    tokenizer("a long sentence to cut", truncation=True, max_length=3)
    assert tokenizer_fingerprint(tokenizer) == before
    other = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    other.add_tokens(["peftbenchtoken"])
    assert tokenizer_fingerprint(other) != before


def test_two_builders_racing_for_one_key_leave_one_entry_and_agree(tmp_path: Path, tokenizer):
    """The second builder publishes while the first is still building: the first reuses its entry."""
    from datasets import Dataset

    parts = {"what": "race"}
    loser, winner = TokenizationCache(tmp_path), TokenizationCache(tmp_path)

    def slow_build():
        winner.load_or_build(parts, lambda: Dataset.from_dict({"x": [1, 2]}))
        return Dataset.from_dict({"x": [1, 2]})

    result = loser.load_or_build(parts, slow_build)
    assert result.to_list() == [{"x": 1}, {"x": 2}]
    assert [p.name for p in tmp_path.iterdir()] == [loser.entry(parts).name], "no temp folder left"


def test_an_unreadable_entry_is_rebuilt(tmp_path: Path):
    from datasets import Dataset

    cache = TokenizationCache(tmp_path)
    entry = cache.entry({"what": "broken"})
    entry.mkdir()
    (entry / "state.json").write_text("not json")
    result = cache.load_or_build({"what": "broken"}, lambda: Dataset.from_dict({"x": [3]}))
    assert result.to_list() == [{"x": 3}]
    assert entries(tmp_path) == [entry.name]


def test_the_cache_lives_in_the_sweep_folder_unless_the_environment_says(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(tc.CACHE_ENV, raising=False)
    assert cache_root(tmp_path / "sweep" / "abc123") == tmp_path / "sweep" / ".cache" / "tokenized"
    monkeypatch.setenv(tc.CACHE_ENV, str(tmp_path / "shared"))
    assert cache_root(tmp_path / "sweep" / "abc123") == tmp_path / "shared" / "tokenized"


def test_two_runs_of_a_task_in_one_sweep_tokenize_once(tmp_path: Path, monkeypatch, caplog):
    """The second run (another point: it evaluates during training) reuses all three splits."""
    monkeypatch.delenv(tc.CACHE_ENV, raising=False)
    caplog.set_level(logging.INFO, logger="peftbench")
    evaluated: list[str] = []
    task_type = TASK_TYPES["classification"]
    evaluate = task_type.evaluate

    def spy(trainer, task, data, split):
        evaluated.append(split)
        return evaluate(trainer, task, data, split)

    monkeypatch.setattr(task_type, "evaluate", spy)
    first_spec = demo_run("bitfit", max_steps=1)
    before = builds()
    first = run_one(first_spec, tmp_path / "sweep" / "first")
    assert first.status == "success", first.error
    assert builds() - before == 3
    assert evaluated.count("validation") == 1
    second_spec = demo_run("bitfit", max_steps=1, eval_strategy="steps", eval_steps=1)
    second = run_one(second_spec, tmp_path / "sweep" / "second")
    assert second.status == "success", second.error
    assert builds() - before == 3, "the second run tokenized again"
    assert len(entries(tmp_path / "sweep" / ".cache" / "tokenized")) == 3
    assert sum("reused" in r.getMessage() for r in caplog.records) == 3
    # The second run's validation metrics come from its last in-training evaluation, not a re-run:
    # they must equal the first run's, which evaluated the same model after training.
    assert evaluated.count("validation") == 1, "the second run evaluated validation again"
    assert second.validation == pytest.approx(first.validation)
    assert second.test == pytest.approx(first.test)
