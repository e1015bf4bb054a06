"""The `search:` setting: validated before anything runs, and what it expands to (plan/search_plan.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peftbench.core.errors import ConfigError
from peftbench.plan.loading import load_sweep
from tests.conftest import write_yaml


def sweep(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "searched",
        "models": ["minilm-l6"],
        "tasks": ["movie_sentiment", "tweet_sentiment"],
        "seeds": [0, 1, 2],
        "search": {"strategy": "halving", "eta": 3, "min_budget": 0.11},
        "methods": {"lora": {"learning_rate": [1.0e-4, 1.0e-3, 1.0e-2]}},
    }
    return data | changes


def problems_of(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        load_sweep(write_yaml(tmp_path / "searched.yaml", data))
    return str(err.value)


@pytest.mark.parametrize(
    ("search", "key", "words"),
    [
        ({"eta": 1}, "search.eta", "greater than or equal to 2"),
        ({"min_budget": 0}, "search.min_budget", "greater than 0"),
        ({"min_budget": 1.0}, "search.min_budget", "less than 1"),
        ({"strategy": "hyperband"}, "search.strategy", "halving"),
    ],
)
def test_sweep_wide_bad_values_are_refused_naming_the_key(tmp_path, search, key, words):
    message = problems_of(tmp_path, sweep(tmp_path, search=search))
    assert key in message and words in message


def test_a_method_blocks_own_search_is_checked_under_its_key(tmp_path):
    methods = {"lora": {"learning_rate": [1.0e-4, 1.0e-3], "search": {"eta": 1, "min_budget": 2}}}
    message = problems_of(tmp_path, sweep(tmp_path, search=None, methods=methods))
    assert "methods.lora.search.eta" in message and "methods.lora.search.min_budget" in message


def test_a_grid_of_one_point_is_refused(tmp_path):
    methods = {"lora": {"learning_rate": 1.0e-3}}
    message = problems_of(tmp_path, sweep(tmp_path, methods=methods))
    assert "search" in message and "at least two points" in message and "methods.lora" in message


def test_halving_with_a_target_is_refused(tmp_path):
    methods = {
        "lora": {"learning_rate": [1.0e-4, 1.0e-3], "target_validation": 0.9, "eval_strategy": "epoch"}
    }
    message = problems_of(tmp_path, sweep(tmp_path, methods=methods))
    assert "target_validation" in message and "search" in message


def test_trains_winner_is_the_plans_to_set(tmp_path):
    message = problems_of(tmp_path, sweep(tmp_path, search={"trains_winner": True}))
    assert "search.trains_winner" in message


def test_without_search_seeds_every_seed_searches_every_point(tmp_path):
    runs = load_sweep(write_yaml(tmp_path / "s.yaml", sweep(tmp_path))).runs
    assert len(runs) == 2 * 3 * 3
    assert all(r.search is not None and not r.search.trains_winner for r in runs)


def test_search_seeds_leaves_one_winner_run_per_cell_and_later_seed(tmp_path):
    data = sweep(tmp_path, search={"eta": 3, "min_budget": 0.11, "search_seeds": 1})
    data["methods"]["bitfit"] = {"learning_rate": 1.0e-3, "search": None}  # a block may keep its full grid
    runs = load_sweep(write_yaml(tmp_path / "s.yaml", data)).runs
    lora = [r for r in runs if r.label == "lora"]
    searched = [r for r in lora if not r.search.trains_winner]
    winners = [r for r in lora if r.search.trains_winner]
    assert {r.seed for r in searched} == {0} and len(searched) == 2 * 3
    assert sorted((r.task.name, r.seed) for r in winners) == [
        ("movie_sentiment", 1),
        ("movie_sentiment", 2),
        ("tweet_sentiment", 1),
        ("tweet_sentiment", 2),
    ]
    # in the order a local launcher runs them: each cell's search before its winners
    movie = [r for r in lora if r.task.name == "movie_sentiment"]
    assert [r.search.trains_winner for r in movie] == [False, False, False, True, True]
    bitfit = [r for r in runs if r.label == "bitfit"]
    assert len(bitfit) == 2 * 3 and all(r.search is None for r in bitfit)


def test_search_leaves_the_ids_of_unsearched_runs_alone(tmp_path):
    plain = load_sweep(write_yaml(tmp_path / "a.yaml", sweep(tmp_path, search=None))).runs
    searched = load_sweep(write_yaml(tmp_path / "b.yaml", sweep(tmp_path))).runs
    assert "search" not in plain[0].model_dump(exclude_none=True)
    assert {r.run_id for r in plain}.isdisjoint({r.run_id for r in searched})


def test_a_first_rung_within_the_warm_up_is_noted_in_the_plan_not_refused(tmp_path):
    """The benchmark's grid (27 steps, warm-up 0.1): min_budget 1/9 puts the first rung at step 3, the
    warm-up's last; 1/3 at step 9. Without max_steps the shares are compared."""
    from peftbench.plan.search_plan import early_rung_notes
    from peftbench.plan.sweep_plan import load_plan
    from tests.test_launch_slurm import SITE

    training = {"max_steps": 27, "warmup_ratio": 0.1}
    early = sweep(tmp_path, training=training, search={"eta": 3, "min_budget": 1 / 9})
    plan = load_plan(write_yaml(tmp_path / "early.yaml", early), SITE, tmp_path / "runs")
    [note] = [n for n in plan.notes if n.key == "methods.lora.search"]
    assert "first rung (step 3 of 27) comes within the warm-up (3 steps)" in note.message
    assert "first rung comes after the warm-up (warmup_ratio 0.1)" in note.message
    later = sweep(tmp_path, training=training, search={"eta": 3, "min_budget": 0.34})
    assert early_rung_notes(load_sweep(write_yaml(tmp_path / "later.yaml", later)).runs, "f") == []
    by_share = sweep(tmp_path, training={"warmup_ratio": 0.2})
    [note] = early_rung_notes(load_sweep(write_yaml(tmp_path / "share.yaml", by_share)).runs, "f")
    assert "first rung (11% of the budget) comes within the warm-up (20% of it)" in note.message
    assert (
        early_rung_notes(load_sweep(write_yaml(tmp_path / "default.yaml", sweep(tmp_path))).runs, "f") == []
    )
