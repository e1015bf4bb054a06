"""A training run's progress file: how far it is, for `status --watch` and the local launcher.

The run writes it atomically every few steps (`run/progress.py`); readers in any room read it with
`read_progress` and get None for a run that has not written one (or wrote one being replaced).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from peftbench.core.files import write_json_atomic


@dataclass(frozen=True)
class RunProgress:
    """Step `step` of `max_steps`, `seconds` after training (re)started at step `first_step`."""

    step: int
    max_steps: int
    seconds: float = 0.0
    first_step: int = 0

    @property
    def steps_per_second(self) -> float | None:
        """Steps done in this process over its training time; None before there is any."""
        done = self.step - self.first_step
        return done / self.seconds if done > 0 and self.seconds > 0 else None

    @property
    def eta_seconds(self) -> float | None:
        """The steps left at the speed so far; None while there is no speed yet."""
        speed = self.steps_per_second
        return max(self.max_steps - self.step, 0) / speed if speed else None


def write_progress(path: Path, progress: RunProgress) -> None:
    """Atomic, not fsynced: rewritten every few steps, and a power cut loses a step or two of it."""
    write_json_atomic(path, asdict(progress), durable=False)


def read_progress(path: Path) -> RunProgress | None:
    """The run's progress, or None when it has none readable (not started, or an older format)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        return RunProgress(
            step=int(found["step"]),
            max_steps=int(found["max_steps"]),
            seconds=float(found.get("seconds", 0.0)),
            first_step=int(found.get("first_step", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
