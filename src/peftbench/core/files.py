"""Atomic writes: a temp file in the same folder, fsync, rename. A crash leaves old or new, never half.

Files get the mode any new file would (0666 less the umask), so a lab sharing one project folder
with umask 002 can read each other's results: `tempfile.mkstemp` would make every file 0600.
`follow_umask` gives the same modes to what other writers made private (safetensors' weights).

On a full, over-quota or read-only file system every writer here raises core's `CannotWrite`, one
line naming the file, its file system (mount point, type, free space) and what to do; it leaves no
temp file and no folder it made, and the file it was to replace keeps its old content.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from peftbench.core.errors import CannotWrite, DiskTrouble, FileSystem, disk_trouble

MOUNT_TABLE = Path("/proc/self/mounts")


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
    write_paths_atomic({path: write}, durable)


def write_paths_atomic(writes: Mapping[Path, Callable[[Path], None]], durable: bool = True) -> None:
    """Write several files all or none: every temp file first, then each renamed over its path.

    A failure while writing any of them (a full disk) leaves every path as it was and no temp file;
    only a crash between the renames (a few system calls) can leave some old and some new.
    """
    temps: dict[Path, Path] = {}
    with made_folders(*(path.parent for path in writes)):  # those it made go again on a full disk
        try:
            for path, write in writes.items():
                with writing_to(path):
                    temps[path] = _new_temp_file(path)
                    write(temps[path])
                    if durable:
                        _fsync(temps[path])
            for path, tmp in temps.items():
                with writing_to(path):
                    os.replace(tmp, path)
        except BaseException:
            for tmp in temps.values():
                tmp.unlink(missing_ok=True)
            raise


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


@contextlib.contextmanager
def writing_to(path: Path, what_to_free: str = "") -> Iterator[None]:
    """A full, over-quota or read-only file system met inside becomes `CannotWrite` naming `path`
    and its file system; any other error passes as it is."""
    try:
        yield
    except CannotWrite:
        raise
    except Exception as err:
        found = disk_trouble(err)
        if found is None:
            raise
        raise cannot_write(path, found[0], what_to_free) from err


@contextlib.contextmanager
def made_folders(*folders: Path) -> Iterator[None]:
    """The folders (and any missing parents) made; if the disk refuses what follows inside
    (CannotWrite), the folders made here are removed again, those still empty (another process
    may have begun to use one)."""
    missing = {p for folder in folders for p in _missing(folder)}
    try:
        for folder in folders:
            with writing_to(folder):
                folder.mkdir(parents=True, exist_ok=True)
        yield
    except CannotWrite:
        for made in sorted(missing, key=lambda p: len(p.parts), reverse=True):  # the deepest first
            with contextlib.suppress(OSError):
                made.rmdir()
        raise


def _missing(folder: Path) -> list[Path]:
    """`folder` and its parents that do not exist yet (one stat when `folder` exists)."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def cannot_write(path: Path, trouble: DiskTrouble, what_to_free: str = "") -> CannotWrite:
    """The error for `path` on a full, over-quota or read-only file system, its file system named."""
    return CannotWrite(str(path), trouble, file_system_of(path), what_to_free)


def disk_error(err: BaseException, path: Path, what_to_free: str = "") -> CannotWrite | None:
    """`err` as CannotWrite when it (or an error behind it) is a disk error; the file it names, else
    `path`. None for any other error."""
    found = disk_trouble(err)
    if found is None:
        return None
    trouble, said = found
    if isinstance(said, CannotWrite):
        return said
    named = getattr(said, "filename", None)
    return cannot_write(Path(named) if isinstance(named, str) else path, trouble, what_to_free)


def file_system_of(path: Path) -> FileSystem:
    """The file system holding `path` (or the nearest folder above it that exists)."""
    existing = next((p for p in (Path(path), *Path(path).parents) if p.exists()), Path("/"))
    types = _mount_types()
    mount = _mount_point(existing.resolve(), types)
    stats = os.statvfs(existing)
    return FileSystem(
        mount=str(mount),
        kind=types.get(str(mount), ""),
        free_bytes=stats.f_bavail * stats.f_frsize,
        size_bytes=stats.f_blocks * stats.f_frsize,
        read_only=bool(stats.f_flag & os.ST_RDONLY),
    )


def _mount_point(path: Path, types: dict[str, str]) -> Path:
    """The deepest mount point at or above `path`: from the mount table (bind mounts included),
    else the first folder up that `os.path.ismount` says is one."""
    mounts = [Path(m) for m in types if Path(m) == path or Path(m) in path.parents]
    if mounts:
        return max(mounts, key=lambda m: len(m.parts))
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _mount_types() -> dict[str, str]:
    """Mount point -> file system type, from the kernel's mount table (the last mount on a point is
    the one seen); empty where there is none (not Linux)."""
    try:
        lines = MOUNT_TABLE.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    types = {}
    for line in lines:
        fields = line.split()
        if len(fields) >= 3:  # device, mount point, type, options, ...
            types[_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[1])] = fields[2]
    return types


_OCTAL = re.compile(r"\\([0-7]{3})")  # the mount table writes a space in a path as \040
