"""Halving on the local launcher: grid order, halted runs left alone, seeds that train the winner
(launch/local.py, core/search.py), and how `status` shows them (launch/slurm_state.py).

Training is stood in for by `execute`, which writes the result a run would (the rule inside a run
is tested with real training in tests/test_halving.py): here what matters is what the launcher
runs, in which order, and in which folder."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from peftbench.core.paths import RunPaths
from peftbench.core.results import RunResult, read_result, write_result
from peftbench.core.search import resolved_run_id
from peftbench.launch.local import run_local
from peftbench.launch.slurm_state import sweep_status
from peftbench.plan.loading import load_sweep
from tests.conftest import write_yaml

LEARNING_RATES = [1.0e-4, 1.0e-3, 1.0e-2]
VALIDATION = {1.0e-4: 0.6, 1.0e-3: 0.8, 1.0e-2: 0.7}  # the stand-in's score of each point


def searched_sweep(tmp_path: Path):
    data = {
        "name": "searched",
        "models": ["minilm-l6"],
        "tasks": ["movie_sentiment", "tweet_sentiment"],
        "seeds": [0, 1, 2],
        "search": {"eta": 3, "min_budget": 0.11, "search_seeds": 1},
        "methods": {"lora": {"learning_rate": LEARNING_RATES}},
    }
    return load_sweep(write_yaml(tmp_path / "searched.yaml", data)).runs


def stand_in(seen: list):
    """Trains nothing: the point of lr 1e-2 is halted, the others succeed with VALIDATION's score."""

    def execute(spec, paths, on_progress):
        seen.append(spec)
        lr = spec.training.learning_rate
        halted = spec.search is not None and lr == 1.0e-2
        result = RunResult(
            run_id=spec.run_id,
            status="halted" if halted else "success",
            spec=spec,
            validation={} if halted else {"accuracy": VALIDATION[lr]},
            test={} if halted else {"accuracy": VALIDATION[lr] - 0.05},
            error="Traceback ...\npeftbench.core.search.Halted: halted at rung 0 (step 1 of 9)"
            if halted
            else None,
            started_at="2026-01-01T00:00:00+00:00",
            finished_at="2026-01-01T00:00:01+00:00",
        )
        write_result(paths.result, result)
        return result

    return execute


def test_the_search_runs_in_grid_order_then_each_later_seed_trains_the_winner(tmp_path: Path):
    runs = searched_sweep(tmp_path)
    seen: list = []
    summary = run_local(runs, tmp_path / "runs", Console(quiet=True), stand_in(seen))
    assert not summary.failed  # halted is not a failure
    movie = [
        (s.seed, s.training.learning_rate, s.search is None) for s in seen if s.task.name == "movie_sentiment"
    ]
    assert movie == [
        (0, 1.0e-4, False),
        (0, 1.0e-3, False),
        (0, 1.0e-2, False),
        (1, 1.0e-3, True),
        (2, 1.0e-3, True),
    ]
    sweep_dir = tmp_path / "runs" / "searched"
    for placeholder in (r for r in runs if r.search.trains_winner):
        became = resolved_run_id(RunPaths(sweep_dir / placeholder.run_id))
        result = read_result(sweep_dir / became / "result.json")  # its own folder, under its own id
        assert result.spec.seed == placeholder.seed and result.spec.search is None
        assert result.spec.training.learning_rate == 1.0e-3  # the best validation of the search


def test_halted_runs_are_left_alone_and_status_counts_them(tmp_path: Path):
    runs = searched_sweep(tmp_path)
    run_local(runs, tmp_path / "runs", Console(quiet=True), stand_in([]))
    again: list = []
    summary = run_local(runs, tmp_path / "runs", Console(quiet=True), stand_in(again))
    assert again == [] and summary.skipped == len(runs) - 4  # the four winner runs resolve again ...
    states = {s.run.run_id: s for s in sweep_status(runs, tmp_path / "runs")}
    counts: dict[str, int] = {}
    for s in states.values():
        counts[s.state] = counts.get(s.state, 0) + 1
    assert counts == {"done": 4 + 4, "halted": 2}  # ... and find their run done
    halted = next(s for s in states.values() if s.state == "halted")
    assert halted.detail == "halted at rung 0 (step 1 of 9)" and not halted.needs_submission


def test_a_winner_run_before_its_search_fails_in_its_own_folder_and_runs_later(tmp_path: Path):
    runs = searched_sweep(tmp_path)
    winner = next(r for r in runs if r.search.trains_winner)
    summary = run_local([winner], tmp_path / "runs", Console(quiet=True), stand_in([]))
    assert summary.failed == [winner.run_id]
    result = read_result(RunPaths.of(tmp_path / "runs", winner).result)
    assert result.status == "failed" and "no search run of that cell has finished" in result.error
    summary = run_local(runs, tmp_path / "runs", Console(quiet=True), stand_in([]))
    assert not summary.failed and not RunPaths.of(tmp_path / "runs", winner).result.exists()


def test_an_array_task_of_a_winner_run_trains_the_winner_in_its_own_folder(tmp_path: Path, monkeypatch):
    """What a Slurm array task does with a run that trains its cell's winner (launch/array_task.py):
    before its search: a failed result in its own folder; after: it becomes the winner's run, whose
    own folder gets its spec and claim (here that run is already done, so nothing trains)."""
    from peftbench.core.results import write_spec
    from peftbench.launch.array_task import ALREADY_DONE, RunTask

    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "90")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    runs = searched_sweep(tmp_path)
    sweep_dir = tmp_path / "runs" / "searched"
    winner = next(r for r in runs if r.search.trains_winner)
    paths = RunPaths(sweep_dir / winner.run_id)
    write_spec(paths.spec, winner)
    assert RunTask()(str(paths.spec), str(paths.root)) == "failed"
    assert "no search run of that cell has finished" in read_result(paths.result).error
    search = [r for r in runs if not r.search.trains_winner]
    run_local(search, tmp_path / "runs", Console(quiet=True), stand_in([]))
    resolved = next(r for r in search if r.task == winner.task and r.training.learning_rate == 1.0e-3)
    resolved = resolved.model_copy(update={"seed": winner.seed, "search": None})
    stand_in([])(resolved, RunPaths(sweep_dir / resolved.run_id), None)  # the winner's run, trained
    assert RunTask()(str(paths.spec), str(paths.root)) == ALREADY_DONE
    assert resolved_run_id(paths) == resolved.run_id and not paths.result.exists()
    assert (sweep_dir / resolved.run_id / "spec.json").is_file()


def test_collect_counts_a_run_that_became_its_winner_as_ended(tmp_path: Path):
    from peftbench.collect.merge import unfinished_run_dirs
    from peftbench.core.results import write_spec

    runs = searched_sweep(tmp_path)
    sweep_dir = tmp_path / "runs" / "searched"
    for run in runs:  # as a Slurm submission leaves them: a spec in every run's folder
        write_spec(RunPaths(sweep_dir / run.run_id).spec, run)
    assert len(unfinished_run_dirs([sweep_dir])) == len(runs)
    run_local(runs, tmp_path / "runs", Console(quiet=True), stand_in([]))
    assert unfinished_run_dirs([sweep_dir]) == []
