"""The Pareto front: cheaper and better wins; direction of the score is respected."""

from __future__ import annotations

from peftbench.collect.pareto import pareto_front


def test_front_keeps_points_nothing_beats_on_both():
    costs = [1.0, 2.0, 3.0, 4.0, 2.5]
    scores = [0.70, 0.80, 0.79, 0.90, 0.85]
    assert pareto_front(costs, scores) == [0, 1, 4, 3]  # 2 is dominated by 1 (cheaper and better)


def test_lower_is_better_scores_and_ties():
    assert pareto_front([1, 2, 3], [0.5, 0.4, 0.45], higher_is_better=False) == [0, 1]
    assert pareto_front([1, 1, 2], [0.6, 0.7, 0.7]) == [1]  # same cost: the better; same score: the cheaper


def test_missing_values_are_never_on_the_front():
    assert pareto_front([float("nan"), 1.0], [0.99, 0.5]) == [1]
    assert pareto_front([], []) == []
