"""What the `peftbench` command shows: its consoles, its tables, and each run state's colour.

A table here is a title, a tuple of `Column`s and the rows a room returned: each column says its
header, how its cell is read from a row and how the cell is set. The verbs in `cli.py` decide
nothing about how a table looks, and nothing here decides what a row holds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from rich.console import Console, JustifyMethod, OverflowMethod, RenderableType
from rich.table import Table
from rich.text import Text

from peftbench.launch.slurm_state import STATES, count_by
from peftbench.plan.budget import duration_text
from peftbench.plan.memory import GB

if TYPE_CHECKING:
    from peftbench.collect.outputs import CollectReport
    from peftbench.core.errors import CannotWrite
    from peftbench.core.spec import RunSpec
    from peftbench.launch.slurm_state import RunState, SweepReport
    from peftbench.launch.watch import Refresh, WatchedRun
    from peftbench.plan.budget import SweepCost
    from peftbench.plan.disk import SweepDisk
    from peftbench.plan.memory import MemoryEstimate
    from peftbench.plan.profiles import FoundProfile
    from peftbench.plan.sweep_plan import MemoryRow, SweepPlan
    from peftbench.plan.time_estimate import RunEstimate, TimeEstimate
    from peftbench.tasks.judging_step import JudgingReport
    from peftbench.tools.tracker_sync import SyncReport

WIDE = 240  # columns for tables when output is not a terminal
PLAN_ROWS = 300  # a longer plan is shown one row per model × task × method (rich renders ~300 rows/s)

# Keyed by launch.slurm_state.STATES, the one list of state names (a test holds the two together).
STATE_STYLES: dict[str, str] = {
    "done": "green",
    "halted": "blue",  # stopped early by successive halving: not a failure
    "running": "cyan",
    "pending": "yellow",
    "unknown": "red",
    "failed": "red",
    "interrupted": "yellow",
    "killed": "red",
    "unreadable": "red",
    "blocked": "red",
    "lost": "red",
    "unsubmitted": "none",  # the terminal's own colour: nothing has happened to it yet
}


def terminal_console(stderr: bool = False) -> Console:
    """Rich's console; when output is not a terminal (CI logs, `make > file`), lines are never wrapped.

    Rich would hard-wrap at 80 columns there, splitting keys and paths mid-word. Tables get a wide
    page instead (or $COLUMNS when set), messages keep each line whole.
    """
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty() or os.environ.get("COLUMNS"):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=WIDE, soft_wrap=True)


console = terminal_console()
err_console = terminal_console(stderr=True)

Row = TypeVar("Row")


@dataclass(frozen=True)
class Column(Generic[Row]):
    """One column of a table: its header, its cell read from a row, and how the cell is set."""

    header: str
    cell: Callable[[Row], RenderableType]
    justify: JustifyMethod = "left"
    overflow: OverflowMethod = "ellipsis"


def table(title: str, columns: Sequence[Column[Row]], rows: Iterable[Row]) -> Table:
    out = Table(title=title)
    for column in columns:
        out.add_column(column.header, justify=column.justify, overflow=column.overflow)
    for row in rows:
        out.add_row(*(column.cell(row) for column in columns))
    return out


def styled(state: str) -> str:
    """A run state in its colour, as rich markup."""
    return f"[{STATE_STYLES[state]}]{state}[/]"


def print_problem(label: str, message: object, style: str = "red") -> None:
    """`label — message` on stderr, the label in its colour; the message as it is (never markup)."""
    err_console.print(Text(label, style=style) + Text(f" — {message}"), highlight=False)


def print_cannot_write(err: CannotWrite) -> None:
    """A full or read-only disk: core's one line (file, file system, what to free), whole, on stderr."""
    err_console.print(Text(str(err), style="red"), highlight=False, soft_wrap=True)


def print_plain(message: object, stderr: bool = False, soft_wrap: bool | None = None) -> None:
    """A message as it is: paths, tracebacks and YAML hold brackets that are not markup."""
    out = err_console if stderr else console
    out.print(str(message), markup=False, highlight=False, soft_wrap=soft_wrap)


