"""What a sweep will take from an allocation, and what it has taken: GPU-hours, energy, the budget.

GPU-hours are a run's wall hours × the GPUs it holds (all nodes); on a CPU profile (local, the
localhost Slurm) the CPU is the device and a run counts as one. A sweep's `budget_gpu_hours` is
what the sweep may take in all: a submission whose runs still to do are estimated over what is left
(the budget less what its results spent) is refused with both figures. A profile's
`cost.budget_gpu_hours` is the allocation left to every sweep under its runs folder, spent counted
over all of them. `sweep --force` submits anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from peftbench.core.errors import Problem
from peftbench.core.results import RunResult, UnreadableResult, read_result
from peftbench.core.spec import RunSpec
from peftbench.plan.calibration import calibration_for
from peftbench.plan.schema import ClusterProfile, SweepSpec
from peftbench.plan.time_estimate import RunEstimate, estimate_runs


def result_gpu_hours(result: RunResult) -> float:
    """What one result spent: its wall hours × the devices its run held (a CPU run: one)."""
    if result.cost is None:
        return 0.0
    res = result.spec.resources
    return result.cost.wall_seconds / 3600 * (res.gpus * res.nodes or 1)


def read_results(folder: Path, pattern: str) -> list[RunResult]:
    """The readable results under `folder` matching `pattern` (unreadable ones are collect's to report)."""
    results = []
    for path in sorted(folder.glob(pattern)):
        try:
            results.append(read_result(path))
        except UnreadableResult:
            continue
    return results


@dataclass(frozen=True)
class SweepCost:
    """The estimates of a sweep's runs and their totals (runs already done count in `done`, not in `todo`)."""

    rows: list[RunEstimate]
    done: set[str]  # run ids with a success result

    @property
    def todo(self) -> list[RunEstimate]:
        return [row for row in self.rows if row.run.run_id not in self.done]

    @property
    def gpu_hours(self) -> float:
        """Estimated GPU-hours of the runs still to do."""
        return sum(row.estimate.gpu_hours for row in self.todo if row.estimate)

    @property
    def energy_kwh(self) -> float | None:
        """Estimated energy of the runs still to do (board power × time); None on a CPU profile."""
        parts = [row.estimate.energy_wh for row in self.todo if row.estimate]
        known = [p for p in parts if p is not None]
        return sum(known) / 1000 if known else None

    @property
    def wall_seconds(self) -> dict[str, float]:
        """run_id -> estimated wall seconds, for every run with an estimate."""
        return {row.run.run_id: row.estimate.wall_s for row in self.rows if row.estimate}

    @property
    def unknown(self) -> int:
        return sum(row.estimate is None for row in self.todo)

    @property
    def spread(self) -> float:
        """The widest uncertainty of any estimate in the total."""
        return max((row.estimate.efficiency.spread for row in self.todo if row.estimate), default=1.0)


def sweep_cost(runs: list[RunSpec], profile: ClusterProfile, runs_dir: Path, sweep_dir: Path) -> SweepCost:
    """Every run's estimate, calibrated by the finished runs under `runs_dir`."""
    rows = estimate_runs(runs, profile, calibration_for(profile, runs_dir))
    done = {r.run_id for r in read_results(sweep_dir, "*/result.json") if r.status == "success"}
    return SweepCost(rows, done)


def budget_problems(
    cost: SweepCost, spec: SweepSpec, profile: ClusterProfile, runs_dir: Path, sweep_dir: Path, file: str
) -> list[Problem]:
    """The sweep's or the profile's budget, if the runs still to do are estimated over what is left."""
    problems = []
    for key, budget, where, pattern, owner in (
        ("budget_gpu_hours", spec.budget_gpu_hours, sweep_dir, "*/result.json", file),
        ("cost.budget_gpu_hours", profile.cost.budget_gpu_hours, runs_dir, "*/*/result.json", profile.file),
    ):
        if budget is None:
            continue
        spent = sum(result_gpu_hours(r) for r in read_results(where, pattern))
        left = budget - spent
        if cost.gpu_hours <= left:
            continue
        message = (
            f"The {len(cost.todo)} run(s) still to do are estimated at {cost.gpu_hours:,.2f} GPU-hours "
            f"(within ×{cost.spread:g}); {left:,.2f} of {budget:,g} are left "
            f"({spent:,.2f} spent in {where}). "
            "Lower the sweep, raise the budget, or submit anyway with `peftbench sweep --force`."
        )
        problems.append(Problem(owner, key, message, str(budget)))
    return problems


def auto_problems(cost: SweepCost, file: str) -> list[Problem]:
    """`time_min: auto` on a run whose model's shape is unknown here: one problem per method block."""
    problems: dict[str, Problem] = {}
    for row in cost.rows:
        if row.estimate is None and row.run.resources.time_min == "auto" and row.run.label not in problems:
            message = (
                f"time_min 'auto' needs an estimate, and {row.missing}: run `peftbench fetch {file}` where "
                "the hub is reachable, or give the minutes."
            )
            key = f"methods.{row.run.label}.resources.time_min"
            problems[row.run.label] = Problem(file, key, message, "auto")
    return list(problems.values())


def needs_estimates(runs: list[RunSpec], spec: SweepSpec, profile: ClusterProfile) -> bool:
    """Whether checking the plan needs the time estimate: an `auto` limit or a budget."""
    auto = any(run.resources.time_min == "auto" for run in runs)
    return auto or spec.budget_gpu_hours is not None or profile.cost.budget_gpu_hours is not None


@dataclass(frozen=True)
class SweepProgress:
    """`status`'s line: runs done, GPU-hours spent against the estimate, and when the rest should end."""

    runs: int
    done: int
    spent_gpu_hours: float
    estimated_gpu_hours: float  # of the whole sweep, done runs included
    eta_s: float | None  # seconds of the runs left at the measured pace; None before a run has finished

    def line(self) -> str:
        pace = "of run time left at the measured pace"
        eta = "" if self.eta_s is None else f"; about {duration_text(self.eta_s)} {pace}"
        return (
            f"{self.done}/{self.runs} runs done; {self.spent_gpu_hours:,.2f} GPU-hours spent of "
            f"{self.estimated_gpu_hours:,.2f} estimated{eta}"
        )


def sweep_progress(
    runs: list[RunSpec], profile: ClusterProfile, runs_dir: Path, sweep_dir: Path, parallel: int
) -> SweepProgress:
    """Spent (the sweep's results) against the estimate; the time left: the runs left's estimate scaled by
    what the done runs measured against theirs, `parallel` at a time."""
    cost = sweep_cost(runs, profile, runs_dir, sweep_dir)
    results = read_results(sweep_dir, "*/result.json")
    spent = sum(result_gpu_hours(r) for r in results)
    total = sum(row.estimate.gpu_hours for row in cost.rows if row.estimate)
    walls = {r.run_id: r.cost.wall_seconds for r in results if r.status == "success" and r.cost}
    done = len(cost.done & {r.run_id for r in runs})
    return SweepProgress(len(runs), done, spent, total, _time_left(cost, walls, parallel))


def _time_left(cost: SweepCost, walls: dict[str, float], parallel: int) -> float | None:
    """The estimate of the runs left × (measured ÷ estimated) of the runs done; None before any is done."""
    estimated = cost.wall_seconds
    done = [(walls[i], estimated[i]) for i in walls if i in estimated]
    if not done:
        return None
    pace = sum(measured for measured, _ in done) / sum(estimated for _, estimated in done)
    left = sum(row.estimate.wall_s for row in cost.todo if row.estimate)
    return pace * left / max(parallel, 1)


def duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
