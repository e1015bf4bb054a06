"""The checkpoint a requeued run resumes from: the last one the Trainer finished writing.

The Trainer writes `checkpoint-N/` in place (weights, optimizer, scheduler, RNG state, then
`trainer_state.json` last). A task killed or preempted while saving leaves a `checkpoint-N/` without
its state, or with half of it; transformers' `get_last_checkpoint` takes the highest N regardless,
and resuming from it fails ("Can't find a valid checkpoint"), losing the run. Here such a folder is
passed over (and named in the log) for the one before it, which the Trainer keeps until the next is
complete. When the run reaches step N again, the Trainer writes that folder over.

Each checkpoint, once written, gets the modes the umask gives (`ShareCheckpoints`): safetensors
makes its weights 0600, and a run killed before its end would leave them so.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from peftbench.core.files import follow_umask

TRAINER_STATE = "trainer_state.json"  # transformers.trainer.TRAINER_STATE_NAME, written last
_STEP = re.compile(r"^checkpoint-(\d+)$")


def is_complete(checkpoint: Path, step: int) -> bool:
    """Whether `checkpoint` holds a readable trainer state at its own step."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("global_step") == step


def last_complete_checkpoint(folder: Path) -> str | None:
    """The highest-step complete `checkpoint-N` in `folder`, or None (start from scratch)."""
    if not folder.is_dir():
        return None
    steps = sorted(
        (
            (int(m.group(1)), path)
            for path in folder.iterdir()
            if (m := _STEP.match(path.name)) and path.is_dir()
        ),
        reverse=True,
    )
    for step, path in steps:
        if is_complete(path, step):
            return str(path)
        logging.getLogger("peftbench").warning(
            "%s: incomplete (killed while saving?): resuming from an earlier checkpoint", path
        )
    return None


class ShareCheckpoints(TrainerCallback):
    """After the Trainer saves a checkpoint, its files get the modes the umask gives (core.files)."""

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            follow_umask(Path(args.output_dir) / f"checkpoint-{state.global_step}")


def unfinished_checkpoints(folder: Path) -> list[Path]:
    """The `checkpoint-N` folders in `folder` the Trainer had not finished writing (a run that failed
    while saving one, e.g. on a full disk): no readable trainer state at their own step."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if (m := _STEP.match(path.name)) and path.is_dir() and not is_complete(path, int(m.group(1)))
    )
