"""What the `peftbench` command shows: its consoles, its tables, and each run state's colour.

A table here is a title, a tuple of `Column`s and the rows a room returned: each column says its
header, how its cell is read from a row and how the cell is set. The verbs in `cli.py` decide
nothing about how a table looks, and nothing here decides what a row holds.
"""

from __future__ import annotations

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

if TYPE_CHECKING:
    from peftbench.collect.outputs import CollectReport
    from peftbench.core.errors import CannotWrite
    from peftbench.launch.slurm_state import RunState, SweepReport
    from peftbench.launch.watch import Refresh, WatchedRun
    from peftbench.plan.profiles import FoundProfile
    from peftbench.plan.sweep_plan import SweepPlan
    from peftbench.tasks.judging_step import JudgingReport
    from peftbench.tools.tracker_sync import SyncReport

WIDE = 240  # columns for tables when output is not a terminal

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
