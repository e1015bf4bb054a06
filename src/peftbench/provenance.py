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

import contextlib
import hashlib
import json
import os
import platform
import socket
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

from peftbench import __version__
from peftbench.accounting import device_name
from peftbench.lockfile import lock_path
from peftbench.results import Provenance, write_json_atomic

PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "scikit-learn", "pydantic")
CHECKOUT = Path(__file__).resolve().parents[2]
IMAGE_ENV = "PEFTBENCH_IMAGE"
IMAGE_SHA256_ENV = "PEFTBENCH_IMAGE_SHA256"
APPTAINER_IMAGE_ENVS = ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER")  # set by Apptainer inside
HASH_CHUNK_BYTES = 8 << 20


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
        return _baked_git_state()
    return commit, bool(status.strip())


def _baked_git_state() -> tuple[str | None, bool | None]:
    """The commit an image was built from (`PEFTBENCH_GIT_COMMIT`/`_DIRTY`, set by its %post)."""
    commit = os.environ.get("PEFTBENCH_GIT_COMMIT") or None
    dirty = os.environ.get("PEFTBENCH_GIT_DIRTY")
    return commit, (dirty == "true") if dirty in {"true", "false"} else None


def lock_sha256() -> str | None:
    """sha256 of the requirements.lock in force: $PEFTBENCH_LOCK, else the checkout's."""
    path = lock_path()
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def image_sha256(path: Path) -> str:
    """sha256 of an image file, remembered by (path, mtime, size) so each image is read once.

    The memo is `$XDG_CACHE_HOME/peftbench/image-sha256.json` (default ~/.cache); a rebuilt image
    has a new mtime or size and is hashed again. A memo that cannot be read or written is ignored.
    """
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}"
    memo_path = _hash_memo_path()
    memo = _read_memo(memo_path)
    if key in memo:
        return memo[key]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    memo[key] = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only home: hash again next time
        write_json_atomic(memo_path, memo)
    return memo[key]


def _hash_memo_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "peftbench" / "image-sha256.json"


def _read_memo(path: Path) -> dict[str, str]:
    try:
        memo = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def image_in_use() -> tuple[str | None, str | None]:
    """(path, sha256) of the Apptainer image this process runs in; (None, None) outside one."""
    path = os.environ.get(IMAGE_ENV) or next(
        (os.environ[name] for name in APPTAINER_IMAGE_ENVS if os.environ.get(name)), None
    )
    if path is None:
        return None, None
    sha = os.environ.get(IMAGE_SHA256_ENV) or None
    if sha is None and Path(path).is_file():
        sha = image_sha256(Path(path))
    return path, sha


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
        device=device_name(),
        torch_threads=torch.get_num_threads(),
        slurm_job_id=os.environ.get("SLURM_JOB_ID"),
        seed=seed,
    )
