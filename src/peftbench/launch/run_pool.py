"""Run jobs side by side in forked processes, `slots` at a time, starting the next as one ends.

Forked, not spawned: whatever the parent imported and loaded before (torch, transformers, a
tokenizer, tokenized splits) the children have at once, shared copy-on-write. The parent must not
have touched CUDA before forking (a CUDA context does not survive a fork); the children do.

Each job is its own process, so one that fails, runs out of memory or is killed ends alone: the
parent sees its exit status and goes on with the others. Nothing here knows what a job does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Ended:
    """How one job's process ended."""

    key: str
    pid: int
    exit_code: int  # as subprocess says it: >= 0 the process's own, < 0 the signal that killed it
    started: float  # time.time() at fork
    seconds: float

    @property
    def why(self) -> str:
        if self.exit_code >= 0:
            return f"its process (pid {self.pid}) exited with status {self.exit_code}"
        number = -self.exit_code
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        hint = " (the kernel's OOM killer, or someone's kill)" if number == signal.SIGKILL else ""
        return f"its process (pid {self.pid}) was killed by signal {name}{hint}"


Job = tuple[str, Callable[[], int]]  # (key, what the child runs: returns its exit status)


class ForkPool:
    """Runs jobs in forked children, at most `slots` at once (see the module docstring)."""

    def __init__(self, slots: int, poll_s: float = 0.2):
        self.slots = max(1, slots)
        self.poll_s = poll_s
        self.running: dict[int, tuple[str, float]] = {}  # pid -> (key, start)
        self._recent: set[int] = set()  # pids alive at some moment since the last alive_since_last()

    def run(
        self,
        jobs: list[Job],
        on_start: Callable[[str], bool] = lambda key: True,
        on_fork: Callable[[str, int], None] = lambda key, pid: None,
        on_end: Callable[[Ended], None] = lambda ended: None,
    ) -> list[Ended]:
        """Run every job; `on_start(key)` False skips it (e.g. someone else trains it). Returns how each
        job that ran ended, in the order they ended. Children still running when the parent is
        interrupted (a signal, an error) are terminated before it goes."""
        queue, ended = list(jobs), []
        try:
            while queue or self.running:
                while queue and len(self.running) < self.slots:
                    key, target = queue.pop(0)
                    if on_start(key):
                        pid = self._fork(target)
                        self.running[pid] = (key, time.time())
                        self._recent.add(pid)
                        on_fork(key, pid)
                for done in self._reap():
                    ended.append(done)
                    on_end(done)
                if self.running:
                    time.sleep(self.poll_s)
        finally:
            self._terminate_all()
        return ended

    def alive_since_last(self) -> set[int]:
        """Children alive at some moment since the last call (for sharing an interval's energy)."""
        seen, self._recent = self._recent, set(self.running)
        return seen | set(self.running)

    def _fork(self, target: Callable[[], int]) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:  # the child: never returns into the parent's code
            # Slurm's warning signal (submitit's USR2) is the parent's to act on, not each run's.
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = target()
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
        return 0  # unreachable

    def _reap(self) -> list[Ended]:
        out = []
        for pid, (key, start) in list(self.running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del self.running[pid]
                out.append(Ended(key, pid, os.waitstatus_to_exitcode(status), start, time.time() - start))
        return out

    def _terminate_all(self) -> None:
        for pid in list(self.running):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in list(self.running):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            del self.running[pid]
