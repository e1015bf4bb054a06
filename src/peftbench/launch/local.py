"""Run a sweep's runs on this machine, one after the other, each in its own process.

A process per run gives each run its own peak-memory figure and means a crash or a kill takes
only that run down: the launcher then writes its `failed`/`killed` result itself. Runs that
already have a success result (or were halted by successive halving) are skipped, so an interrupted
sweep resumes where it stopped. A run that trains its cell's winner (`search_seeds`) becomes that
run when its turn comes: the grid's order puts every cell's search before it, and a child of a
searched block after the block, so its cell's winner is known when it starts.

Ctrl-C (SIGINT) or a SIGTERM to the launcher stops the sweep, not just the run: the run's process
is stopped too (the same signal, then SIGKILL after `STOP_GRACE_SECONDS`), the run gets a result
with status `interrupted` (SIGINT) or `killed` (SIGTERM) unless it managed to write its own, and
`run_local` returns with `stopped` set, so the command can say so in one line.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from peftbench.core.directions import JUDGE
from peftbench.core.paths import RunPaths
from peftbench.core.progress import read_progress
from peftbench.core.results import (
    FINAL_STATUSES,
    Cost,
    RunResult,
    RunStatus,
    has_final_result,
    read_result,
    utc_now,
    write_result,
    write_spec,
)
from peftbench.core.search import NoWinnerYet, halt_reason, no_winner_result, resolve_run
from peftbench.core.spec import RunSpec

LOG_TAIL_LINES = 30
STOP_GRACE_SECONDS = 10.0  # how long a stopped run's process may take to exit before SIGKILL
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(Exception):
    """The launcher got SIGINT or SIGTERM: stop the sweep. `result`: the stopped run's record, if any."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.result: RunResult | None = None

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def status(self) -> RunStatus:
        return "interrupted" if self.signum == signal.SIGINT else "killed"


