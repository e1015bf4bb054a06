"""What was submitted, recorded in the sweep folder (`.submissions/<time>-<job>.json`).

Job ids and which run each array task holds, so that `status` and `resubmit` work from any later shell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBMISSIONS = ".submissions"


@dataclass
class Submission:
    """One submitted array: its job ids (one per task) and the run(s) each task holds."""

    cluster: str
    submitted_at: str
    shape: dict[str, Any]
    folder: str  # submitit's folder (logs, pickles)
    tasks: dict[str, str]  # Slurm job id ("123_4", or "123" for a one-task array) -> run_id
    # A packed array (resources.runs_per_gpu): job id -> the runs its task trains side by side.
    packs: dict[str, list[str]] = field(default_factory=dict)

    def runs_of_jobs(self) -> dict[str, list[str]]:
        """Slurm job id -> the run ids its task holds (one, or a pack)."""
        return {job: [run_id] for job, run_id in self.tasks.items()} | self.packs

    @property
    def job_ids(self) -> list[str]:
        return [*self.tasks, *self.packs]

    @property
    def run_count(self) -> int:
        return len(self.tasks) + sum(len(runs) for runs in self.packs.values())


def read_submissions(sweep_dir: Path) -> list[Submission]:
    """Every recorded submission of a sweep, oldest first (unreadable records are skipped)."""
    out = []
    for path in sorted((Path(sweep_dir) / SUBMISSIONS).glob("*.json")):
        try:
            out.append(Submission(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue
    return out


def jobs_by_run(submissions: list[Submission]) -> dict[str, list[tuple[str, Submission]]]:
    """run_id -> every (job id, submission) that ever held that run, oldest first.

    Every record counts, not only the newest: two commands that raced, or a resubmission while an
    older job still waited, leave a run in several jobs, and any of them may still be live.
    """
    jobs: dict[str, list[tuple[str, Submission]]] = {}
    for submission in submissions:
        for job_id, run_ids in submission.runs_of_jobs().items():
            for run_id in run_ids:
                jobs.setdefault(run_id, []).append((job_id, submission))
    return jobs


def latest_jobs(submissions: list[Submission]) -> dict[str, tuple[str, Submission]]:
    """run_id -> (job id, submission) of the newest submission holding that run."""
    return {run_id: jobs[-1] for run_id, jobs in jobs_by_run(submissions).items()}
