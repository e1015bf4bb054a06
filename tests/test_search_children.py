"""Incremental children of a searched block: they start from their parent cell's winner on their own
seed, found when they start (core/search.py: `resolve_parent`), and wait for it on Slurm
(plan/placement.py: `children_after_the_winner`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from peftbench.core.errors import ConfigError
from peftbench.core.paths import RunPaths
from peftbench.core.results import RunResult, read_result, write_result
from peftbench.core.search import parent_cell, resolved_run_id, started_from
from peftbench.core.spec import RunSpec, parent_run_id
from peftbench.launch.local import run_local
from peftbench.launch.slurm import array_jobs
from peftbench.launch.slurm_records import read_submissions
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


def searching(runs: list[RunSpec]) -> list[RunSpec]:
    """The runs that search the parent cell's grid."""
    return [r for r in runs if r.search is not None and not r.search.trains_winner]


def training_the_winner(runs: list[RunSpec]) -> dict[int, str]:
    """seed -> the run that trains the parent cell's winner on that seed."""
    return {r.seed: r.run_id for r in runs if r.search is not None and r.search.trains_winner}


def children_of(runs: list[RunSpec]) -> list[RunSpec]:
    return [r for r in runs if r.label == "bitfit_after"]


def test_on_slurm_a_child_waits_for_the_search_on_a_searched_seed_and_the_winner_run_on_the_others(
    tmp_path: Path,
):
    data = sweep_data(resources={"gpus": 1})
    plan = load_plan(write_yaml(tmp_path / "children.yaml", data), SITE, tmp_path / "runs")
    search = sorted(r.run_id for r in searching(plan.runs))
    winner_of_seed = training_the_winner(plan.runs)
    waits = {
        c.seed: (plan.placed[c.run_id].after, sorted(plan.placed[c.run_id].after_any))
        for c in children_of(plan.runs)
    }
    # the seed that searched: every search run of the cell must end; the others: an ordinary parent,
    # the run that trains the winner on their seed, must succeed
    assert waits == {0: (None, search), 1: (winner_of_seed[1], []), 2: (winner_of_seed[2], [])}
    jobs = array_jobs(plan, plan.runs)
    array_of = {r.run_id: i for i, job in enumerate(jobs) for r in job.runs}
    for child in children_of(plan.runs):
        job, after, after_any = jobs[array_of[child.run_id]], *waits[child.seed]
        assert array_of[child.run_id] > max(array_of[i] for i in [*after_any, *([after] if after else [])])
        assert set(after_any) <= set(job.after_any) and (after is None or after in job.after)


def test_on_the_local_launcher_each_child_starts_from_the_winner_on_its_seed(tmp_path: Path):
    runs = runs_of(tmp_path)
    seen: list[RunSpec] = []
    summary = run_local(runs, tmp_path / "runs", Console(quiet=True), stand_in(seen))
    assert not summary.failed
    assert [r.label for r in seen][-3:] == ["bitfit_after"] * 3  # after the search and the winners
    sweep_dir = tmp_path / "runs" / "children"
    best = next(r for r in searching(runs) if r.training.learning_rate == 1.0e-3)
    expected = {
        seed: resolved_run_id(RunPaths(sweep_dir / i)) for seed, i in training_the_winner(runs).items()
    }
    expected[0] = best.run_id  # the seed that searched: the search run itself
    parents = {c.seed: started_from(RunPaths(sweep_dir / c.run_id)) for c in children_of(runs)}
    assert parents == expected
    results = [read_result(sweep_dir / str(parent) / "result.json") for parent in parents.values()]
    assert {(r.status, r.spec.training.learning_rate) for r in results} == {("success", 1.0e-3)}


def test_a_child_without_a_winner_fails_in_its_own_folder_with_one_line_and_runs_again(tmp_path: Path):
    runs = runs_of(tmp_path)
    child = children_of(runs)[0]
    summary = run_local([child], tmp_path / "runs", Console(quiet=True), stand_in([]))
    assert summary.failed == [child.run_id]
    error = read_result(RunPaths.of(tmp_path / "runs", child).result).error or ""
    assert "\n" not in error and "starts from the winner of minilm-l6 · movie_sentiment · lora" in error
    [state] = [s for s in sweep_status(runs, tmp_path / "runs") if s.run.run_id == child.run_id]
    assert (state.state, state.detail, state.needs_submission) == ("failed", f"failed: {error}", True)
    summary = run_local(runs, tmp_path / "runs", Console(quiet=True), stand_in([]))  # as resubmit does
    assert not summary.failed
    assert read_result(RunPaths.of(tmp_path / "runs", child).result).status == "success"


