"""Evaluation never throws training away: out of memory while evaluating or generating halves the batch.

A run meets its evaluation only at its very end, after hours of training, and generation's key-value
cache (plan/generation_memory.py) can need more than training did. `HalvingEvaluation.run` calls one
evaluation (a split's `TaskType.evaluate`, which predicts or generates at the Trainer's
`per_device_eval_batch_size`); on out-of-memory it frees the allocator's cache, halves that batch
and calls it again, down to a batch of 1. The run's result records the batch it finished with and
how many times it halved (`Cost.eval_batch_size`, `Cost.eval_oom_retries`).

Where a batch of 1 still does not fit, `EvaluationOutOfMemory` says that training finished and
which checkpoint holds its final model: the run's result is `oom` with `training_finished`, its
checkpoints are kept (run/one.py removes them only after saving the artifact), and `resubmit` runs
it again, which resumes at that checkpoint's final step, trains nothing (one.py's
`StopWhenResumedAtTheEnd`) and evaluates, as after a timeout.

In a multi-process run every process halves on its own out-of-memory; the processes of a sharded
engine gather weights together, so one that fails while the others go on would leave them waiting:
there the halving helps only where every process runs out alike (the same batch shapes), and
otherwise the run fails as before, its training kept for `resubmit`.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from peftbench.run.checkpoints import last_complete_checkpoint

T = TypeVar("T")

INJECT_EVAL_OOM = "PEFTBENCH_INJECT_EVAL_OOM"
"""Fault injection for tests, never set in a real run: an integer N makes every forward pass of the
final evaluation that holds more than N sequences raise CUDA's out-of-memory error (0: every one).
A real CUDA out-of-memory cannot happen on a CPU-only machine; the error raised is torch's own
`torch.cuda.OutOfMemoryError`, from inside the model's forward, where a GPU would raise it."""


def is_out_of_memory(err: BaseException) -> bool:
    """Host or GPU out-of-memory, or one a library that wraps it reports (NCCL, cuBLAS): only the
    message says so there."""
    import torch

    if isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    return "out of memory" in str(err).lower()


class EvaluationOutOfMemory(MemoryError):
    """Evaluation ran out of memory at a batch of 1, after training finished; the message names the
    checkpoint that `resubmit` evaluates instead of training again."""


class HalvingEvaluation:
    """Evaluations of one trained model, each retried with half the batch after out-of-memory."""

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.retries = 0

    @property
    def batch_size(self) -> int:
        return int(self.trainer.args.per_device_eval_batch_size)

    def run(self, evaluate: Callable[[str], T], split: str) -> T:
        """`evaluate(split)` at the current batch; halved after each out-of-memory, down to 1."""
        with _injected_oom(self.trainer.model):
            while True:
                try:
                    return evaluate(split)
                except Exception as err:
                    if not is_out_of_memory(err):
                        raise
                    if self.batch_size == 1:
                        raise EvaluationOutOfMemory(self._gave_up(split)) from err
                    self._halve(split)

    def _halve(self, split: str) -> None:
        smaller = self.batch_size // 2
        logging.getLogger("peftbench").warning(
            "out of memory evaluating %s at batch %d: retrying with %d", split, self.batch_size, smaller
        )
        self.trainer.args.per_device_eval_batch_size = smaller
        self.retries += 1
        free_cached_memory()

    def _gave_up(self, split: str) -> str:
        state, folder = self.trainer.state, Path(self.trainer.args.output_dir)
        checkpoint = last_complete_checkpoint(folder)
        step = int(state.global_step)
        kept = checkpoint is not None and Path(checkpoint).name == f"checkpoint-{step}"
        again = (
            f"`peftbench resubmit` evaluates {checkpoint} instead of training again"
            if kept
            else "no checkpoint holds the final step, so `peftbench resubmit` trains it again"
        )
        return (
            f"Training finished (step {step}); evaluating {split} ran out of memory even at a batch "
            f"of 1, after {self.retries} halving(s): {again}. Lower eval_batch_size, max_length or "
            "max_new_tokens, or give the run a GPU with more memory (`peftbench plan` shows the "
            "evaluation's estimate)."
        )


def free_cached_memory() -> None:
    """What the failed batch left: Python's garbage, then the CUDA allocator's cached blocks."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def _injected_oom(model: Any) -> Iterator[None]:
    """While set (INJECT_EVAL_OOM), a hook on the input embedding raises out-of-memory for batches
    of more than the given number of sequences; otherwise nothing."""
    limit = os.environ.get(INJECT_EVAL_OOM)
    if limit is None:
        yield
        return
    import torch

    def hook(module: Any, args: tuple[Any, ...]) -> None:
        sequences = args[0].shape[0] if args and hasattr(args[0], "shape") else 0
        if sequences > int(limit):
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory (injected by {INJECT_EVAL_OOM}={limit}: {sequences} sequences)"
            )

    handle = model.get_input_embeddings().register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()
