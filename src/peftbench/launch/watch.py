"""`status --watch`: the sweep's states, redrawn every period until every run has ended.

Each refresh is one `sweep_report`: one squeue and one sacct for the whole sweep (none for runs
already done), never a query per run. The period has a floor, `MIN_PERIOD_S`, so that a watch left
open by every user of a cluster cannot hammer its controller. A training run's step, speed and
time left come from its progress file (`core/progress.py`), not from the scheduler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from peftbench.core.errors import PeftbenchError
from peftbench.core.paths import RunPaths
from peftbench.core.progress import RunProgress, read_progress
from peftbench.core.spec import RunSpec
from peftbench.launch.claims import SWEEP_LOCK
from peftbench.launch.slurm_state import RunState, SweepReport, sweep_report

MIN_PERIOD_S = 5.0  # the floor of the refresh period: at most one squeue + one sacct per 5 s
STILL_GOING = {"pending", "running", "unknown"}


class WatchTooOften(PeftbenchError):
    """A refresh period under the floor."""


@dataclass(frozen=True)
class WatchedRun:
    """A run's state, and its progress file while it trains (None before its first write)."""

    state: RunState
    progress: RunProgress | None


@dataclass(frozen=True)
class Refresh:
    """One redraw: every run, what the scheduler could not tell, and whether the sweep goes on."""

    sweep: str
    number: int
    report: SweepReport
    runs: list[WatchedRun]
    going_on: bool


def check_period(period: float) -> None:
    if period < MIN_PERIOD_S:
        raise WatchTooOften(f"--every {period:g}: a refresh period is at least {MIN_PERIOD_S:g} seconds")


def refreshes(
    runs: list[RunSpec], runs_dir: Path, period: float, sleep: Callable[[float], None] = time.sleep
) -> Iterator[Refresh]:
    """A Refresh every `period` seconds, the last one when no run is pending, running or unknown (and
    no local `sweep` holds the folder with runs left). WatchTooOften below the floor."""
    check_period(period)
    sweep_dir = Path(runs_dir) / runs[0].sweep if runs else Path(runs_dir)
    number = 0
    while True:
        number += 1
        report = sweep_report(runs, runs_dir)
        watched = [WatchedRun(s, _progress(sweep_dir, s)) for s in report.runs]
        going_on = _going_on(report.runs, sweep_dir)
        yield Refresh(sweep_dir.name, number, report, watched, going_on)
        if not going_on:
            return
        sleep(period)


def _progress(sweep_dir: Path, state: RunState) -> RunProgress | None:
    """A run's progress while it has no result of its own (a run that has ended keeps an old file)."""
    if state.state in STILL_GOING or state.state == "unsubmitted":
        return read_progress(RunPaths(sweep_dir / state.run.run_id).progress)
    return None


def _going_on(states: list[RunState], sweep_dir: Path) -> bool:
    if any(s.state in STILL_GOING for s in states):
        return True
    local_sweep = (sweep_dir / SWEEP_LOCK).exists()  # a local sweep's runs have no job to ask about
    return local_sweep and any(s.state == "unsubmitted" for s in states)


def watch_until_ended(
    runs: list[RunSpec], runs_dir: Path, period: float, show: Callable[[Refresh], None]
) -> None:
    """Show each refresh until the sweep has ended, or Ctrl-C. WatchTooOften below the floor."""
    try:
        for refresh in refreshes(runs, runs_dir, period):
            show(refresh)
    except KeyboardInterrupt:
        pass  # the user stopped watching; nothing to undo
