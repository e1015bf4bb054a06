"""Where each run of a sweep stands: its result file, and the scheduler's word on its jobs.

Job states come from the real `squeue` (live jobs) and `sacct` (finished ones), one call each
(`slurm_queries.py`). A query that fails or times out makes the jobs it would have answered for
`unknown`, never `lost`: `sweep` and `resubmit` refuse to submit while any run is unknown, so a
scheduler hiccup cannot submit a waiting run a second time. `sweep_report` also says which query
could not be read and what the states show instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from peftbench.core.errors import PeftbenchError
from peftbench.core.paths import RunPaths
from peftbench.core.results import RunResult, UnreadableResult, read_result, read_spec
from peftbench.core.search import cell_id, halt_reason, parent_cell_id, resolved_run_id
from peftbench.core.spec import RunSpec, parent_run_id
from peftbench.launch.slurm_queries import QueryFailure, SchedulerStates, one_command, query_states
from peftbench.launch.slurm_records import Submission, jobs_by_run, read_submissions

STATES = (
    "done",
    "running",
    "pending",
    "unknown",
    "failed",
    "interrupted",
    "killed",
    "halted",
    "unreadable",
    "blocked",
    "lost",
    "unsubmitted",
)
# squeue's and sacct's word on a job -> where its run stands when no result says otherwise. A state
# not named here (COMPLETED without a result, no record at all) leaves the run `lost`.
SLURM_STATES: dict[str, str] = {
    "PENDING": "pending",
    "RUNNING": "running",
    "REQUEUED": "running",
    "CONFIGURING": "running",
    "COMPLETING": "running",
    "SUSPENDED": "running",
    "RESIZING": "running",
    "FAILED": "failed",
    "CANCELLED": "failed",
    "TIMEOUT": "failed",
    "OUT_OF_MEMORY": "failed",
    "NODE_FAIL": "failed",
    "PREEMPTED": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
}
LIVE_STATES = {job for job, ours in SLURM_STATES.items() if ours in ("pending", "running")}
RECENT_SECONDS = 120  # sacct can lag a fresh submission: a job this young without a row is pending


class SchedulerUnavailable(PeftbenchError):
    """squeue or sacct failed or did not answer: nothing may be submitted on a guess."""


def stderr_tail(submission: Submission, job_id: str, lines: int = 5) -> str:
    """The last lines of a task's stderr, from submitit's log folder."""
    from submitit.core.utils import JobPaths

    path = JobPaths(submission.folder, job_id=job_id, task_id=0).stderr
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])


NEVER_STARTED = (
    "no record in squeue or sacct and no log: the task never started (Slurm keeps no record of an "
    "array task cancelled while it was pending)"
)
"""Measured on Slurm 22.05: `scancel JOB_3` on a pending array task leaves no sacct row at all."""

STOPPED_STATES = {"interrupted", "killed"}  # result statuses `status` shows as their own state


@dataclass(frozen=True)
class RunState:
    run: RunSpec
    # done | failed | interrupted | killed | unreadable | blocked | pending | running | unknown | lost
    # | unsubmitted
    state: str
    slurm_state: str = ""
    job_id: str = ""
    detail: str = ""  # why: the result's error, the task's stderr tail, the failed query, the parent

    @property
    def needs_submission(self) -> bool:
        """No success result, and nothing queued or running for it (a blocked job is cancelled first)."""
        return self.state in {"failed", "unreadable", "blocked", "lost", "unsubmitted", *STOPPED_STATES}


@dataclass(frozen=True)
class _ResultFile:
    result: RunResult | None
    unreadable: str = ""  # the reader's error when result.json exists but cannot be read


# What the states rest on when a query could not be read, by the commands that failed.
SHOWN_INSTEAD: dict[frozenset[str], str] = {
    frozenset({"squeue"}): "sacct's states, which can lag the queue by a few seconds",
    frozenset({"sacct"}): "squeue's live jobs only: a run whose job has ended without a result is unknown",
    frozenset({"squeue", "sacct"}): "no job states: every run with a job and no result is unknown",
}


@dataclass(frozen=True)
class SweepReport:
    """Every run's state, and each query that could not be read (squeue, sacct)."""

    runs: list[RunState]
    unread: list[QueryFailure] = field(default_factory=list)

    @property
    def shown_instead(self) -> str:
        """What the states rest on while a query could not be read ("" when both were read)."""
        return SHOWN_INSTEAD.get(frozenset(failure.command for failure in self.unread), "")


