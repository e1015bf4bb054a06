"""Precision/recall/F1 averaging as a task setting: the values, and the errors of a bad setting."""

from __future__ import annotations

import pytest
from sklearn.metrics import precision_recall_fscore_support

from peftbench.core.errors import ConfigError
from peftbench.plan.loading import load_sweep
from peftbench.tasks.metrics import classification_metrics

# 10 yes/no answers: 4 true positives, 2 false positives, 1 false negative, 3 true negatives
GOLD = [1, 1, 1, 1, 0, 0, 0, 0, 1, 0]
PREDICTED = [1, 1, 1, 0, 1, 1, 0, 0, 1, 0]
BASE = {"name": "t", "models": ["minilm-l6"], "tasks": ["movie_sentiment"], "methods": {"lora": {"r": 8}}}


def test_binary_scores_the_positive_class_and_f1_can_exceed_accuracy():
    """As in the BERTić table: binary F1 is the harmonic mean of P and R and can be above accuracy."""
    metrics = classification_metrics(PREDICTED, GOLD, "binary")
    assert metrics["precision_binary"] == pytest.approx(4 / 6)
    assert metrics["recall_binary"] == pytest.approx(4 / 5)
    assert metrics["f1_binary"] == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))
    assert metrics["accuracy"] == pytest.approx(0.7)
    assert metrics["f1_binary"] > metrics["accuracy"]
    # macro stays as it was: the mean of the two classes' F1 (class 0: P 3/4, R 3/5)
    assert metrics["f1_macro"] == pytest.approx((8 / 11 + 2 * 0.75 * 0.6 / 1.35) / 2)


@pytest.mark.parametrize("averaging", ["binary", "macro", "micro", "weighted"])
def test_every_averaging_matches_scikit_learn(averaging: str):
    three_classes = ([0, 0, 0, 1, 1, 2, 2, 2, 2, 2], [0, 1, 0, 1, 2, 2, 2, 0, 2, 1])
    gold, predicted = (GOLD, PREDICTED) if averaging == "binary" else three_classes
    precision, recall, f1, _ = precision_recall_fscore_support(gold, predicted, average=averaging)
    metrics = classification_metrics(predicted, gold, averaging)
    assert [metrics[f"{m}_{averaging}"] for m in ("precision", "recall", "f1")] == pytest.approx(
        [precision, recall, f1]
    )
    assert "f1_macro" in metrics  # macro always comes, so older tables keep their columns
    if averaging == "micro":
        assert metrics["f1_micro"] == pytest.approx(metrics["accuracy"])


def test_a_sweep_sets_a_catalog_tasks_averaging_and_only_that_tasks_run_ids_move(sweep_file):
    plain = load_sweep(sweep_file(BASE)).runs
    settings = {"movie_sentiment": {"averaging": "binary"}}
    binary = load_sweep(sweep_file({**BASE, "task_settings": settings})).runs
    assert [r.task.averaging for r in binary] == ["binary"] and plain[0].task.averaging is None
    assert binary[0].run_id != plain[0].run_id
    assert "averaging" not in plain[0].model_dump(exclude_none=True)["task"]  # old run ids unchanged


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"movie_sentiment": {"averaging": "harmonic"}}, "task_settings.movie_sentiment.averaging"),
        ({"movie_sentment": {"averaging": "binary"}}, "Did you mean 'movie_sentiment'?"),
        ({"movie_sentiment": {"averging": "binary"}}, "task_settings.movie_sentiment.averging"),
    ],
)
def test_a_bad_setting_is_named_with_its_file_and_key(sweep_file, settings, expected):
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep_file({**BASE, "task_settings": settings}))
    message = str(info.value)
    assert "sweep.yaml" in message and expected in message
    if "harmonic" in str(settings):
        assert all(a in message for a in ("binary", "macro", "micro", "weighted"))


def test_binary_needs_two_labels_and_a_task_type_with_classes(sweep_file):
    three = {"name": "three", "source": {"bundled": "movie_sentiment"}, "text_columns": ["text"]}
    three |= {"labels": ["a", "b", "c"]}
    tagged = {"name": "tags", "type": "token_classification", "source": {"bundled": "movie_sentiment"}}
    tagged |= {"text_columns": ["text"], "labels": ["O", "B-X"], "metric": "entity_f1"}
    settings = {"three": {"averaging": "binary"}, "tags": {"averaging": "micro"}}
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep_file({**BASE, "tasks": [three, tagged], "task_settings": settings}))
    message = str(info.value)
    assert "task_settings.three.averaging: binary averaging needs exactly two labels" in message
    assert "task_settings.tags.averaging: Task type 'token_classification' has no class averaging" in message