def print_warnings(plan: SweepPlan) -> None:
    """What only a submission refuses (FILL_ME site facts, runs that do not fit the site's GPUs, models
    of unknown size), under the name of the file to fix; then estimates resting on an assumption."""
    for problem in plan.warnings:
        print_problem("A submission would refuse", problem, style="yellow")
    for problem in plan.notes:
        print_problem("Note", problem, style="yellow")


# --- status -------------------------------------------------------------------------------------


def _fold(header: str, cell: Callable[[RunState], RenderableType]) -> Column[RunState]:
    return Column(header, cell, overflow="fold")


STATUS_COLUMNS: tuple[Column[RunState], ...] = (
    _fold("run_id", lambda s: s.run.run_id),
    _fold("model", lambda s: s.run.model.name),
    _fold("task", lambda s: s.run.task.name),
    _fold("method", lambda s: s.run.label),
    _fold("seed", lambda s: str(s.run.seed)),
    _fold("state", lambda s: styled(s.state)),
    _fold("slurm", lambda s: s.slurm_state),
    _fold("job", lambda s: s.job_id),
    _fold("detail", lambda s: Text(s.detail)),  # stderr and scheduler errors hold brackets: not markup
)

StateCounts = tuple[tuple, dict[str, int]]  # a group's key values, and its count of each state


def state_count_columns(keys: Sequence[str]) -> list[Column[StateCounts]]:
    """A column per grouping key, then one per state (blank where none)."""
    by_key = [Column(key, lambda g, i=i: str(g[0][i])) for i, key in enumerate(keys)]
    by_state = [Column(state, lambda g, s=state: str(g[1].get(s, 0) or "")) for state in STATES]
    return [*by_key, *by_state]


def print_status(sweep: str, states: list[RunState], by: str, keys: Sequence[str]) -> None:
    """A row per run (no `keys`), or the count of each state per group of `keys`; then the totals."""
    if keys:
        title = f"{sweep}: {len(states)} runs by {by}"
        console.print(table(title, state_count_columns(keys), count_by(states, *keys).items()))
    else:
        console.print(table(f"{sweep}: {len(states)} runs", STATUS_COLUMNS, states))
    totals = Counter(s.state for s in states)  # in the order the states first appear
    console.print(", ".join(f"{n} {state}" for state, n in totals.items()))


def print_unread(report: SweepReport) -> None:
    """One line on stderr (never wrapped: a script reads it whole): each query `status` could not read,
    and what its states show instead."""
    line = Text("Scheduler not fully read", style="yellow") + Text(f" — {unread_line(report)}")
    err_console.print(line, highlight=False, soft_wrap=True)


def unread_line(report: SweepReport) -> str:
    """`squeue: exit 1: ...; shown instead: sacct's states, ...`; a silent daemon is named, with its wait."""
    said = [
        f"{f} (after {f.seconds:.0f} s; {f.daemon} is not asked again in this command)"
        if f.silent and f.seconds
        else str(f)
        for f in report.unread
    ]
    return f"{'; '.join(said)}; shown instead: {report.shown_instead}"


# --- status --watch ------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    return "" if seconds is None else time.strftime("%H:%M:%S", time.gmtime(seconds))


WATCH_COLUMNS: tuple[Column[WatchedRun], ...] = (
    *(Column(c.header, lambda w, c=c: c.cell(w.state), c.justify, c.overflow) for c in STATUS_COLUMNS[:8]),
    Column("step", lambda w: f"{w.progress.step}/{w.progress.max_steps}" if w.progress else "", "right"),
    Column("steps/s", lambda w: f"{w.progress.steps_per_second or 0:.2f}" if w.progress else "", "right"),
    Column("ETA", lambda w: _duration(w.progress.eta_seconds) if w.progress else "", "right"),
    Column("detail", lambda w: Text(w.state.detail), overflow="fold"),
)


def print_watch(refresh: Refresh) -> None:
    """One redraw of `status --watch`: the screen cleared first on a terminal, one after another in a file."""
    if console.is_terminal:
        console.clear()
    when = time.strftime("%H:%M:%S")
    title = f"{refresh.sweep}: {len(refresh.runs)} runs · refresh {refresh.number} at {when}"
    console.print(table(title, WATCH_COLUMNS, refresh.runs))
    totals = Counter(w.state.state for w in refresh.runs)
    ended = "" if refresh.going_on else " — nothing pending or running: the watch ends"
    console.print(", ".join(f"{n} {state}" for state, n in totals.items()) + ended)
    if refresh.report.unread:
        print_unread(refresh.report)


