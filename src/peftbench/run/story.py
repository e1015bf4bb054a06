"""A run's log.txt as a story: what was loaded, each logging step, evaluation, what was saved, the
result, one line each under `[peftbench]`.

Progress bars are for terminals: in a file (log.txt, the scheduler's log) every refresh of a bar
is a fragment ("Map:   0%|...") a reader scrolls past, so `quiet_progress_bars` turns those of
datasets, transformers and huggingface_hub off when the output is not a terminal; the stages they
marked are told by the lines here instead.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from transformers import TrainerCallback

from peftbench.core.results import RunResult

LOG = logging.getLogger("peftbench")
# Set before datasets/huggingface_hub are imported (a process's children too): their bars start off.
QUIET_ENV = ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS")


def start_the_log() -> None:
    """peftbench's own lines (INFO and up) to stderr, the run's log; progress bars off in a file."""
    if not LOG.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[peftbench] %(message)s"))
        LOG.addHandler(handler)
        LOG.setLevel(logging.INFO)
    quiet_progress_bars()


def quiet_progress_bars() -> bool:
    """Progress bars of datasets, transformers and huggingface_hub off unless stderr is a terminal.
    Returns whether they were turned off."""
    if sys.stderr is not None and sys.stderr.isatty():
        return False
    for name in QUIET_ENV:
        os.environ.setdefault(name, "1")
    import datasets
    import huggingface_hub.utils
    import transformers.utils.logging

    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    return True


# In an evaluation's line only the scores: its timing and token counts are the Trainer's bookkeeping.
NOT_SCORES = ("runtime", "per_second", "num_input_tokens_seen", "total_flos")


def _numbers(values: dict[str, Any], drop: str = "", leave_out: tuple[str, ...] = ("total_flos",)) -> str:
    """`name value` pairs, short: 4 significant digits, the prefix `drop` (eval_) left off."""
    shown = []
    for name, value in sorted(values.items()):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or name in {"epoch", "step"} or any(part in name for part in leave_out):
            continue
        shown.append(f"{name.removeprefix(drop)} {value:.4g}")
    return ", ".join(shown)


def tell_data(data: Any) -> None:
    sizes = ", ".join(f"{split} {len(getattr(data, split))}" for split in ("train", "validation", "test"))
    LOG.info("data: %s examples; %d training tokens per epoch", sizes, data.train_tokens)


def tell_model(name: str, source: str) -> None:
    LOG.info("model: loading %s from %s", name, source)


def tell_method(method: str, trainable: int, total: int) -> None:
    share = 100 * trainable / max(total, 1)
    LOG.info(
        "method %s: %s of %s parameters trainable (%.3g%%)", method, f"{trainable:,}", f"{total:,}", share
    )


def tell_result(result: RunResult) -> None:
    """The last line of the story: the status, the scores and what they cost."""
    if result.status != "success":
        LOG.info("result: %s (result.json holds the error)", result.status)
        return
    cost = result.cost
    LOG.info("result: success; validation %s", _numbers(result.validation))
    LOG.info("result: test %s", _numbers(result.test))
    parts = f"{cost.train_seconds:.1f} s training, {cost.eval_seconds:.1f} s evaluation"
    LOG.info(
        "cost: %.1f s wall (%s), peak host memory %.0f MiB",
        cost.wall_seconds,
        parts,
        cost.peak_rss_bytes / 2**20,
    )


class TrainingStory(TrainerCallback):
    """The Trainer's part of the story: its plan, each logging step, each evaluation, each checkpoint.
    It stands in for transformers' PrinterCallback, which prints the same numbers as raw dicts."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        start = f", resuming at step {state.global_step}" if state.global_step else ""
        LOG.info("training: %d steps, %g epochs, batch %d per device%s",
                 state.max_steps, args.num_train_epochs, args.per_device_train_batch_size, start)  # fmt: skip

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        logs = logs or {}
        where = f"step {state.global_step}/{state.max_steps}"
        if any(name.startswith("eval_") for name in logs):
            LOG.info("%s: validation %s", where, _numbers(logs, drop="eval_", leave_out=NOT_SCORES))
        elif "train_loss" in logs:
            LOG.info("training done at %s: %s", where, _numbers(logs))
        elif logs:
            LOG.info("%s: %s", where, _numbers(logs))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        folder = f"{args.output_dir}/checkpoint-{state.global_step}"
        LOG.info("step %d/%d: checkpoint saved in %s", state.global_step, state.max_steps, folder)


def tell_saved(what: str, where: Any) -> None:
    LOG.info("saved: %s in %s", what, where)
