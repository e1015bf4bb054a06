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
    """sha256 of an image, remembered by (path, mtime, size) so each image is read once.

    A .sif is hashed as a file. A sandbox image (a directory, `apptainer build --sandbox`) is
    hashed as its tree (`sandbox_sha256`), keyed by its files' count, total size and newest mtime.
    The memo is `$XDG_CACHE_HOME/peftbench/image-sha256.json` (default ~/.cache); a rebuilt image
    has a new mtime or size and is hashed again. A memo that cannot be read or written is ignored.
    """
    key = f"{path.resolve()}:{_tree_key(path) if path.is_dir() else _file_key(path)}"
    memo_path = _hash_memo_path()
    memo = _read_memo(memo_path)
    if key in memo:
        return memo[key]
    memo[key] = sandbox_sha256(path) if path.is_dir() else _file_sha256(path)
    with contextlib.suppress(OSError):  # a read-only home: hash again next time
        write_json_atomic(memo_path, memo)
    return memo[key]


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _tree(root: Path) -> list[Path]:
    """Every entry under root, in a fixed order; symbolic links are not followed."""
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        entries += [Path(folder, name) for name in sorted(dirs + files)]
    return entries


def _tree_key(root: Path) -> str:
    stats = [entry.lstat() for entry in _tree(root)]
    newest = max((stat.st_mtime_ns for stat in stats), default=0)
    return f"tree:{len(stats)}:{sum(stat.st_size for stat in stats)}:{newest}"


def sandbox_sha256(root: Path) -> str:
    """sha256 over a sandbox image's tree: each entry's relative path, kind and mode, and the
    sha256 of a file's content or a link's target. A file not readable by everyone (an image's
    /etc/shadow) counts by path and mode only, so every user, root included, gets the same digest,
    and so does a copy of the same tree anywhere."""
    digest = hashlib.sha256()
    for entry in _tree(root):
        stat = entry.lstat()
        if entry.is_symlink():
            content = os.readlink(entry)
        elif entry.is_file() and stat.st_mode & 0o004:
            content = _file_sha256(entry)
        else:
            content = ""
        digest.update(f"{entry.relative_to(root)}\0{stat.st_mode:o}\0{content}\n".encode())
    return digest.hexdigest()


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
    if sha is None and Path(path).exists():
        sha = image_sha256(Path(path))
    return path, sha