def print_sync(report: SyncReport) -> None:
    """`peftbench sync`: the offline W&B runs uploaded (or that would be), one line each."""
    verb = "Would upload" if report.dry_run else "Uploaded"
    before = f" ({report.already} uploaded before)" if report.already else ""
    if not report.to_upload:
        console.print(f"Nothing to upload{before}.")
        return
    console.print(f"{verb} {len(report.to_upload)} offline W&B run(s){before}:")
    for run in report.to_upload:
        print_plain(f"  {run.run_dir.name}  {run.folder}")


# --- plan: GPU memory ---------------------------------------------------------------------------


def _gb(part: Callable[[MemoryEstimate], float], unsized: str = "") -> Callable[[MemoryRow], str]:
    """A part of the estimate in GB; `unsized` where the model's size is not known here."""
    return lambda row: unsized if row.estimate is None else f"{part(row.estimate) / GB:.1f}"


def _fits(row: MemoryRow) -> str:
    if row.estimate is None:
        return "config not here: peftbench fetch" if row.config_from == "unknown" else "after its parent"
    if row.fit is None:  # the profile does not name its GPUs' memory
        return ""
    return "[green]yes[/]" if row.fit.fits else f"[red]no[/]: {row.fit.suggestion}"


def _right(header: str, cell: Callable[[MemoryRow], str]) -> Column[MemoryRow]:
    return Column(header, cell, justify="right")


MEMORY_COLUMNS: tuple[Column[MemoryRow], ...] = (
    Column("run_id", lambda row: row.run.run_id),
    Column("model", lambda row: row.run.model.name),
    Column("task", lambda row: row.run.task.name),
    Column("method", lambda row: row.run.label),
    Column("engine", lambda row: "" if row.estimate is None else row.estimate.backend),
    _right("GPUs", lambda row: "" if row.estimate is None else str(row.estimate.gpus)),
    _right("weights", _gb(lambda e: e.weights)),
    _right("state", _gb(lambda e: e.training_state)),
    _right("activ.", _gb(lambda e: e.activations)),
    _right("KV cache", _gb(lambda e: e.kv_cache)),  # of generating test answers, in the eval peak
    _right("train peak", _gb(lambda e: e.training_peak)),
    _right("eval peak", _gb(lambda e: e.evaluation_peak)),
    _right("total", _gb(lambda e: e.total, unsized="?")),
    Column("fits", _fits),
)


def print_memory_plan(plan: SweepPlan, rows: list[MemoryRow]) -> None:
    title = f"{plan.spec.name}: GPU memory per GPU, estimated ('{plan.profile.name}')"
    console.print(table(title, MEMORY_COLUMNS, rows))


# --- sweep --dry-run: the runs ------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    """One row of the dry run's plan (not the plan's own `PlannedRun`: what the table shows of a run)."""

    run: RunSpec
    run_id: str  # a hash of the spec: made once, by the caller
    done: bool  # a success result is already there
    estimate: RunEstimate | None = None  # its time estimate, when the plan made one


def _params(run: RunSpec) -> str:
    return " ".join(f"{k}={v}" for k, v in run.params.items() if v is not None)


RUN_COLUMNS: tuple[Column[PlanRow], ...] = (
    Column("run_id", lambda p: p.run_id),
    Column("model", lambda p: p.run.model.name),
    Column("task", lambda p: p.run.task.name),
    Column("method", lambda p: p.run.label),
    Column("params", lambda p: _params(p.run)),
    Column("lr", lambda p: f"{p.run.training.learning_rate:g}"),
    Column("seed", lambda p: str(p.run.seed)),
    Column("done", lambda p: "✓" * p.done),
)
ESTIMATE_COLUMNS: tuple[Column[PlanRow], ...] = (
    Column("time", lambda p: _time(p.estimate), justify="right"),
    Column("GPU-h", lambda p: _gpu_hours(p.estimate), justify="right"),
    Column("calibration", lambda p: _calibration(p.estimate), overflow="fold"),
)

