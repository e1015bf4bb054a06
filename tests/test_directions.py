"""Metric names and directions: one list, built from the groups task types declare; an unknown name raises."""

from __future__ import annotations

import numpy as np
import pytest

from peftbench.core.directions import (
    COST_METRICS,
    LOSS,
    METRIC_DIRECTION,
    direction,
    higher_is_better,
    metric_name,
)
from peftbench.core.errors import PeftbenchError, UnknownMetric
from peftbench.core.spec import AVERAGINGS
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from peftbench.tasks.coreference.scores import coref_metrics
from peftbench.tasks.judge import judge_metrics
from peftbench.tasks.metrics import (
    answer_group_metrics,
    choice_metrics,
    classification_metrics,
    entity_metrics,
    text_metrics,
)


def test_an_unknown_metric_raises_naming_it_the_known_ones_and_a_near_match():
    with pytest.raises(UnknownMetric) as raised:
        higher_is_better("acuracy")
    message = str(raised.value)
    assert "'acuracy'" in message and "Did you mean 'accuracy'?" in message
    assert "conll_f1" in message and "loss" in message  # the known ones are listed
    assert isinstance(raised.value, PeftbenchError) and raised.value.metric == "acuracy"


@pytest.mark.parametrize("name", ["", "judge/", "test_", "perplexity", "eval_perplexity", "rouge/x"])
def test_no_name_outside_the_groups_counts_as_higher(name: str):
    with pytest.raises(UnknownMetric):
        direction(name)


def test_scores_are_higher_loss_and_costs_lower():
    assert higher_is_better("accuracy") and higher_is_better("conll_f1") and higher_is_better("judge")
    assert not higher_is_better(LOSS)
    assert all(not higher_is_better(name) for name in COST_METRICS)
    assert set(METRIC_DIRECTION.values()) == {"higher", "lower"}


@pytest.mark.parametrize(
    ("key", "metric"),
    [
        ("eval_loss", "loss"),  # the Trainer's key
        ("test_accuracy", "accuracy"),  # a collected column
        ("validation_rougeL", "rougeL"),
        ("judge/math", "judge"),  # the judge's per-category means
        ("test_judge/writing", "judge"),
        ("train_seconds", "train_seconds"),  # listed as it is: no prefix taken off
    ],
)
def test_split_prefixes_and_judge_categories_name_their_metric(key: str, metric: str):
    assert metric_name(key) == metric
    assert direction(key) == METRIC_DIRECTION[metric]


def test_every_metric_a_task_type_declares_or_selects_on_has_a_direction():
    declared = {name for task_type in TASK_TYPES.values() for name in task_type.metrics}
    assert declared <= set(METRIC_DIRECTION)
    for task in TASK_CATALOG.values():
        task_type = TASK_TYPES[task.type]
        direction(task.metric)
        direction(task_type.selection_metric(task))
        assert all(direction(name) for name in task_type.evaluate_only_metrics(task))


def test_every_metric_the_scorers_report_has_a_direction():
    """What the metric functions return, in every averaging and scoring, is a listed metric."""
    gold, predicted = [0, 1, 1, 0], [0, 1, 0, 0]
    reported = set(answer_group_metrics(predicted, gold, ["a", "a", "b", "b"]))
    for averaging in AVERAGINGS:
        reported |= set(classification_metrics(predicted, gold, averaging))
    reported |= set(choice_metrics(np.zeros((2, 3)), [0, 1]))
    reported |= set(choice_metrics(np.zeros((2, 3, 3)), [0, 1]))
    reported |= set(entity_metrics([["B-PER", "O"]], [["B-PER", "O"]]))
    reported |= set(coref_metrics([([[1, 2]], [[1, 2]])]))
    reported |= set(text_metrics(["the cat sat"], ["the cat sat"]))
    reported |= set(judge_metrics([0.5, 1.0], ["math", "code"]))
    assert [name for name in sorted(reported) if metric_name(name) not in METRIC_DIRECTION] == []
