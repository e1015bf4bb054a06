"""Run a sweep's runs on this machine, one after the other, each in its own process.

A process per run gives each run its own peak-memory figure and means a crash or a kill takes
only that run down: the launcher then writes its `failed`/`killed` result itself. Runs that
already have a success result are skipped, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from peftbench.core.paths import RunPaths
from peftbench.core.results import RunResult, has_success, read_result, utc_now, write_result, write_spec
from peftbench.core.spec import RunSpec

LOG_TAIL_LINES = 30


@dataclass
class LocalSummary:
    ran: int
    skipped: int
    failed: list[str]  # run ids whose result is not success


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
        while process.poll() is None:
            time.sleep(0.5)
            if on_progress is not None:
                _report_progress(paths.progress, on_progress)
        code = process.returncode
    if paths.result.exists() and paths.result.stat().st_mtime_ns != before:
        return read_result(paths.result)
    return _lost_run_result(spec, paths, code, started_at, time.perf_counter() - start)


def _report_progress(path: Path, on_progress: OnProgress) -> None:
    try:
        progress = json.loads(path.read_text(encoding="utf-8"))
        on_progress(int(progress["step"]), int(progress["max_steps"]))
    except (OSError, ValueError, KeyError):
        pass  # not written yet


def _lost_run_result(spec: RunSpec, paths: RunPaths, code: int, started_at: str, wall: float) -> RunResult:
    """The record of a run whose process ended without writing one (killed, segfault, ...)."""
    from peftbench.core.results import Cost

    if code < 0:
        how, status = f"killed by signal {signal.Signals(-code).name}", "killed"
    else:
        how, status = f"exited with code {code} without writing a result", "failed"
    tail = paths.log.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
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
    """Run every run without a success result, in order, with a progress display."""
    console = console or Console()
    todo = [r for r in runs if not has_success(RunPaths.of(runs_dir, r))]
    skipped = len(runs) - len(todo)
    if skipped:
        console.print(f"[dim]{skipped} of {len(runs)} runs already have a success result: skipped.[/dim]")
    failed = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("runs", total=len(todo))
        steps = progress.add_task("  steps", total=None)
        for spec in todo:
            name = f"{spec.model.name} · {spec.task.name} · {spec.label} · seed {spec.seed}"
            progress.update(bar, description=f"[bold]{spec.run_id}[/bold] {name}")
            progress.reset(steps, total=None)

            def on_progress(step: int, total: int) -> None:
                progress.update(steps, completed=step, total=total)

            result = execute(spec, RunPaths.of(runs_dir, spec), on_progress)
            progress.console.print(_one_line(result, name))
            if result.status != "success":
                failed.append(spec.run_id)
            progress.advance(bar)
    return LocalSummary(ran=len(todo), skipped=skipped, failed=failed)


def _one_line(result: RunResult, name: str) -> str:
    if result.status != "success":
        last = (result.error or "").strip().splitlines()[-1:] or [""]
        return f"[red]✗ {result.status}[/red] {result.run_id} {name}: {last[0]}"
    metric = result.spec.task.metric
    seconds = result.cost.wall_seconds if result.cost else 0.0
    return (
        f"[green]✓[/green] {result.run_id} {name}: test {metric} "
        f"{result.test.get(metric, float('nan')):.3f} ({seconds:.0f} s)"
    )
