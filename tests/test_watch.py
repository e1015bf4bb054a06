"""`status --watch` (launch/watch.py): refreshes until every run has ended, one squeue and one sacct
per refresh for the whole sweep, a floor under the period, each training run's progress file."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.progress import RunProgress, read_progress, write_progress
from peftbench.core.results import RunResult, write_result
from peftbench.launch.claims import SWEEP_LOCK
from peftbench.launch.slurm_records import SUBMISSIONS
from peftbench.launch.watch import WatchTooOften, refreshes
from tests.synthetic_results import result_for

RESULTS = [result_for("minilm-l6", "cola", "lora", seed, r=8) for seed in (0, 1)]
RUNS = [result.spec for result in RESULTS]


def write_results(sweep_dir: Path, results: list[RunResult]) -> None:
    for result in results:
        write_result(RunPaths(sweep_dir / result.run_id).result, result)


def test_progress_tells_speed_and_time_left_and_reads_the_old_format(tmp_path: Path):
    resumed = RunProgress(step=30, max_steps=50, seconds=10.0, first_step=10)  # resumed at step 10
    assert resumed.steps_per_second == 2.0 and resumed.eta_seconds == 10.0
    assert RunProgress(step=10, max_steps=50).eta_seconds is None  # no time yet: no speed, no guess
    write_progress(tmp_path / "progress.json", resumed)
    assert read_progress(tmp_path / "progress.json") == resumed
    (tmp_path / "old.json").write_text('{"step": 5, "max_steps": 9}')  # before seconds were written
    assert read_progress(tmp_path / "old.json") == RunProgress(5, 9)
    assert read_progress(tmp_path / "missing.json") is None


def test_a_local_sweep_is_watched_until_its_last_run_has_a_result(tmp_path: Path):
    sweep_dir = tmp_path / "synth"
    write_results(sweep_dir, RESULTS[:1])
    write_progress(RunPaths(sweep_dir / RUNS[1].run_id).progress, RunProgress(10, 20, seconds=5.0))
    (sweep_dir / SWEEP_LOCK).write_text("a local sweep holds its folder")
    periods = []

    def sleep(period: float) -> None:  # meanwhile the second run ends and the sweep lets go
        periods.append(period)
        write_results(sweep_dir, RESULTS[1:])
        (sweep_dir / SWEEP_LOCK).unlink()

    first, last = list(refreshes(RUNS, tmp_path, 5.0, sleep=sleep))
    assert periods == [5.0] and first.going_on and not last.going_on
    training = first.runs[1]
    assert training.state.state == "unsubmitted" and training.progress == RunProgress(10, 20, 5.0)
    assert training.progress.eta_seconds == 5.0
    assert [w.state.state for w in last.runs] == ["done", "done"] and last.runs[1].progress is None


def test_the_period_has_a_floor_and_the_verb_says_so_in_one_line(tiny_demo: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from peftbench.cli import app

    with pytest.raises(WatchTooOften, match="--every 1: a refresh period is at least 5 seconds"):
        next(refreshes(RUNS, tmp_path, 1.0))
    status = ["status", str(tiny_demo), "--runs-dir", str(tmp_path), "--watch", "--every"]
    refused = CliRunner().invoke(app, [*status, "1"])
    assert refused.exit_code == 2 and refused.stderr.strip().splitlines() == [
        "--every 1: a refresh period is at least 5 seconds"
    ]
    shown = CliRunner().invoke(app, [*status, "5"])
    assert shown.exit_code == 0, shown.output  # nothing submitted, no local sweep: ends at once
    assert "refresh 1 at" in shown.stdout and "nothing pending or running: the watch ends" in shown.stdout
    assert "steps/s" in shown.stdout and "ETA" in shown.stdout


def counting(folder: Path, name: str, calls: Path) -> None:
    """`name` on PATH as the real command, each call counted in `calls`."""
    real = shutil.which(name)
    if real is None:
        pytest.skip(f"{name} is not installed")
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(f'#!/bin/sh\necho {name} >> {calls}\nexec {real} "$@"\n')
    (folder / name).chmod(0o755)


@pytest.mark.slurm
def test_each_refresh_asks_the_scheduler_once_for_the_whole_sweep(tmp_path: Path, monkeypatch):
    """Two runs in a fresh submission (their jobs not known yet: pending); each refresh is one squeue
    and one sacct for both, through the real commands; once both have results, none at all."""
    from tests.test_slurm_state import write_submission_record

    calls = tmp_path / "calls"
    for name in ("squeue", "sacct"):
        counting(tmp_path / "bin", name, calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    sweep_dir = tmp_path / "synth"
    write_submission_record(sweep_dir, "999990", {"999990_0": RUNS[0].run_id, "999990_1": RUNS[1].run_id})
    record = sweep_dir / SUBMISSIONS / "1-999990.json"  # submitted now: sacct has no row yet
    now = datetime.now(timezone.utc).isoformat()
    record.write_text(record.read_text().replace("2020-01-01T00:00:00+00:00", now))
    seen: list[list[str]] = []

    def sleep(period: float) -> None:
        seen.append(calls.read_text().split())
        if len(seen) == 2:
            write_results(sweep_dir, RESULTS)

    shown = list(refreshes(RUNS, tmp_path, 5.0, sleep=sleep))
    assert len(shown) == 3 and [s.going_on for s in shown] == [True, True, False]
    assert [sorted(c) for c in seen] == [["sacct", "squeue"], ["sacct", "sacct", "squeue", "squeue"]]
    assert sorted(calls.read_text().split()) == ["sacct", "sacct", "squeue", "squeue"]  # none once done
