"""Halving on Slurm: the seeds after a search are arrays of their own that wait for the search's
jobs to end (`afterany`), and each of their tasks becomes the winner when it starts (on the real
localhost cluster: tests/test_search_children.py, which also runs the children of the search)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftbench.launch.slurm import array_jobs
from peftbench.plan.sweep_plan import load_plan
from tests.conftest import write_yaml
from tests.test_launch_slurm import SITE


def searched_plan(tmp_path: Path, **changes: Any):
    data = {
        "name": "searched",
        "models": ["minilm-l6"],
        "tasks": ["movie_sentiment", "tweet_sentiment"],
        "seeds": [0, 1, 2],
        "search": {"eta": 3, "min_budget": 0.11, "search_seeds": 1},
        "methods": {"lora": {"learning_rate": [1.0e-4, 1.0e-3, 1.0e-2]}},
        "resources": {"gpus": 1},
    } | changes
    return load_plan(write_yaml(tmp_path / "searched.yaml", data), SITE, tmp_path / "runs")


def test_the_winner_runs_wait_for_every_search_run_of_their_cell_to_end(tmp_path: Path):
    plan = searched_plan(tmp_path)
    search = [r for r in plan.runs if not r.search.trains_winner]
    winners = [r for r in plan.runs if r.search.trains_winner]
    for winner in winners:
        cell = sorted(r.run_id for r in search if r.task == winner.task)
        assert sorted(plan.placed[winner.run_id].after_any) == cell
    jobs = array_jobs(plan, plan.runs)
    held = [{r.run_id for r in job.runs} for job in jobs]
    search_ids, winner_ids = {r.run_id for r in search}, {r.run_id for r in winners}
    last_search = max(i for i, ids in enumerate(held) if ids & search_ids)
    first_winner = min(i for i, ids in enumerate(held) if ids & winner_ids)
    assert last_search < first_winner  # a later generation: its own arrays
    assert all(not (ids & search_ids and ids & winner_ids) for ids in held)
    waiting = [job for job, ids in zip(jobs, held, strict=True) if ids & winner_ids]
    assert {p for job in waiting for p in job.after_any} == search_ids
    assert "after_any" in waiting[0].described(plan.runs_dir) and not jobs[0].after_any


def test_winner_runs_submitted_alone_wait_only_for_search_runs_still_live(tmp_path: Path):
    plan = searched_plan(tmp_path)
    winners = [r for r in plan.runs if r.search.trains_winner]
    live = next(r for r in plan.runs if not r.search.trains_winner and r.task == winners[0].task)
    jobs = array_jobs(plan, winners, live={live.run_id})
    assert sorted(p for job in jobs for p in job.after_any) == [live.run_id]
