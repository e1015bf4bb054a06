"""The run's progress file, kept current by a Trainer callback (`core/progress.py` reads it).

The first write comes at the first multiple of EVERY_STEPS: tests that wait for the file to kill a
training process rely on at least that many steps being done.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from peftbench.core.progress import RunProgress, write_progress

EVERY_STEPS = 5  # a write every few steps: cheap beside a step, fresh enough for a refresh


class ProgressFile(TrainerCallback):
    """Keeps `progress.json` current: step of max_steps, and the seconds since training (re)started
    at `first_step`, so that a reader can tell the speed and the time left of a resumed run too."""

    def __init__(self, path: Path):
        self.path = path
        self.started = time.perf_counter()
        self.first_step = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started, self.first_step = time.perf_counter(), int(state.global_step)  # written from step 5 on

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % EVERY_STEPS == 0 or state.global_step == state.max_steps:
            self._write(state)

    def _write(self, state: Any) -> None:
        seconds = time.perf_counter() - self.started
        write_progress(self.path, RunProgress(state.global_step, state.max_steps, seconds, self.first_step))