def test_a_child_whose_winner_run_failed_is_blocked_naming_it(tmp_path: Path):
    """Seed 1's child waits for the run that trains the winner on seed 1; that run fails here."""
    runs = runs_of(tmp_path)
    execute = stand_in([])

    def winner_fails(spec, paths, on_progress):
        result = execute(spec, paths, on_progress)
        if spec.label == "lora" and spec.search is None:  # the winner, trained on a later seed
            result = result.model_copy(update={"status": "failed", "error": "Traceback ...\nValueError: nan"})
            write_result(paths.result, result)
        return result

    run_local(runs, tmp_path / "runs", Console(quiet=True), winner_fails)
    states = {s.run.run_id: s for s in sweep_status(runs, tmp_path / "runs")}
    child = next(c for c in children_of(runs) if c.seed == 1)
    winner_run = training_the_winner(runs)[1]
    assert (states[child.run_id].state, states[child.run_id].detail) == (
        "blocked",
        f"parent {winner_run} failed",
    )
    error = read_result(RunPaths.of(tmp_path / "runs", child).result).error or ""
    assert "\n" not in error and "has no successful run on seed 1" in error


def test_with_every_seed_searching_a_winner_halted_on_the_childs_seed_is_named(tmp_path: Path):
    runs = runs_of(tmp_path, search={"eta": 3, "min_budget": 0.11})  # no search_seeds: every seed searches
    execute = stand_in([])

    def halted_on_seed_1(spec, paths, on_progress):
        result = execute(spec, paths, on_progress)
        if spec.label == "lora" and spec.seed == 1 and spec.training.learning_rate == 1.0e-3:
            result = result.model_copy(update={"status": "halted", "validation": {}})
            write_result(paths.result, result)
        return result

    summary = run_local(runs, tmp_path / "runs", Console(quiet=True), halted_on_seed_1)
    child = next(c for c in children_of(runs) if c.seed == 1)
    assert summary.failed == [child.run_id]
    error = read_result(RunPaths.of(tmp_path / "runs", child).result).error or ""
    assert "which was halted on seed 1" in error and "give the block `search_seeds`" in error


def test_a_childs_module_names_are_checked_against_its_searched_parents_model(tmp_path: Path):
    from tests.test_bad_input import LOCAL

    data = sweep_data()
    data["methods"]["lora_after"] = data["methods"].pop("bitfit_after") | {
        "method": "lora",
        "target_modules": ["qurey"],
    }
    with pytest.raises(ConfigError) as info:
        load_plan(write_yaml(tmp_path / "c.yaml", data), LOCAL, runs_dir=tmp_path, submitting=False)
    assert "methods.lora_after.target_modules: No module of 'minilm-l6'" in str(info.value)


@pytest.mark.slow
def test_a_child_trains_from_the_winners_saved_model(tmp_path: Path):
    """Real training (MiniLM, a few steps): the search, the winner on seed 1, then the child block on
    each seed; the child's starting weights are the winner's merged model on its seed, not another
    point's."""
    from peftbench.run.incremental import parent_model
    from peftbench.run.one import run_one

    runs = load_sweep(write_yaml(tmp_path / "children.yaml", trained_sweep())).runs
    summary = run_local(
        runs, tmp_path / "runs", Console(quiet=True), lambda spec, paths, _: run_one(spec, paths.root)
    )
    assert not summary.failed
    sweep_dir = tmp_path / "runs" / "children"
    done, best = full_budget_search(runs, sweep_dir)
    [winner_run] = training_the_winner(runs).values()
    expected = {0: best.run_id, 1: resolved_run_id(RunPaths(sweep_dir / winner_run))}
    children = children_of(runs)
    assert {c.seed: started_from(RunPaths(sweep_dir / c.run_id)) for c in children} == expected
    for child in children:
        child_paths = RunPaths(sweep_dir / child.run_id)
        assert read_result(child_paths.result).status == "success"
        rebuilt = parent_model(sweep_dir / expected[child.seed], tmp_path / f"again-{child.seed}")
        assert same_weights(child_paths.parent_model, rebuilt)
    other = next(r for r in done if r.spec.training.learning_rate != best.spec.training.learning_rate)
    other_model = parent_model(sweep_dir / other.run_id, tmp_path / "other")
    assert not same_weights(RunPaths(sweep_dir / children[0].run_id).parent_model, other_model)


