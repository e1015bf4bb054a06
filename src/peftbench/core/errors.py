"""peftbench's errors, under one base: bad input (every problem found at once, each with file, key,
value and what is allowed), unreadable files, a run that cannot start, a service that does not answer.

Each names what it is about, so the CLI prints the message and never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


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
