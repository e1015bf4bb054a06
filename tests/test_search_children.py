"""Incremental children of a searched block: they start from their parent cell's winner on their own
seed, found when they start (core/search.py: `resolve_parent`), and wait for it on Slurm
(plan/placement.py: `children_after_the_winner`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from peftbench.core.errors import ConfigError
from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result
from peftbench.core.search import parent_cell, resolved_run_id, started_from
from peftbench.core.spec import RunSpec, parent_run_id
from peftbench.launch.local import run_local
from peftbench.launch.slurm import array_jobs
from peftbench.launch.slurm_state import sweep_status
from peftbench.plan.loading import load_sweep
from peftbench.plan.sweep_plan import load_plan
from tests.conftest import write_yaml
from tests.test_launch_slurm import SITE
from tests.test_search_local import stand_in

LEARNING_RATES = [1.0e-4, 1.0e-3, 1.0e-2]  # stand_in: 1e-3 has the best validation, 1e-2 is halted


def sweep_data(**changes: Any) -> dict[str, Any]:
    return {
        "name": "children",
        "models": ["minilm-l6"],
        "tasks": ["movie_sentiment", "tweet_sentiment"],
        "seeds": [0, 1, 2],
        "search": {"eta": 3, "min_budget": 0.11, "search_seeds": 1},
        "methods": {
            "lora": {"learning_rate": LEARNING_RATES, "tasks": ["movie_sentiment"]},
            "bitfit_after": {
                "method": "bitfit",
                "learning_rate": 1.0e-3,
                "tasks": ["tweet_sentiment"],
                "parent": {"method": "lora", "task": "movie_sentiment"},
                "search": None,
            },
        },
    } | changes


def runs_of(tmp_path: Path, name: str = "children.yaml", **changes: Any) -> list[RunSpec]:
    return load_sweep(write_yaml(tmp_path / name, sweep_data(**changes))).runs


def test_a_searched_parent_is_no_longer_refused_and_its_children_name_the_cell(tmp_path: Path):
    runs = runs_of(tmp_path)
    children = [r for r in runs if r.label == "bitfit_after"]
    assert [r.seed for r in children] == [0, 1, 2]
    assert runs.index(children[0]) > max(runs.index(r) for r in runs if r.label == "lora")  # parents first
    assert {r.model.source for r in children} == {children[0].model.source}  # one cell, every seed
    assert all(parent_cell(r) == ("movie_sentiment", "lora") and parent_run_id(r) is None for r in children)


def test_the_childs_run_id_follows_the_grid_searched_never_the_winner(tmp_path: Path):
    first = [r.run_id for r in runs_of(tmp_path) if r.label == "bitfit_after"]
    assert first == [r.run_id for r in runs_of(tmp_path, "again.yaml") if r.label == "bitfit_after"]
    data = sweep_data()
    data["methods"]["lora"]["learning_rate"] = [1.0e-4, 1.0e-3, 3.0e-3]
    changed = load_sweep(write_yaml(tmp_path / "changed.yaml", data)).runs
    assert set(first).isdisjoint(r.run_id for r in changed if r.label == "bitfit_after")


def test_a_prompt_tuning_parent_is_still_refused_searched_or_not(tmp_path: Path):
    data = sweep_data()
    data["methods"]["lora"]["method"] = "prompt_tuning"
    with pytest.raises(ConfigError) as err:
        load_sweep(write_yaml(tmp_path / "pt.yaml", data))
    assert "methods.bitfit_after.parent: A 'prompt_tuning' parent trains virtual tokens" in str(err.value)


def test_on_slurm_a_child_waits_for_the_search_on_a_searched_seed_and_the_winner_run_on_the_others(
    tmp_path: Path,
):
    data = sweep_data(resources={"gpus": 1})
    plan = load_plan(write_yaml(tmp_path / "children.yaml", data), SITE, tmp_path / "runs")
    search = sorted(r.run_id for r in plan.runs if r.search is not None and not r.search.trains_winner)
    winner_of_seed = {r.seed: r.run_id for r in plan.runs if r.search is not None and r.search.trains_winner}
    for child in (r for r in plan.runs if r.label == "bitfit_after"):
        placed = plan.placed[child.run_id]
        if child.seed == 0:  # the seed that searched: every search run of the cell must end
            assert (placed.after, sorted(placed.after_any)) == (None, search)
        else:  # an ordinary parent: the run that trains the winner on its seed must succeed
            assert (placed.after, placed.after_any) == (winner_of_seed[child.seed], ())
    jobs = array_jobs(plan, plan.runs)
    children = {r.run_id for r in plan.runs if r.label == "bitfit_after"}
    waiting = [job for job in jobs if {r.run_id for r in job.runs} & children]
    assert {p for job in waiting for p in job.after} == set(winner_of_seed.values())
    assert {p for job in waiting for p in job.after_any} == set(search)
    first_child = min(jobs.index(job) for job in waiting)
    assert all(not ({r.run_id for r in job.runs} & children) for job in jobs[:first_child])
    assert all(r.label == "lora" for job in jobs[:first_child] for r in job.runs)


def test_on_the_local_launcher_each_child_starts_from_the_winner_on_its_seed(tmp_path: Path):
    runs = runs_of(tmp_path)
    seen: list[RunSpec] = []
    summary = run_local(runs, tmp_path / "runs", Console(quiet=True), stand_in(seen))
    assert not summary.failed
    assert [r.label for r in seen][-3:] == ["bitfit_after"] * 3  # after the search and the winners
    sweep_dir = tmp_path / "runs" / "children"
    best = next(r for r in runs if r.search is not None and r.training.learning_rate == 1.0e-3)
    trains_winner = [r for r in runs if r.search is not None and r.search.trains_winner]
    winners = {r.seed: resolved_run_id(RunPaths(sweep_dir / r.run_id)) for r in trains_winner}
    for child in (r for r in runs if r.label == "bitfit_after"):
        parent = started_from(RunPaths(sweep_dir / child.run_id))
        assert parent == (best.run_id if child.seed == 0 else winners[child.seed])
        result = read_result(sweep_dir / parent / "result.json")
        assert result.status == "success" and result.spec.training.learning_rate == 1.0e-3


def test_a_child_without_a_winner_fails_in_its_own_folder_with_one_line_and_runs_again(tmp_path: Path):
    runs = runs_of(tmp_path)
    child = next(r for r in runs if r.label == "bitfit_after" and r.seed == 0)
    summary = run_local([child], tmp_path / "runs", Console(quiet=True), stand_in([]))
    assert summary.failed == [child.run_id]
    error = read_result(RunPaths.of(tmp_path / "runs", child).result).error or ""
    assert error.count("\n") == 0 and "starts from the winner of minilm-l6 · movie_sentiment · lora" in error
    [state] = [s for s in sweep_status(runs, tmp_path / "runs") if s.run.run_id == child.run_id]
    assert state.state == "failed" and state.detail == f"failed: {error}"
    summary = run_local(runs, tmp_path / "runs", Console(quiet=True), stand_in([]))  # as resubmit does
    assert not summary.failed
    assert read_result(RunPaths.of(tmp_path / "runs", child).result).status == "success"


@pytest.mark.slow
def test_a_child_trains_from_the_winners_saved_model(tmp_path: Path):
    """Real training (MiniLM, a few steps): the search, the winner on seed 1, then the child block on
    each seed; the child's starting weights are the winner's merged model on its seed, not another
    point's."""
    import torch
    from safetensors.torch import load_file

    from peftbench.run.incremental import parent_model
    from peftbench.run.one import run_one
    from tests.conftest import TINY_TRAINING

    data = sweep_data(seeds=[0, 1], training={**TINY_TRAINING, "max_steps": 3, "eval_strategy": "no"})
    data["search"] = {"eta": 3, "min_budget": 0.34, "search_seeds": 1}  # one rung, at step 1 of 3
    data["tasks"] = ["movie_sentiment", "epistemic_nli"]
    data["methods"]["bitfit_after"]["tasks"] = ["epistemic_nli"]
    runs = load_sweep(write_yaml(tmp_path / "children.yaml", data)).runs
    summary = run_local(
        runs, tmp_path / "runs", Console(quiet=True), lambda spec, paths, _: run_one(spec, paths.root)
    )
    assert not summary.failed
    sweep_dir = tmp_path / "runs" / "children"
    done = [read_result(p) for p in sweep_dir.glob("*/result.json")]
    search = [r for r in done if r.status == "success" and r.spec.search is not None]
    best = max(search, key=lambda r: r.validation["accuracy"])
    [winner_run] = [r for r in runs if r.search is not None and r.search.trains_winner]
    became = resolved_run_id(RunPaths(sweep_dir / winner_run.run_id))
    expected = {0: best.run_id, 1: became}

    def weights(folder: Path) -> dict[str, torch.Tensor]:
        return load_file(folder / "model.safetensors")

    for child in (r for r in runs if r.label == "bitfit_after"):
        child_paths = RunPaths(sweep_dir / child.run_id)
        assert started_from(child_paths) == expected[child.seed]
        assert read_result(child_paths.result).status == "success"
        used = weights(child_paths.parent_model)
        rebuilt = weights(parent_model(sweep_dir / expected[child.seed], tmp_path / f"again-{child.seed}"))
        assert all(torch.equal(used[k], rebuilt[k]) for k in rebuilt)
    others = [r for r in search if r.spec.training.learning_rate != best.spec.training.learning_rate]
    other = weights(parent_model(sweep_dir / others[0].run_id, tmp_path / "other"))
    first_child = next(r.run_id for r in runs if r.label == "bitfit_after")
    used = weights(RunPaths(sweep_dir / first_child).parent_model)
    assert not all(torch.equal(used[k], other[k]) for k in other)  # another point's model differs