RunGroup = tuple[tuple[str, str, str], list[PlanRow]]  # (model, task, method), its runs


def _grid_points(runs: list[PlanRow]) -> int:
    return len({(json.dumps(p.run.params, sort_keys=True), p.run.training.learning_rate) for p in runs})


GROUP_COLUMNS: tuple[Column[RunGroup], ...] = (
    Column("model", lambda g: g[0][0]),
    Column("task", lambda g: g[0][1]),
    Column("method", lambda g: g[0][2]),
    Column("runs", lambda g: str(len(g[1]))),
    Column("grid points", lambda g: str(_grid_points(g[1]))),
    Column("seeds", lambda g: str(len({p.run.seed for p in g[1]}))),
    Column("done", lambda g: str(sum(p.done for p in g[1]) or "")),
)
GROUP_ESTIMATE_COLUMNS: tuple[Column[RunGroup], ...] = (
    Column("GPU-h", lambda g: _group_gpu_hours(g[1]), justify="right"),
)


def run_groups(runs: list[PlanRow]) -> list[RunGroup]:
    """The runs per model × task × method, in the order each first appears."""
    groups: dict[tuple[str, str, str], list[PlanRow]] = {}
    for p in runs:
        groups.setdefault((p.run.model.name, p.run.task.name, p.run.label), []).append(p)
    return list(groups.items())


def print_plan(plan: SweepPlan, runs: list[PlanRow]) -> None:
    """A row per run; a plan longer than PLAN_ROWS, a row per model × task × method. With the time
    estimates, when the rows carry them."""
    title = f"{plan.spec.name}: {len(runs)} runs on '{plan.profile.name}'"
    estimated = any(p.estimate is not None for p in runs)
    if len(runs) > PLAN_ROWS:
        columns = GROUP_COLUMNS + GROUP_ESTIMATE_COLUMNS * estimated
        console.print(table(title, columns, run_groups(runs)))
    else:
        console.print(table(title, RUN_COLUMNS + ESTIMATE_COLUMNS * estimated, runs))
    if plan.disk is not None:
        print_plain(disk_line(plan.disk), soft_wrap=True)


# --- the time estimate: sweep --dry-run and plan -------------------------------------------------


def _time(row: RunEstimate | None) -> str:
    if row is None:
        return ""
    return "?" if row.estimate is None else duration_text(row.estimate.wall_s)


def _gpu_hours(row: RunEstimate | None) -> str:
    return "" if row is None or row.estimate is None else f"{row.estimate.gpu_hours:.3g}"


def _group_gpu_hours(runs: list[PlanRow]) -> str:
    known = [p.estimate.estimate.gpu_hours for p in runs if p.estimate and p.estimate.estimate]
    return f"{sum(known):.3g}" if known else ""


def _calibration(row: RunEstimate | None) -> str:
    if row is None:
        return ""
    if row.estimate is None:
        return row.missing or ""
    e = row.estimate.efficiency
    return f"{e.value:.0%} of peak, ×{e.spread:g}: {e.source}"


def _device(row: RunEstimate) -> str:
    if row.estimate is None:
        return ""
    device = row.estimate.device
    return f"{device.count} cores" if device.name == "cpu" else f"{device.count}× {device.name}"


def _part(seconds: Callable[[TimeEstimate], float]) -> Callable[[RunEstimate], str]:
    return lambda row: "" if row.estimate is None else duration_text(seconds(row.estimate))


TIME_COLUMNS: tuple[Column[RunEstimate], ...] = (
    Column("run_id", lambda r: r.run.run_id),
    Column("model", lambda r: r.run.model.name),
    Column("task", lambda r: r.run.task.name),
    Column("method", lambda r: r.run.label),
    Column("device", _device),
    Column("train", _part(lambda e: e.train_s), justify="right"),
    Column("eval", _part(lambda e: e.eval_s), justify="right"),
    Column("time", _time, justify="right"),
    Column("GPU-h", _gpu_hours, justify="right"),
    Column("calibration", _calibration, overflow="fold"),
)


