"""peftbench's errors, under one base: bad input (every problem found at once, each with file, key,
value and what is allowed), unreadable files, a run that cannot start, a service that does not answer,
a file system that is full or read-only.

Each names what it is about, so the CLI prints the message and never a traceback.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal


def near_match(value: object, allowed: Iterable[str]) -> str | None:
    """The closest allowed name to a misspelt one, or None when nothing is close."""
    matches = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
    return matches[0] if matches else None


def format_key(path: Iterable[str | int]) -> str:
    """`methods.lora.r` / `models[0]`: the key path as a user would write it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file."""

    file: str
    key: str
    message: str
    value: Any = None
    allowed: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.file}: {self.key}: {self.message}"
        if self.allowed:
            shown = ", ".join(self.allowed[:20]) + (", ..." if len(self.allowed) > 20 else "")
            text += f" Allowed: {shown}."
            guess = near_match(self.value, self.allowed) if isinstance(self.value, str) else None
            if guess is not None:
                text += f" Did you mean '{guess}'?"
        return text


def unknown_name(file: str, key: str, kind: str, value: Any, allowed: Iterable[str]) -> Problem:
    """`Unknown method 'lroa'.` with the allowed names and a near match."""
    return Problem(file, key, f"Unknown {kind} {value!r}.", value, tuple(sorted(allowed)))


class PeftbenchError(Exception):
    """The base of every error peftbench raises on purpose."""


class UnreadableFile(PeftbenchError):
    """A file peftbench wrote (a result, predictions) that is missing, cut short or not its schema."""


class RunCannotStart(PeftbenchError):
    """A run whose inputs are not there (e.g. the parent run of an incremental run did not succeed)."""


class OutOfTime(PeftbenchError):
    """The scheduler's time for the run ran out and no requeue is left: the run ends as `timeout`."""


class SchedulerError(PeftbenchError):
    """A scheduler command (sbatch, squeue, sacct, scancel) that failed: which one, and its error."""

    def __init__(self, command: str, error: str):
        self.command, self.error = command, error
        lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
        super().__init__(f"`{command}` failed: {' / '.join(lines) or 'no error message'}")


class ConfigError(PeftbenchError, ValueError):
    """Raised with every problem of a config at once, before anything runs."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(dict.fromkeys(problems))  # the same problem found twice is said once
        problems = self.problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        super().__init__(f"{count} found:\n" + "\n".join(f"  - {p}" for p in problems))


class UnknownMetric(PeftbenchError, LookupError):
    """A metric name no task type reports, so no direction (higher or lower is better) is known for it.

    Guessing "higher" would pick the worst checkpoint or hyper-parameters of a lower-is-better metric
    without a word; the name is a typo or a metric `core.directions` has yet to list.
    """

    def __init__(self, metric: str, known: Iterable[str]):
        self.metric, self.known = metric, tuple(sorted(known))
        text = f"Unknown metric {metric!r}: no direction is known for it. Known: {', '.join(self.known)}."
        guess = near_match(metric, self.known)
        super().__init__(text + (f" Did you mean {guess!r}?" if guess else ""))


DiskTrouble = Literal["full", "quota", "read-only"]
DISK_ERRNOS: dict[int, DiskTrouble] = {errno.ENOSPC: "full", errno.EDQUOT: "quota", errno.EROFS: "read-only"}
# Libraries that write in Rust or C++ (safetensors, tokenizers) raise their own errors carrying only
# the operating system's words: "No space left on device (os error 28)".
DISK_WORDS: dict[str, DiskTrouble] = {
    "no space left on device": "full",
    "disk quota exceeded": "quota",
    "read-only file system": "read-only",
}


def disk_trouble(err: BaseException) -> tuple[DiskTrouble, BaseException] | None:
    """Whether `err`, or any error it was raised from or during, says the disk is full, over quota
    or read-only: (which, the error that said so); None when none does."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, CannotWrite):
            return current.trouble, current
        found = _trouble_of(current)
        if found is not None:
            return found, current
        todo += [current.__cause__, current.__context__]
    return None


def _trouble_of(err: BaseException) -> DiskTrouble | None:
    if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
        return DISK_ERRNOS[err.errno]
    text = str(err).lower()
    return next((trouble for words, trouble in DISK_WORDS.items() if words in text), None)


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB': what `df -h` would say, to one decimal."""
    if n < 1024:
        return f"{n} B"
    size, units = n / 1024, ["KiB", "MiB", "GiB", "TiB", "PiB"]
    while size >= 1024 and len(units) > 1:
        size, units = size / 1024, units[1:]
    return f"{size:.1f} {units[0]}"


@dataclass(frozen=True)
class FileSystem:
    """The file system a path is on, as `df` shows it: where it is mounted, its type, its space."""

    mount: str
    kind: str  # "ext4", "tmpfs", "nfs4", ...; "" where the mount table cannot be read
    free_bytes: int  # what an unprivileged writer may still use (statvfs f_bavail)
    size_bytes: int
    read_only: bool

    def describe(self) -> str:
        kind = f"{self.kind} " if self.kind else ""
        return f"the {kind}file system mounted at {self.mount}"


FREE_SOME = "delete what you no longer need on it, or write to another folder; then run again"


class CannotWrite(PeftbenchError):
    """A file that could not be written because its file system is full, over quota or read-only.

    The message is one line: the file, the file system (mount point, type, free space) and what to
    do. Every writer of peftbench raises it (core.files names the file system), the CLI prints it,
    and a run that meets it ends with it as the last line of its result's error.
    """

    def __init__(self, path: str, trouble: DiskTrouble, file_system: FileSystem, what_to_free: str = ""):
        self.path, self.trouble, self.file_system = path, trouble, file_system
        self.what_to_free = what_to_free
        where, fs = file_system.describe(), file_system
        free = f"{human_bytes(fs.free_bytes)} free of {human_bytes(fs.size_bytes)}"
        what = what_to_free or FREE_SOME
        full = f"is full ({free})"
        if fs.free_bytes:  # room now: the writer that filled it (safetensors) removed its part
            full = f"ran out of space (now {free}, less than was being written)"
        said = {
            "full": f"{where} {full}. To free space: {what}.",
            "quota": f"your disk quota on {where} is used up. To free space: {what}; or ask for more quota.",
            "read-only": f"{where} is read-only. Remount it read-write or write to another folder; "
            "then run again.",
        }[trouble]
        super().__init__(f"Cannot write {path}: {said}")

    def __reduce__(self) -> tuple[type[CannotWrite], tuple[str, DiskTrouble, FileSystem, str]]:
        """Pickled as its parts (a forked run or a Slurm task hands it back to its parent)."""
        return CannotWrite, (self.path, self.trouble, self.file_system, self.what_to_free)
