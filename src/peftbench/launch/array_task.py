"""What each Slurm array task executes: the one place the launcher calls the run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from peftbench.core.paths import RunPaths
from peftbench.core.results import has_success, read_spec
from peftbench.launch.claims import Claim, ClaimHeld

ALREADY_DONE = "success (already done: not trained again)"
TRAINED_ELSEWHERE = "skipped (another job is training this run)"


class RunTask:
    """What each array task executes: run_one on a spec file. Checkpointable: on timeout or
    preemption submitit calls `checkpoint`, requeues the same call, and run_one resumes from the
    Trainer's last checkpoint in the run folder.

    Idempotent: a run that already has a success result is not trained again, and a run claimed
    by another live job (a duplicate submission) is left to it; the claim file (`RunPaths.claim`)
    is the run's for as long as this task trains it.

    A distributed run is one Slurm job with a task per GPU (over all its nodes): every task runs
    this same call, with the torch.distributed variables (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) exported from submitit's job environment; the Trainer's engine does
    the rest, and rank 0 writes the result. The tasks of one job share the run's claim."""

    def __call__(self, spec_file: str, run_dir: str) -> str:
        import submitit

        from peftbench.run.one import run_one

        paths = RunPaths(Path(run_dir))
        if has_success(paths):
            return _said(f"{paths.root.name}: {ALREADY_DONE}", ALREADY_DONE)
        try:
            claim = Claim(paths.claim, f"array task {paths.root.name}", per_job=True).acquire()
        except ClaimHeld as held:
            return _said(f"{paths.root.name}: {TRAINED_ELSEWHERE}: {held}", TRAINED_ELSEWHERE)
        try:
            for line in claim.broken:
                _said(line, "")
            if has_success(paths):  # finished by the holder we waited out
                return ALREADY_DONE
            if submitit.JobEnvironment().num_tasks > 1:
                # Every GPU of the node stays visible; each process takes cuda:LOCAL_RANK.
                submitit.helpers.TorchDistributedEnvironment().export(
                    set_cuda_visible_devices=False, overwrite=True
                )
            return run_one(read_spec(Path(spec_file)), Path(run_dir)).status
        finally:
            claim.release()

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _said(line: str, outcome: str) -> str:
    """Tell the task's log (submitit's stderr file) why it did what it did."""
    print(f"[peftbench] {line}", file=sys.stderr, flush=True)
    return outcome
