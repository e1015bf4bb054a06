"""Where each run of a sweep stands: done, failed, pending, running, lost or not yet submitted.

The result file decides `done` and the run's own failures; the scheduler's state decides the rest.
A run with no result and no live job is `lost` (a killed task, a cancelled one, a node that died).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from peftbench.config import RunSpec
from peftbench.launch.slurm import LIVE_STATES, latest_jobs, query_states, read_submissions, stderr_tail
from peftbench.results import RunPaths, UnreadableResult, read_result

RECENT_SECONDS = 120  # sacct can lag a fresh submission: a job this young without a row is pending
FAILED_SLURM_STATES = {
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
}


@dataclass(frozen=True)
class RunState:
    run: RunSpec
    state: str  # done | failed | pending | running | lost | unsubmitted
    slurm_state: str = ""
    job_id: str = ""
    detail: str = ""  # why it failed: the result's error or the task's stderr tail

    @property
    def needs_submission(self) -> bool:
        """No success result, and nothing queued or running for it."""
        return self.state in {"failed", "lost", "unsubmitted"}


def sweep_status(runs: list[RunSpec], runs_dir: Path) -> list[RunState]:
    """The state of every run, from its result file and the scheduler (one squeue + one sacct)."""
    if not runs:
        return []
    sweep_dir = Path(runs_dir) / runs[0].sweep
    latest = latest_jobs(read_submissions(sweep_dir))
    slurm_states = query_states([job for job, _ in latest.values()])
    return [_state_of(run, RunPaths.of(runs_dir, run), latest, slurm_states) for run in runs]


def _state_of(run: RunSpec, paths: RunPaths, latest: dict, slurm_states: dict[str, str]) -> RunState:
    result, unreadable = None, ""
    if paths.result.is_file():
        try:
            result = read_result(paths.result)
        except UnreadableResult as err:
            unreadable = str(err)
    if result is not None and result.status == "success":
        return RunState(run, "done")
    job_id, submission = latest.get(run.run_id, ("", None))
    slurm_state = slurm_states.get(job_id, "")
    if slurm_state in LIVE_STATES:
        return RunState(run, "pending" if slurm_state == "PENDING" else "running", slurm_state, job_id)
    if result is not None:
        last = (result.error or "").strip().splitlines()[-1:] or [result.status]
        return RunState(run, "failed", slurm_state, job_id, f"{result.status}: {last[0]}")
    if submission is None:
        return RunState(run, "unsubmitted", detail=unreadable)
    if not slurm_state and _age_seconds(submission.submitted_at) < RECENT_SECONDS:
        return RunState(run, "pending", "PENDING?", job_id, "just submitted; sacct has no row yet")
    tail = stderr_tail(submission, job_id)
    if slurm_state in FAILED_SLURM_STATES:
        return RunState(run, "failed", slurm_state, job_id, tail or unreadable)
    return RunState(run, "lost", slurm_state or "no record", job_id, tail or unreadable)


def _age_seconds(iso: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()


def count_by(states: list[RunState], *keys: str) -> dict[tuple, dict[str, int]]:
    """Counts of each state per group, e.g. count_by(states, "label", "task")."""
    out: dict[tuple, dict[str, int]] = {}
    for s in states:
        group = tuple(s.run.task.name if k == "task" else getattr(s.run, k) for k in keys)
        out.setdefault(group, {})
        out[group][s.state] = out[group].get(s.state, 0) + 1
    return out