def sweep_report(runs: list[RunSpec], runs_dir: Path) -> SweepReport:
    """The state of every run, from its result file and the scheduler (one squeue + one sacct), and
    what the scheduler could not tell.

    Runs with a success result are done whatever the scheduler says, and cost no query.
    """
    if not runs:
        return SweepReport([])
    sweep_dir = Path(runs_dir) / runs[0].sweep
    results = {run.run_id: _read(_result_folder(sweep_dir, run)) for run in runs}
    jobs = jobs_by_run(read_submissions(sweep_dir))
    open_jobs = [
        job for run in runs if not _succeeded(results[run.run_id]) for job, _ in jobs.get(run.run_id, [])
    ]
    scheduler = query_states(open_jobs)
    states = {
        run.run_id: _state_of(run, results[run.run_id], jobs.get(run.run_id, []), scheduler) for run in runs
    }
    parents = _parents(runs)
    blocked = [_blocked_by_parent(states[run.run_id], states, parents.get(run.run_id)) for run in runs]
    return SweepReport(blocked, scheduler.failures)


def _parents(runs: list[RunSpec]) -> dict[str, str]:
    """run id -> the run whose success it waits for: the parent its spec names, or for a child of a
    searched block on a seed that trains the winner, the run that trains it (core/search.py)."""
    trains_winner = [r for r in runs if r.search is not None and r.search.trains_winner]
    winners = {(cell_id(r), r.seed): r.run_id for r in trains_winner}
    out = {}
    for run in runs:
        parent = parent_run_id(run)
        if parent is None and (cell := parent_cell_id(run)) is not None:
            parent = winners.get((cell, run.seed))
        if parent is not None:
            out[run.run_id] = parent
    return out


def sweep_status(runs: list[RunSpec], runs_dir: Path) -> list[RunState]:
    """The state of every run (`sweep_report` without what could not be read)."""
    return sweep_report(runs, runs_dir).runs


def states_of_run_folders(run_dirs: list[Path]) -> dict[str, int]:
    """How many of these run folders (each with its spec.json) are in each state, e.g. for
    `collect` to say what has no result yet. A folder without job records says `no job record`."""
    by_sweep: dict[Path, list[RunSpec]] = {}
    for run_dir in run_dirs:
        try:
            spec = read_spec(RunPaths(run_dir).spec)
        except (OSError, ValueError):
            continue
        by_sweep.setdefault(run_dir.parent, []).append(spec.model_copy(update={"sweep": run_dir.parent.name}))
    counts: dict[str, int] = {}
    with one_command():  # a silent controller costs one timeout for all the sweeps, not one each
        for sweep_dir, specs in by_sweep.items():
            for state in sweep_status(specs, sweep_dir.parent):
                name = "no job record" if state.state == "unsubmitted" else state.state
                counts[name] = counts.get(name, 0) + 1
    return counts


def _result_folder(sweep_dir: Path, run: RunSpec) -> RunPaths:
    """The run's folder; for a run that trains its cell's winner, once it has started, the winner's
    run with its seed that it became (core/search.py: `resolve_run`)."""
    paths = RunPaths(sweep_dir / run.run_id)
    resolved = resolved_run_id(paths) if run.search is not None and run.search.trains_winner else None
    return RunPaths(sweep_dir / resolved) if resolved else paths


def _read(paths: RunPaths) -> _ResultFile:
    if not paths.result.is_file():
        return _ResultFile(None)
    try:
        return _ResultFile(read_result(paths.result))
    except UnreadableResult as err:
        return _ResultFile(None, str(err))


def _succeeded(found: _ResultFile) -> bool:
    return found.result is not None and found.result.status == "success"


@dataclass(frozen=True)
class _Evidence:
    """What is known of one run: its result file, every job that held it, the scheduler's answer."""

    run: RunSpec
    found: _ResultFile
    jobs: list[tuple[str, Submission]]
    scheduler: SchedulerStates

    @property
    def last_job(self) -> tuple[str, Submission | None]:
        return self.jobs[-1] if self.jobs else ("", None)


def _state_of(
    run: RunSpec, found: _ResultFile, jobs: list[tuple[str, Submission]], scheduler: SchedulerStates
) -> RunState:
    """The first reading that applies, in order of authority: the result, a live job, a failed
    query, the result's own failure, no job at all, a fresh submission, the scheduler's table."""
    evidence = _Evidence(run, found, jobs, scheduler)
    for reading in _READINGS:
        state = reading(evidence)
        if state is not None:
            return state
    return _by_scheduler(evidence)


def _done(e: _Evidence) -> RunState | None:
    return RunState(e.run, "done") if _succeeded(e.found) else None


def _halted(e: _Evidence) -> RunState | None:
    """Stopped at a rung by successive halving (core/search.py): final, never submitted again."""
    result = e.found.result
    if result is None or result.status != "halted":
        return None
    return RunState(e.run, "halted", detail=halt_reason(result.error))


def _live(e: _Evidence) -> RunState | None:
    """Any job of the run, not only the newest, pending or running: a duplicate must not go unseen."""
    live = [(job, e.scheduler.get(job)) for job, _ in e.jobs if e.scheduler.get(job) in LIVE_STATES]
    if not live or _ended_in_its_pack(e.found, e.jobs, live[-1][0]):
        return None  # an ended run of a packed task that goes on with the others may be resubmitted
    job, slurm_state = max(live, key=lambda js: js[1] != "PENDING")
    return RunState(e.run, SLURM_STATES[slurm_state], slurm_state, job, _packed_with(e.run, job, e.jobs))


