"""What Slurm says about jobs: one `sacct` and one `squeue` call, and each query it could not answer.

sacct (through slurmdbd) remembers finished jobs and lags a second or two; squeue (through
slurmctld) answers at once for live ones. A query that fails or times out is kept as a
`QueryFailure` (the command, its error on one line), so that the caller can say what it could not
read and what it shows instead.

A daemon that does not answer (slurmctld stopped or hung: Slurm's clients wait out their
`MessageTimeout`, 10 s by default, then fail) is remembered for the rest of the command
(`one_command`): later calls that need it are not made and say why, so a hung controller costs one
timeout per command, not one per query.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

QUERY_TIMEOUT_S = 60
DAEMONS = {"squeue": "slurmctld", "scancel": "slurmctld", "sacct": "slurmdbd"}  # whom each command asks
# What Slurm's clients print when their daemon did not answer: no connection, or no reply in time.
NO_ANSWER = re.compile(
    r"Unable to contact|Socket timed out|connect failure|Connection refused|Connection timed out"
    r"|Zero Bytes were transmitted",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class QueryFailure:
    """One call that gave no answer: its command, its error on one line, and whether its daemon was
    silent (a timeout or no connection: not asked again in this command)."""

    command: str
    said: str
    silent: bool = False
    seconds: float = 0.0  # how long the call waited

    @property
    def daemon(self) -> str:
        return DAEMONS.get(self.command, self.command)

    def __str__(self) -> str:
        return f"{self.command}: {self.said}"


@dataclass
class SilentDaemons:
    """The daemons that did not answer during one command, each with the call that showed it."""

    found: dict[str, QueryFailure] = field(default_factory=dict)


_COMMAND: ContextVar[SilentDaemons | None] = ContextVar("peftbench_silent_daemons", default=None)


@contextmanager
def one_command() -> Iterator[SilentDaemons]:
    """The scope of one command: a daemon that did not answer is not asked again inside it. Inside
    a scope already open, that one goes on.

    Outside any scope (a library call, a test's polling loop) every call asks: a daemon that comes
    back is seen at once.
    """
    scope = _COMMAND.get()
    if scope is not None:
        yield scope
        return
    scope = SilentDaemons()
    token = _COMMAND.set(scope)
    try:
        yield scope
    finally:
        _COMMAND.reset(token)


def silent_daemon(daemon: str) -> QueryFailure | None:
    """The call that showed `daemon` silent earlier in this command, if one did."""
    scope = _COMMAND.get()
    return scope.found.get(daemon) if scope is not None else None


def scheduler_call(command: list[str], failures: list[QueryFailure]) -> str:
    """The command's output; a failure is appended to `failures`. A command whose daemon was silent
    earlier in this command is not run (it would wait out the same timeout again)."""
    daemon = DAEMONS.get(command[0], command[0])
    earlier = silent_daemon(daemon)
    if earlier is not None:
        why = f"not asked: {daemon} did not answer {earlier.command} earlier in this command ({earlier.said})"
        failures.append(QueryFailure(command[0], why, silent=True))
        return ""
    started = time.monotonic()
    output, failure = _call(command)
    if failure is not None:
        failure = replace(failure, seconds=time.monotonic() - started)
        failures.append(failure)
        scope = _COMMAND.get()
        if failure.silent and scope is not None:
            scope.found.setdefault(daemon, failure)
    return output


def _call(command: list[str]) -> tuple[str, QueryFailure | None]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "", QueryFailure(command[0], f"no answer in {QUERY_TIMEOUT_S} s", silent=True)
    except OSError as err:
        return "", QueryFailure(command[0], str(err.strerror or err))
    if done.returncode != 0:
        said = " ".join((done.stderr or done.stdout).split())[:300]
        silent = NO_ANSWER.search(said) is not None
        return "", QueryFailure(command[0], f"exit {done.returncode}" + (f": {said}" if said else ""), silent)
    return done.stdout, None


@dataclass(frozen=True)
class SchedulerStates:
    """What squeue and sacct said: a Slurm state per job id, and each query that failed."""

    states: dict[str, str]
    failures: list[QueryFailure] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Each failed query as one line: `squeue: exit 1: ...`."""
        return [str(failure) for failure in self.failures]

    def get(self, job_id: str, default: str = "") -> str:
        return self.states.get(job_id, default)

    def is_unknown(self, job_id: str) -> bool:
        """No answer for this job while a query failed: it may well be pending or running."""
        return job_id not in self.states and bool(self.failures)


def query_states(job_ids: list[str]) -> SchedulerStates:
    """Slurm state per job id ("123_4" -> "RUNNING"): squeue for live jobs, sacct for the rest."""
    wanted = set(job_ids)
    if not wanted:
        return SchedulerStates({})
    failures: list[QueryFailure] = []
    bases = sorted({j.split("_")[0] for j in wanted})
    sacct = scheduler_call(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(bases)], failures)
    states = sacct_states(sacct, wanted)
    for line in scheduler_call(["squeue", "-h", "-r", "-o", "%i|%T"], failures).splitlines():
        job, _, state = line.partition("|")
        if job in wanted:
            states[job] = state
    return SchedulerStates(states, failures)


def sacct_states(text: str, wanted: set[str]) -> dict[str, str]:
    """Each wanted job's state in sacct's `JobID|State` rows (`CANCELLED by 0` -> `CANCELLED`).

    sacct lists the tasks of an array that have not started in one compressed row, `123_[0-3%2]`.
    A task's own row wins over that row, in whichever order they come: after slurmdbd was away, the
    compressed row can still list a task that has already ended, for a few seconds.
    """
    own: dict[str, str] = {}
    compressed: dict[str, str] = {}
    for line in text.splitlines():
        field_, _, state = line.partition("|")
        rows = compressed if "[" in field_ else own
        for job in expand_job_ids(field_):
            if job in wanted:
                rows[job] = state.split()[0] if state.strip() else "UNKNOWN"
    return compressed | own


def expand_job_ids(field_: str) -> list[str]:
    """`123_[0-2,5%2]` -> 123_0, 123_1, 123_2, 123_5; any other id as it is."""
    match = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", field_.strip())
    if match is None:
        return [field_.strip()]
    base, ranges = match.groups()
    out = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        out += [f"{base}_{i}" for i in range(int(first), int(last or first) + 1)]
    return out
