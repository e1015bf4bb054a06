"""Where a run was made and with what: versions, commit, lock hash, image, host.

The image is named by the launcher: `container_python` (launch/container.py) passes
`PEFTBENCH_IMAGE` and `PEFTBENCH_IMAGE_SHA256` into the container, so a multi-GB .sif is hashed
once per sweep on the submitting node, not once per run. A run that finds only the image path
(Apptainer's own `APPTAINER_CONTAINER`, e.g. `apptainer run img.sif sweep ...` on one node) hashes
it through `image_sha256`, whose cache (keyed by path, mtime and size) makes that once per image.
Inside the image, where there is no git checkout, the commit comes from `PEFTBENCH_GIT_COMMIT`,
which the image's build sets from the checkout it was built from.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from importlib import metadata

from peftbench import __version__
from peftbench.core.checkout import git_state, lock_path
from peftbench.core.image import image_in_use
from peftbench.core.results import Provenance
from peftbench.run.accounting import device_name
from peftbench.run.distributed import hosts_of_ranks

PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "scikit-learn", "pydantic")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def lock_sha256() -> str | None:
    """sha256 of the requirements.lock in force: $PEFTBENCH_LOCK, else the checkout's."""
    path = lock_path()
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def collect_provenance(seed: int) -> Provenance:
    import torch

    commit, dirty = git_state()
    image, image_sha = image_in_use()
    return Provenance(
        peftbench_version=__version__,
        packages=package_versions(),
        python=platform.python_version(),
        git_commit=commit,
        git_dirty=dirty,
        lock_sha256=lock_sha256(),
        image=image,
        image_sha256=image_sha,
        hostname=socket.gethostname(),
        hosts=hosts_of_ranks(),
        device=device_name(),
        torch_threads=torch.get_num_threads(),
        slurm_job_id=os.environ.get("SLURM_JOB_ID"),
        seed=seed,
    )