def full_budget_search(runs: list[RunSpec], sweep_dir: Path) -> tuple[list[RunResult], RunResult]:
    """The search runs that trained their full budget, and the best of them on validation (ties: the
    first run id)."""
    search = [read_result(RunPaths(sweep_dir / r.run_id).result) for r in searching(runs)]
    done = [r for r in search if r.status == "success"]
    return done, max(sorted(done, key=lambda r: r.run_id), key=lambda r: r.validation["accuracy"])


def trained_sweep() -> dict[str, Any]:
    """The sweep, shrunk to train for real: seeds 0 (searches) and 1 (trains the winner)."""
    from tests.conftest import TINY_TRAINING

    data = sweep_data(seeds=[0, 1], training={**TINY_TRAINING, "max_steps": 3, "eval_strategy": "no"})
    data["search"] = {"eta": 3, "min_budget": 0.34, "search_seeds": 1}  # one rung, at step 1 of 3
    data["tasks"] = ["movie_sentiment", "epistemic_nli"]
    data["methods"]["lora"]["learning_rate"] = [1.0e-4, 1.0e-2]  # two points: one array task each at once
    data["methods"]["bitfit_after"]["tasks"] = ["epistemic_nli"]
    return data


def same_weights(folder: Path, other: Path) -> bool:
    """Whether two saved models hold the same tensors."""
    import torch
    from safetensors.torch import load_file

    mine, theirs = load_file(folder / "model.safetensors"), load_file(other / "model.safetensors")
    return mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


@pytest.mark.slurm
def test_on_slurm_children_wait_for_their_winner_and_start_from_it(tmp_path: Path):
    """The real localhost cluster: the search array; the winner run (and the searched seed's child)
    with `afterany` on it, which becomes the best search point with its own seed and folder when it
    starts; the other seed's child with `afterok` on the winner run. Each child starts from its
    seed's winner."""
    from tests.conftest import require_slurm
    from tests.test_slurm import DEV, all_settled, make_sweep, peftbench, wait_until

    require_slurm()
    data = trained_sweep()
    extra = {"seeds": data["seeds"], "search": data["search"], "tasks": data["tasks"]}
    sweep = make_sweep(tmp_path, "children", data["methods"], {"max_steps": 3}, **extra)
    peftbench("sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path)
    runs = load_plan(sweep, DEV, tmp_path / "runs").runs
    sweep_dir = tmp_path / "runs" / "children"
    jobs = {run_id: job for sub in read_submissions(sweep_dir) for job, run_id in sub.tasks.items()}
    children = {c.seed: c.run_id for c in children_of(runs)}
    assert "afterany:" in dependency_of(jobs[children[0]]) and "afterok:" in dependency_of(jobs[children[1]])
    wait_until("search, winner and children", lambda: all_settled(sweep, tmp_path), timeout=240, every=3)
    _, best = full_budget_search(runs, sweep_dir)
    [winner_run] = training_the_winner(runs).values()
    became = resolved_run_id(RunPaths(sweep_dir / winner_run))  # the winner's own spec, seed and folder
    winner = read_result(RunPaths(sweep_dir / became).result)
    assert winner.status == "success" and winner.spec.seed == 1 and winner.spec.search is None
    assert winner.spec.training.learning_rate == best.spec.training.learning_rate
    expected = {0: best.run_id, 1: became}
    assert {seed: started_from(RunPaths(sweep_dir / i)) for seed, i in children.items()} == expected
    assert {read_result(RunPaths(sweep_dir / i).result).status for i in children.values()} == {"success"}


def dependency_of(job: str) -> str:
    """The Dependency= field `scontrol show job` gives for an array task's job."""
    shown = subprocess.run(["scontrol", "show", "job", job.split("_")[0]], capture_output=True, text=True)
    return next((w for w in shown.stdout.split() if w.startswith("Dependency=")), "")
