"""What `sweep` and `resubmit` submit again, what they cancel first, and when they refuse.

The policy, in one place: runs with no success result that nothing queued or running holds are
submitted again; a blocked run's live job (waiting on a parent that failed) is cancelled first,
and the runs packed beside it in that job go with it; while the scheduler's word on any run is
unknown, nothing is submitted (it may well be pending or running: a guess would submit it twice).
"""

from __future__ import annotations

from dataclasses import dataclass

from peftbench.core.spec import RunSpec
from peftbench.launch.slurm_state import LIVE_STATES, RunState, sweep_status
from peftbench.plan.sweep_plan import SweepPlan


@dataclass(frozen=True)
class Resubmission:
    """What to do about a sweep's runs now."""

    submit: list[RunSpec]  # in the plan's order, then the blocked jobs' neighbours
    cancel: list[str]  # live job ids to scancel before submitting (those of blocked runs)
    runs: int  # how many runs the sweep has
    refused: str = ""  # why nothing may be submitted now (empty: go ahead)

    @property
    def left_alone(self) -> int:
        """Runs not submitted: done, pending or running."""
        return self.runs - len(self.submit)


def plan_resubmission(states: list[RunState]) -> Resubmission:
    """The policy of the module docstring, applied to every run's state."""
    unknown = [s for s in states if s.state == "unknown"]
    cancel, neighbours = blocked_jobs_and_their_runs(states)
    submit = [s.run for s in states if s.needs_submission] + neighbours
    refused = ""
    if unknown:
        refused = f"the state of {len(unknown)} submitted run(s) is unknown: {unknown[0].detail}"
    return Resubmission(submit, cancel, len(states), refused)


def blocked_jobs_and_their_runs(states: list[RunState]) -> tuple[list[str], list[RunSpec]]:
    """The live jobs to cancel before a resubmission (those of blocked runs), and every run they hold.

    A packed task's job holds several runs: cancelling it for its blocked run ends its neighbours
    too, though their own parents succeeded. They are submitted again with it, not left behind
    with nothing queued for them until the next `resubmit`."""
    jobs = {s.job_id for s in states if s.state == "blocked" and s.slurm_state in LIVE_STATES and s.job_id}
    held = [s.run for s in states if s.job_id in jobs and not s.needs_submission]
    return sorted(jobs), held


def resubmission(plan: SweepPlan) -> Resubmission:
    """The policy applied to the sweep as its result files and the scheduler show it now."""
    return plan_resubmission(sweep_status(plan.runs, plan.runs_dir))


def local_reruns(plan: SweepPlan) -> list[RunSpec]:
    """What a local `resubmit` runs again: every run with no success result (no job can hold one)."""
    return [s.run for s in sweep_status(plan.runs, plan.runs_dir) if s.needs_submission]
