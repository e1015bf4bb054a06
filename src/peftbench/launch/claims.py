"""Exclusive claims made of plain files: one writer per sweep folder, one trainer per run folder.

A claim is a file that only one process can create: a private file, fully written, hard-linked to
the claim's name (a link fails when the name exists, atomically, like O_CREAT|O_EXCL, on local disks
and on the shared file systems clusters use: NFS v3 and later, Lustre, GPFS; and a reader never
sees half of it). It holds who made it: host, pid, time, the Slurm job (if any) and the command.
While held, a thread touches the file every `HEARTBEAT_S` seconds.

A claim is stale, and is broken with a message, when its holder is gone:
- on this host, its pid no longer runs;
- held by this same Slurm job (a requeued task: Slurm never runs two copies of one job);
- on another host, its Slurm job has ended (`squeue` no longer knows it), or its heartbeat is
  older than `STALE_AFTER_S` (the holder's node died or the process was killed; clocks of the
  hosts are assumed to agree within a minute).

Breaking renames the stale file away and checks that what was renamed is the claim judged stale,
so two processes breaking the same stale claim do not both go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from peftbench.core.errors import PeftbenchError
from peftbench.core.files import made_folders, writing_to

HEARTBEAT_S = 30.0
SWEEP_LOCK = ".lock"  # in a sweep folder: held by the one `sweep` or `resubmit` writing it (cli.py)
STALE_AFTER_S = 600.0  # a claim from another host not touched for this long is a dead holder's


class ClaimHeld(PeftbenchError):
    """Someone alive holds the claim; the message says who and since when."""


@dataclass(frozen=True)
class Holder:
    """Who holds a claim (the claim file's content)."""

    host: str
    pid: int
    since: str  # ISO 8601 UTC
    command: str
    slurm_job: str | None = None  # "123_4" for an array task, "123" for a plain job
    token: str = ""  # random: tells this claim from a later one by the same holder

    @classmethod
    def me(cls, command: str) -> Holder:
        return cls(
            socket.gethostname(),
            os.getpid(),
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
            command,
            slurm_job_id(),
            secrets.token_hex(8),
        )

    def describe(self) -> str:
        job = f", Slurm job {self.slurm_job}" if self.slurm_job else ""
        return f"`{self.command}` (host {self.host}, pid {self.pid}{job}, since {self.since})"


def slurm_job_id() -> str | None:
    """This process's Slurm job as `status` shows it: array job_task, or the plain job id."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


class Claim:
    """An exclusive claim on `path` (a file); a context manager. See the module docstring."""

    def __init__(
        self, path: Path, command: str, wait_s: float = 0.0, poll_s: float = 1.0, per_job: bool = False
    ):
        """`per_job`: the claim is the Slurm job's; every task of it (one per GPU) may go on."""
        self.path = Path(path)
        self.command = command
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.per_job = per_job
        self.holder: Holder | None = None
        self.owned = False  # this process made the file (a sibling task of the job did not)
        self.broken: list[str] = []  # one line per stale claim broken on the way in
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self) -> Claim:
        """Take the claim, waiting up to `wait_s` for a live holder; ClaimHeld if it does not let go."""
        deadline = time.monotonic() + self.wait_s
        while True:
            me = Holder.me(self.command)
            if _create(self.path, me):
                return self._held_by(me, owned=True)
            other = read_holder(self.path)
            if other is None:  # gone since: try again
                time.sleep(0.05)
                continue
            why = stale_reason(self.path, other, me)
            if why is None and self._shared_with(other, me):
                return self._held_by(other, owned=False)  # another task of this same job, or its requeue
            if why is not None:
                self._break_stale(other, why)
                continue
            if time.monotonic() >= deadline:
                raise ClaimHeld(f"{self.path} is held by {other.describe()}")
            time.sleep(self.poll_s)

    def _shared_with(self, other: Holder, me: Holder) -> bool:
        """A per-job claim held by this same Slurm job: every task of the job may go on."""
        return self.per_job and bool(other.slurm_job) and other.slurm_job == me.slurm_job

    def _held_by(self, holder: Holder, owned: bool) -> Claim:
        self.holder, self.owned = holder, owned
        self._start_heartbeat()
        return self

    def _break_stale(self, stale: Holder, why: str) -> None:
        if _break(self.path, stale):
            self.broken.append(f"broke a stale claim {self.path} held by {stale.describe()}: {why}")

    def release(self) -> None:
        """Give the claim back (only if it is still ours)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.holder is not None and self.owned:
            current = read_holder(self.path)
            if current is not None and current.token == self.holder.token:
                self.path.unlink(missing_ok=True)
        self.holder, self.owned = None, False

    def __enter__(self) -> Claim:
        return self if self.holder is not None else self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    os.utime(self.path)
                except OSError:
                    return

        self._stop.clear()
        self._beat = threading.Thread(target=beat, name=f"claim {self.path.name}", daemon=True)
        self._beat.start()


def read_holder(path: Path) -> Holder | None:
    """The holder written in a claim file, or None when there is none (or it is still being written)."""
    try:
        return Holder(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def stale_reason(path: Path, holder: Holder, me: Holder) -> str | None:
    """Why `holder`'s claim is stale, seen by `me`; None while its holder may be alive."""
    if holder.host == me.host:
        return None if _pid_alive(holder.pid) else f"pid {holder.pid} no longer runs on {me.host}"
    if holder.slurm_job and holder.slurm_job != me.slurm_job and _slurm_job_ended(holder.slurm_job):
        return f"its Slurm job {holder.slurm_job} has ended"
    try:
        idle = time.time() - path.stat().st_mtime
    except OSError:
        return None
    if idle > STALE_AFTER_S:
        return (
            f"no heartbeat from {holder.host} for {idle / 60:.0f} min (stale after {STALE_AFTER_S / 60:.0f})"
        )
    return None


def _slurm_job_ended(job: str) -> bool:
    """True only when squeue answers and no longer lists the job; any doubt counts as alive."""
    try:
        done = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    if done.returncode != 0:
        return "Invalid job id" in done.stderr
    return not done.stdout.strip()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _create(path: Path, me: Holder) -> bool:
    """Create the claim file holding `me`; False if it exists. The content is complete before it
    is visible: written to a private file first, then hard-linked (atomic, O_EXCL-like on NFS too).

    On a full or read-only file system: CannotWrite naming the claim, and nothing left behind (no
    draft, no claim, no folder made for it)."""
    draft = path.with_name(f".{path.name}.{me.token}")
    with made_folders(path.parent), writing_to(path):
        try:
            draft.write_text(json.dumps(asdict(me)), encoding="utf-8")
            os.link(draft, path)
            return True
        except FileExistsError:
            return False
        finally:
            draft.unlink(missing_ok=True)


def _break(path: Path, stale: Holder) -> bool:
    """Remove `stale`'s claim; if another process replaced it meanwhile, put that one back."""
    aside = path.with_name(f".{path.name}.broken.{secrets.token_hex(8)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    taken = read_holder(aside)
    if taken is not None and taken.token != stale.token:  # a fresh claim: not ours to break
        with contextlib.suppress(FileExistsError):  # someone claimed it since: theirs stands
            os.link(aside, path)
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True
