"""What `peftbench plan` and `sweep --dry-run` show: GPU memory, the runs, their time and disk.

Tables as in `views`: a title, a tuple of `Column`s and the rows the planner returned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from peftbench.plan.budget import duration_text
from peftbench.plan.memory import GB

if TYPE_CHECKING:
    from peftbench.core.spec import RunSpec
    from peftbench.plan.budget import SweepCost
    from peftbench.plan.disk import SweepDisk
    from peftbench.plan.memory import MemoryEstimate
    from peftbench.plan.sweep_plan import MemoryRow, SweepPlan
    from peftbench.plan.time_estimate import RunEstimate, TimeEstimate

from peftbench.views import Column, console, print_plain, print_problem, table

PLAN_ROWS = 300  # a longer plan is shown one row per model × task × method (rich renders ~300 rows/s)


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
