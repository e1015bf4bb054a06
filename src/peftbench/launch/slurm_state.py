"""Submit runs to Slurm as submitit job arrays: one array per resource shape, never blocking.

What was submitted is recorded in the sweep folder (`.submissions/<time>-<job>.json`: job ids and
which run each array task holds), so `status` and `resubmit` work from any later shell. Job
states come from the real `squeue` (live jobs) and `sacct` (finished ones), one call each.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from peftbench.core.paths import RunPaths
from peftbench.core.results import UnreadableResult, read_result
from peftbench.core.spec import RunSpec
from peftbench.launch.slurm_records import Submission, latest_jobs, read_submissions

LIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING"}


def query_states(job_ids: list[str]) -> dict[str, str]:
    """Slurm state per job id ("123_4" -> "RUNNING"): squeue for live jobs, sacct for the rest.

    squeue answers at once for queued jobs; sacct lags a second or two but remembers finished ones.
    """
    wanted = set(job_ids)
    if not wanted:
        return {}
    states: dict[str, str] = {}
    bases = sorted({j.split("_")[0] for j in wanted})
    sacct = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(bases)])
    for line in sacct.splitlines():
        job, _, state = line.partition("|")
        if job in wanted:
            states[job] = state.split()[0] if state else "UNKNOWN"
    for line in _run(["squeue", "-h", "-r", "-o", "%i|%T"]).splitlines():
        job, _, state = line.partition("|")
        if job in wanted:
            states[job] = state
    return states


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def stderr_tail(submission: Submission, job_id: str, lines: int = 5) -> str:
    """The last lines of a task's stderr, from submitit's log folder."""
    from submitit.core.utils import JobPaths

    path = JobPaths(submission.folder, job_id=job_id, task_id=0).stderr
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])


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


STOPPED_STATES = {"interrupted", "killed"}  # result statuses `status` shows as their own state


@dataclass(frozen=True)
class RunState:
    run: RunSpec
    state: str  # done | failed | interrupted | killed | pending | running | lost | unsubmitted
    slurm_state: str = ""
    job_id: str = ""
    detail: str = ""  # why it failed: the result's error or the task's stderr tail

    @property
    def needs_submission(self) -> bool:
        """No success result, and nothing queued or running for it."""
        return self.state in {"failed", "lost", "unsubmitted", *STOPPED_STATES}


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
        state = result.status if result.status in STOPPED_STATES else "failed"
        return RunState(run, state, slurm_state, job_id, f"{result.status}: {last[0]}")
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