@dataclass
class LocalSummary:
    ran: int
    skipped: int
    failed: list[str]  # run ids whose result is not success
    stopped: StopRequested | None = None  # set when SIGINT/SIGTERM stopped the sweep
    not_started: int = 0  # runs left untouched after a stop

    def stop_message(self, sweep_dir: Path) -> str:
        """One line on what a stop did; '' when the sweep was not stopped."""
        if self.stopped is None:
            return ""
        stopped = self.stopped
        run = stopped.result
        what = (
            f"run {run.run_id} recorded as '{run.status}' in {sweep_dir / run.run_id / 'result.json'}"
            if run is not None
            else "no run was in progress"
        )
        return (
            f"Stopped by {stopped.signal_name}: {what}; {self.not_started} run(s) not started. "
            "The same command resumes (runs with a success result are skipped)."
        )


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise StopRequested (once; later ones wait for the cleanup).

    Outside the main thread signals cannot be caught: then this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = []

    def handler(signum: int, _frame: object) -> None:
        if not raised:
            raised.append(signum)
            raise StopRequested(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


OnProgress = Callable[[int, int], None]


def run_in_subprocess(spec: RunSpec, paths: RunPaths, on_progress: OnProgress | None = None) -> RunResult:
    """`python -m peftbench run-one` for one run; a result is written even if the process dies."""
    paths.root.mkdir(parents=True, exist_ok=True)
    write_spec(paths.spec, spec)
    paths.progress.unlink(missing_ok=True)
    before = paths.result.stat().st_mtime_ns if paths.result.exists() else None
    started_at, start = utc_now(), time.perf_counter()
    command = [sys.executable, "-m", "peftbench", "run-one", str(paths.spec), str(paths.root)]
    with open(paths.log, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            while process.poll() is None:
                time.sleep(0.5)
                if on_progress is not None:
                    _report_progress(paths.progress, on_progress)
        except StopRequested as stop:
            _stop_process(process, stop.signum)
            wall = time.perf_counter() - start
            stop.result = _fresh_result(paths, before) or _stopped_run_result(
                spec, paths, stop, started_at, wall
            )
            raise
        code = process.returncode
    return _fresh_result(paths, before) or _lost_run_result(
        spec, paths, code, started_at, time.perf_counter() - start
    )


def _fresh_result(paths: RunPaths, before: int | None) -> RunResult | None:
    """The result the run's process wrote itself, if it wrote one (the file changed since `before`)."""
    if paths.result.exists() and paths.result.stat().st_mtime_ns != before:
        return read_result(paths.result)
    return None


def _stop_process(process: subprocess.Popen, signum: int) -> None:
    """Pass the launcher's signal on to the run's process; SIGKILL it if it has not exited in time."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _stopped_run_result(
    spec: RunSpec, paths: RunPaths, stop: StopRequested, started_at: str, wall: float
) -> RunResult:
    """The record of a run stopped because the launcher was (SIGINT: interrupted, SIGTERM: killed)."""
    result = RunResult(
        run_id=spec.run_id,
        status=stop.status,
        spec=spec,
        error=f"The launcher got {stop.signal_name} and stopped the run after {wall:.0f} s. "
        f"Last lines of {paths.log}:\n" + "\n".join(_log_tail(paths)),
        cost=Cost(wall_seconds=wall),
        started_at=started_at,
        finished_at=utc_now(),
    )
    write_result(paths.result, result)
    return result


def _log_tail(paths: RunPaths) -> list[str]:
    if not paths.log.is_file():
        return []
    return paths.log.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]


def _report_progress(path: Path, on_progress: OnProgress) -> None:
    progress = read_progress(path)
    if progress is not None:  # else not written yet
        on_progress(progress.step, progress.max_steps)


def _lost_run_result(spec: RunSpec, paths: RunPaths, code: int, started_at: str, wall: float) -> RunResult:
    """The record of a run whose process ended without writing one (killed, segfault, ...)."""
    if code < 0:
        how, status = f"killed by signal {signal.Signals(-code).name}", "killed"
    else:
        how, status = f"exited with code {code} without writing a result", "failed"
    tail = _log_tail(paths)
    result = RunResult(
        run_id=spec.run_id,
        status=status,
        spec=spec,
        error=f"The run's process {how}. Last lines of {paths.log}:\n" + "\n".join(tail),
        cost=Cost(wall_seconds=wall),
        started_at=started_at,
        finished_at=utc_now(),
    )
    write_result(paths.result, result)
    return result


def run_local(
    runs: list[RunSpec],
    runs_dir: Path,
    console: Console | None = None,
    execute: Callable[[RunSpec, RunPaths, OnProgress], RunResult] = run_in_subprocess,
) -> LocalSummary:
    """Run every run without a success result, in order, with a progress display.

    SIGINT or SIGTERM stops the sweep: the run in progress is recorded (see `run_in_subprocess`), the
    rest are not started, and the summary says so (`stopped`, `not_started`).
    """
    console = console or Console()
    todo = [r for r in runs if not has_final_result(RunPaths.of(runs_dir, r))]
    skipped = len(runs) - len(todo)
    if skipped:
        console.print(f"[dim]{skipped} of {len(runs)} runs already have a success result: skipped.[/dim]")
    failed: list[str] = []
    started = 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with stop_on_signals(), Progress(*columns, console=console) as progress:
            bar = progress.add_task("runs", total=len(todo))
            steps = progress.add_task("  steps", total=None)
            for spec in todo:
                name = f"{spec.model.name} · {spec.task.name} · {spec.label} · seed {spec.seed}"
                progress.update(bar, description=f"[bold]{spec.run_id}[/bold] {name}")
                progress.reset(steps, total=None)

                def on_progress(step: int, total: int) -> None:
                    progress.update(steps, completed=step, total=total)

                started += 1
                result = _train(spec, runs_dir, execute, on_progress)
                progress.console.print(_one_line(result, name))
                if result.status not in FINAL_STATUSES:
                    failed.append(spec.run_id)
                progress.advance(bar)
    except StopRequested as stop:
        if stop.result is not None and stop.result.status not in FINAL_STATUSES:
            failed.append(stop.result.run_id)
        return LocalSummary(started, skipped, failed, stop, not_started=len(todo) - started)
    return LocalSummary(ran=len(todo), skipped=skipped, failed=failed)


def _train(
    spec: RunSpec,
    runs_dir: Path,
    execute: Callable[[RunSpec, RunPaths, OnProgress], RunResult],
    on_progress: OnProgress,
) -> RunResult:
    """`spec` trained in its folder; a run that trains its cell's winner becomes that run first, and a
    child of a searched block finds the run it starts from (core/search.py: `resolve_run`); either ends
    failed, in its own folder, while the cell has no winner yet."""
    paths = RunPaths.of(runs_dir, spec)
    try:
        resolved = resolve_run(spec, paths.root.parent)
    except NoWinnerYet as err:
        result = no_winner_result(spec, err)
        write_result(paths.result, result)
        return result
    if resolved is not spec:
        paths.result.unlink(missing_ok=True)  # an earlier 'no winner yet' is history now
        paths = RunPaths.of(runs_dir, resolved)
        if has_final_result(paths):
            return read_result(paths.result)
    return execute(resolved, paths, on_progress)


def _one_line(result: RunResult, name: str) -> str:
    if result.status == "halted":
        return f"[blue]■ halted[/blue] {result.run_id} {name}: {halt_reason(result.error)}"
    if result.status != "success":
        last = (result.error or "").strip().splitlines()[-1:] or [""]
        return f"[red]✗ {result.status}[/red] {result.run_id} {name}: {last[0]}"
    metric = result.spec.task.metric
    seconds = result.cost.wall_seconds if result.cost else 0.0
    # a judge apart from the run (core/judging.py) scores the answers later: no figure yet, not a NaN
    waiting = metric == JUDGE and metric not in result.test
    score = "to be judged (`peftbench judge`)" if waiting else f"{result.test.get(metric, float('nan')):.3f}"
    return f"[green]✓[/green] {result.run_id} {name}: test {metric} {score} ({seconds:.0f} s)"
