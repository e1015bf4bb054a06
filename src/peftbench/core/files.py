"""Atomic writes: a temp file in the same folder, fsync, rename. A crash leaves old or new, never half.

Files get the mode any new file would (0666 less the umask), so a lab sharing one project folder
with umask 002 can read each other's results: `tempfile.mkstemp` would make every file 0600.
`follow_umask` gives the same modes to what other writers made private (safetensors' weights).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO


def write_json_atomic(path: Path, payload: Any, durable: bool = True) -> None:
    """Write JSON to a temp file in the same folder, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never half a file. `durable`
    False skips the fsync: still atomic for a crashed process, not against a power cut; for files
    that can be rebuilt (a spec.json is re-derived from the sweep), where fsync would dominate the
    cost of submitting thousands of runs.
    """

    def write(f: TextIO) -> None:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")

    write_text_atomic(path, write, durable)


def write_text_atomic(path: Path, write: Callable[[TextIO], None], durable: bool = True) -> None:
    """Call `write` on an open text file that atomically becomes `path` (see write_path_atomic)."""

    def to_file(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            write(f)

    write_path_atomic(path, to_file, durable)


def write_path_atomic(path: Path, write: Callable[[Path], None], durable: bool = True) -> None:
    """Call `write(tmp)` on a temp path in `path`'s folder, fsync it (if durable), rename over `path`.

    For writers that want a path (parquet, csv) as well as text. On any failure the temp file is
    removed and `path` keeps its old content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(path)
    try:
        write(tmp)
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _new_temp_file(path: Path) -> Path:
    """An empty, new file beside `path`, with the umask's mode (O_EXCL: never someone else's)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


def current_umask() -> int:
    """The process's umask, read where Linux shows it (/proc/self/status, kernel 4.7+).

    Elsewhere it is set and set back: `os.umask` has no read-only form, and for that instant a file
    another thread creates would get the temporary mask."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(root: Path) -> None:
    """Give `root` and everything under it the permissions a new file or folder gets from the
    umask: 0666 (files) or 0777 (folders) less the umask.

    Some writers pick a private mode of their own (safetensors creates every file 0600); in a lab
    whose members share one project folder with umask 002 that hides one member's weights from the
    others. Only the permission bits change (a folder keeps its setgid bit, which a shared folder
    uses to pass its group on); links and other owners' files are left alone. A file that cannot be
    changed (gone meanwhile, a read-only file system) is skipped: a mode is never worth a run.
    """
    mask = current_umask()
    for folder, _, files in os.walk(root):
        _set_permissions(Path(folder), 0o777 & ~mask)
        for name in files:
            _set_permissions(Path(folder) / name, 0o666 & ~mask)


def _set_permissions(path: Path, permissions: int) -> None:
    with contextlib.suppress(OSError):
        now = os.lstat(path)
        mode = stat.S_IMODE(now.st_mode)
        if stat.S_ISLNK(now.st_mode) or now.st_uid != os.getuid() or (mode & 0o777) == permissions:
            return
        os.chmod(path, (mode & ~0o777) | permissions)
