"""Halving on Slurm: the seeds after a search are arrays of their own that wait for the search's
jobs to end (`afterany`), and each of their tasks becomes the winner when it starts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

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


@pytest.mark.slurm
def test_on_slurm_the_later_seed_waits_for_the_search_and_trains_its_winner(tmp_path: Path):
    """The real localhost cluster: the search array, then the winner's array with an afterany
    dependency on it; the winner task becomes the best search point with its own seed and folder."""
    from peftbench.core.paths import RunPaths
    from peftbench.core.results import read_result
    from peftbench.core.search import resolved_run_id
    from peftbench.launch.slurm_records import read_submissions
    from tests.test_slurm import DEV, all_settled, make_sweep, peftbench, states_of, wait_until

    try:
        node = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        node = ""
    if not any(state in node for state in ("idle", "mixed", "allocated")):
        pytest.skip("no Slurm cluster on this machine: `bash slurm/local_up.sh` starts one")
    methods = {"lora": {"learning_rate": [1.0e-4, 1.0e-3, 1.0e-2]}}
    search = {"eta": 3, "min_budget": 0.34, "search_seeds": 1}  # one rung, at step 1 of 3
    sweep = make_sweep(tmp_path, "halving", methods, {"max_steps": 3}, seeds=[0, 1], search=search)
    peftbench("sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path)
    sweep_dir = tmp_path / "runs" / "halving"
    searched, winners = read_submissions(sweep_dir)
    assert len(searched.tasks) == 3 and len(winners.tasks) == 1
    [(winner_job, winner_id)] = winners.tasks.items()
    shown = subprocess.run(
        ["scontrol", "show", "job", winner_job.split("_")[0]], capture_output=True, text=True
    )
    assert "Dependency=afterany:" in shown.stdout  # the search trains for a while yet: still unmet
    wait_until("search and winner", lambda: all_settled(sweep, tmp_path), timeout=300, every=3)
    became = resolved_run_id(RunPaths(sweep_dir / winner_id))
    result = read_result(RunPaths(sweep_dir / became).result)
    assert result.status == "success" and result.spec.seed == 1 and result.spec.search is None
    search_results = [read_result(RunPaths(sweep_dir / run_id).result) for run_id in searched.tasks.values()]
    done = [r for r in search_results if r.status == "success"]
    best = max(done, key=lambda r: r.validation["accuracy"])
    assert result.spec.training.learning_rate == best.spec.training.learning_rate
    assert {s.state for s in states_of(sweep, tmp_path).values()} <= {"done", "halted"}