def print_time_plan(plan: SweepPlan, cost: SweepCost) -> None:
    """A row per run of `plan`, its time estimated; then the totals."""
    title = f"{plan.spec.name}: time per run, estimated ('{plan.profile.name}')"
    console.print(table(title, TIME_COLUMNS, cost.rows))


def print_cost(cost: SweepCost) -> None:
    """The totals of the runs still to do, and the assumptions the estimates rest on (once each)."""
    energy = "" if cost.energy_kwh is None else f", {cost.energy_kwh:,.2f} kWh at the GPUs' board power"
    unknown = f"; {cost.unknown} run(s) not estimated (model shape unknown)" if cost.unknown else ""
    console.print(
        f"Estimate for the {len(cost.todo)} run(s) still to do: {cost.gpu_hours:,.3g} GPU-hours{energy}, "
        f"within ×{cost.spread:g}{unknown} (docs/cost.md).",
        highlight=False,
    )
    said = dict.fromkeys(a for row in cost.todo if row.estimate for a in row.estimate.assumptions)
    for assumption in said:
        print_problem("Assumed", assumption, style="yellow")


def disk_line(disk: SweepDisk) -> str:
    """`Disk: ...`: each run's peak and the sweep's, beside the free space (and the quota)."""
    largest, gb = disk.largest_run, 10**9
    if largest is None:
        return f"Disk: nothing to run with a known size; {disk.folder}: {disk.free / gb:.1f} GB free"
    quota = f", quota_gb {disk.quota / gb:.0f} GB" if disk.quota is not None else ""
    unsized = f"; {disk.not_sized} run(s) of unknown size not counted" if disk.not_sized else ""
    return (
        f"Disk: each run up to {largest.peak / gb:.1f} GB ({largest.run.run_id}), the sweep up to "
        f"{disk.peak / gb:.1f} GB ({min(disk.at_once, len(disk.runs))} at once){unsized}; "
        f"{disk.folder}: {disk.free / gb:.1f} GB free{quota}"
    )


# --- clusters and collect -----------------------------------------------------------------------

PROFILE_COLUMNS: tuple[Column[FoundProfile], ...] = (
    Column("name", lambda found: found.name, overflow="fold"),
    Column("from", lambda found: found.origin, overflow="fold"),
    Column("file", lambda found: str(found.path), overflow="fold"),
    Column("hides", lambda found: ", ".join(found.shadows), overflow="fold"),
)


def print_profiles(found: list[FoundProfile], searched: str) -> None:
    console.print(table("Cluster profiles (--cluster NAME)", PROFILE_COLUMNS, found))
    console.print(f"Searched, in order: {searched}", markup=False, highlight=False)


def print_collection(report: CollectReport, unfinished: dict[str, int]) -> None:
    """The paper-style table, what was written, what has no result yet (`unfinished`: runs per
    state) and the result files left out."""
    console.print(report.table, markup=False, highlight=False, soft_wrap=True)
    console.print(f"{report.counts()}; written: {', '.join(str(p) for p in report.outputs)}")
    if report.unfinished:
        said = ", ".join(f"{n} {state}" for state, n in sorted(unfinished.items()))
        console.print(
            f"{len(report.unfinished)} run(s) of the sweep have no result yet ({said}); "
            "`peftbench status` follows them."
        )
    if report.unreadable:
        err_console.print(
            f"[yellow]{len(report.unreadable)} result file(s) could not be read and were left out:[/yellow]"
        )
        for line in report.unreadable:
            err_console.print(f"  - {line}", markup=False, highlight=False)


def print_judging(report: JudgingReport) -> None:
    """Per judge: runs, answers scored now / before / left, tokens; then each problem on one line."""
    for t in report.tallies:
        console.print(
            f"judge {t.identity.label}: {t.runs} run(s), {t.answers} answer(s): {t.scored} scored now, "
            f"{t.already} before, {t.left} left; {t.tokens_sent} tokens sent, {t.tokens_received} received",
            markup=False,
            highlight=False,
        )
    for line in (p for t in report.tallies for p in t.problems):
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)
    for line in report.not_judged:
        console.print(f"not judged: {line}", markup=False, highlight=False, soft_wrap=True)
    if not report.tallies:
        console.print("No saved answers to judge.")