def _unknown(e: _Evidence) -> RunState | None:
    unknown = [job for job, _ in e.jobs if e.scheduler.is_unknown(job)]
    if not unknown:
        return None
    said = "; ".join(e.scheduler.errors)
    return RunState(e.run, "unknown", "?", unknown[-1], f"the scheduler did not answer: {said}")


def _from_result(e: _Evidence) -> RunState | None:
    job_id, _ = e.last_job
    slurm_state = e.scheduler.get(job_id)
    if e.found.unreadable:
        return RunState(e.run, "unreadable", slurm_state, job_id, f"unreadable result: {e.found.unreadable}")
    result = e.found.result
    if result is None:
        return None
    last = (result.error or "").strip().splitlines()[-1:] or [result.status]
    state = result.status if result.status in STOPPED_STATES else "failed"
    return RunState(e.run, state, slurm_state, job_id, f"{result.status}: {last[0]}")


def _unsubmitted(e: _Evidence) -> RunState | None:
    return RunState(e.run, "unsubmitted") if not e.jobs else None


def _just_submitted(e: _Evidence) -> RunState | None:
    job_id, submission = e.last_job
    assert submission is not None
    if e.scheduler.get(job_id) or _age_seconds(submission.submitted_at) >= RECENT_SECONDS:
        return None
    return RunState(e.run, "pending", "PENDING?", job_id, "just submitted; sacct has no row yet")


_READINGS: tuple[Callable[[_Evidence], RunState | None], ...] = (
    _done,
    _halted,
    _live,
    _unknown,
    _from_result,
    _unsubmitted,
    _just_submitted,
)


def _by_scheduler(e: _Evidence) -> RunState:
    """What is left: a job that ended without a result; SLURM_STATES says failed, else it is lost."""
    job_id, submission = e.last_job
    assert submission is not None
    slurm_state = e.scheduler.get(job_id)
    tail = stderr_tail(submission, job_id)
    if SLURM_STATES.get(slurm_state) == "failed":
        return RunState(e.run, "failed", slurm_state, job_id, tail)
    if not slurm_state and not tail:
        return RunState(e.run, "lost", "no record", job_id, NEVER_STARTED)
    return RunState(e.run, "lost", slurm_state or "no record", job_id, tail)


def _packed_with(run: RunSpec, job: str, jobs: list[tuple[str, Submission]]) -> str:
    """`packed: 1 of 3 runs of this task` for a run of a packed task, else nothing."""
    pack = next((sub.packs.get(job) for j, sub in jobs if j == job), None)
    return f"packed: {pack.index(run.run_id) + 1} of {len(pack)} runs of this task" if pack else ""


def _ended_in_its_pack(found: _ResultFile, jobs: list[tuple[str, Submission]], live_job: str) -> bool:
    """A run of a live packed task that has already left a result of that task: it is not running."""
    submission = next((sub for job, sub in jobs if job == live_job), None)
    if found.result is None or submission is None or live_job not in submission.packs:
        return False
    return datetime.fromisoformat(found.result.finished_at) >= datetime.fromisoformat(submission.submitted_at)


def _blocked_by_parent(state: RunState, states: dict[str, RunState], parent: str | None) -> RunState:
    """A child whose parent run ended without success can never start: `blocked`, naming the parent.

    Its job (submitted with --kill-on-invalid-dep) is cancelled by Slurm, or still pending on a
    dependency that will never be met; `resubmit` reruns the parent, then the child.
    """
    above = states.get(parent) if parent else None
    if above is None or state.state in {"done", "halted", "running", "unknown"}:
        return state
    if above.state in {"failed", "unreadable", "lost", "blocked"}:
        why = f"parent {parent} {'failed' if above.state == 'failed' else above.state}"
        return RunState(state.run, "blocked", state.slurm_state, state.job_id, why)
    return state


def _age_seconds(iso: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()


GROUP_KEYS: dict[str, Callable[[RunSpec], object]] = {
    "method": lambda run: run.label,
    "model": lambda run: run.model.name,
    "task": lambda run: run.task.name,
    "seed": lambda run: run.seed,
}


def count_by(states: list[RunState], *keys: str) -> dict[tuple, dict[str, int]]:
    """Counts of each state per group of GROUP_KEYS, e.g. count_by(states, "method", "task")."""
    out: dict[tuple, dict[str, int]] = {}
    for s in states:
        group = tuple(GROUP_KEYS[k](s.run) for k in keys)
        out.setdefault(group, {})
        out[group][s.state] = out[group].get(s.state, 0) + 1
    return out
