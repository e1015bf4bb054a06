"""Which Slurm cluster this process talks to: the profile's own slurm.conf, when it names one.

Slurm's commands (sbatch, squeue, sacct, scancel, srun, scontrol) read the cluster from
SLURM_CONF. A machine that reaches more than one cluster (the one-node `dev` and the two-node
`dev2` on localhost; a login node with a test and a production cluster) says which through the
profile's `slurm.conf`, set here once for the process. Jobs inherit it (sbatch passes the
submitter's environment), so the tasks' own srun and scontrol talk to the same cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

from peftbench.plan.schema import ClusterProfile

SLURM_CONF = "SLURM_CONF"


def use_cluster(profile: ClusterProfile) -> None:
    """Point this process's Slurm commands at `profile`'s cluster (no change when it names no conf)."""
    if profile.slurm is not None and profile.slurm.conf:
        os.environ[SLURM_CONF] = str(Path(profile.slurm.conf).expanduser())
