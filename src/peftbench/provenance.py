"""Where a run was made and with what: versions, commit, lock hash, host."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

from peftbench import __version__
from peftbench.accounting import device_name
from peftbench.results import Provenance

PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "scikit-learn", "pydantic")
CHECKOUT = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@cache
def git_state(folder: Path = CHECKOUT) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout peftbench runs from, or (None, None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status.strip())


def lock_sha256() -> str | None:
    """sha256 of the requirements.lock in force: $PEFTBENCH_LOCK, else the checkout's."""
    path = Path(os.environ.get("PEFTBENCH_LOCK", CHECKOUT / "requirements.lock"))
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def collect_provenance(seed: int) -> Provenance:
    import torch

    commit, dirty = git_state()
    return Provenance(
        peftbench_version=__version__,
        packages=package_versions(),
        python=platform.python_version(),
        git_commit=commit,
        git_dirty=dirty,
        lock_sha256=lock_sha256(),
        hostname=socket.gethostname(),
        device=device_name(),
        torch_threads=torch.get_num_threads(),
        slurm_job_id=os.environ.get("SLURM_JOB_ID"),
        seed=seed,
    )
