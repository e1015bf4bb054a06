"""What each Slurm array task executes: the one place the launcher calls the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftbench.core.results import read_spec


class RunTask:
    """What each array task executes: run_one on a spec file. Checkpointable: on timeout or
    preemption submitit calls `checkpoint`, requeues the same call, and run_one resumes from the
    Trainer's last checkpoint in the run folder.

    A distributed run is one Slurm job with a task per GPU (over all its nodes): every task runs
    this same call, with the torch.distributed variables (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) exported from submitit's job environment; the Trainer's engine does
    the rest, and rank 0 writes the result."""

    def __call__(self, spec_file: str, run_dir: str) -> str:
        import submitit

        from peftbench.run.one import run_one

        if submitit.JobEnvironment().num_tasks > 1:
            # Every GPU of the node stays visible; each process takes cuda:LOCAL_RANK.
            submitit.helpers.TorchDistributedEnvironment().export(
                set_cuda_visible_devices=False, overwrite=True
            )
        return run_one(read_spec(Path(spec_file)), Path(run_dir)).status

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
