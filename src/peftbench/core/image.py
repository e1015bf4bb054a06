"""The Apptainer image a run runs in: its path from the environment, its sha256 (memoized)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from peftbench.core.files import write_json_atomic

IMAGE_ENV = "PEFTBENCH_IMAGE"


IMAGE_SHA256_ENV = "PEFTBENCH_IMAGE_SHA256"


APPTAINER_IMAGE_ENVS = ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER")  # set by Apptainer inside


HASH_CHUNK_BYTES = 8 << 20


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
