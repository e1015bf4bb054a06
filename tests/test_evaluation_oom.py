"""Evaluation never throws training away (run/evaluation_oom.py): out of memory while generating halves
the evaluation batch down to 1; where even 1 fails, the result says training finished and running the
run again (what `resubmit` does) evaluates the final checkpoint without training.

The out-of-memory is forced through the fault-injection hook `PEFTBENCH_INJECT_EVAL_OOM`: a real CUDA
out-of-memory cannot happen on this CPU-only machine. The hook raises torch's own
`torch.cuda.OutOfMemoryError` from inside the model's forward pass, on a real tiny training run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.predictions import read_predictions
from peftbench.core.results import RunResult
from peftbench.run.evaluation_oom import INJECT_EVAL_OOM, HalvingEvaluation, is_out_of_memory
from peftbench.run.one import run_one
from tests.test_generation import decoder_ref, run_spec
from tests.test_instruction import BELLE


def belle_run(tiny_decoder: Path):
    return run_spec(
        decoder_ref(tiny_decoder),
        BELLE,
        method="lora",
        max_steps=2,
        batch_size=2,
        eval_batch_size=4,
        max_length=64,
        max_new_tokens=4,
        eval_strategy="no",
    )


def test_out_of_memory_while_generating_halves_the_batch_until_it_fits(
    tiny_decoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(INJECT_EVAL_OOM, "1")  # batches of more than one sequence run out of memory
    result = run_one(belle_run(tiny_decoder), tmp_path)
    assert result.status == "success", result.error
    assert result.cost is not None
    assert (result.cost.eval_batch_size, result.cost.eval_oom_retries) == (1, 2)  # 4 -> 2 -> 1
    assert len(read_predictions(RunPaths(tmp_path).test_predictions)) == 8
    assert "rougeL" in result.test and "rougeL" in result.validation
    assert not result.training_finished


def test_evaluation_that_never_fits_keeps_the_training_and_a_rerun_only_evaluates(
    tiny_decoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    spec, paths = belle_run(tiny_decoder), RunPaths(tmp_path)
    monkeypatch.setenv(INJECT_EVAL_OOM, "0")  # even one sequence runs out of memory
    check_failed_after_training(run_one(spec, tmp_path), paths)
    monkeypatch.delenv(INJECT_EVAL_OOM)
    check_only_evaluated(run_one(spec, tmp_path), paths)  # what `peftbench resubmit` runs again


def check_failed_after_training(failed: RunResult, paths: RunPaths) -> None:
    """An `oom` result that says training finished, names its final checkpoint, and keeps it."""
    assert failed.status == "oom"
    assert failed.training_finished
    last_line = (failed.error or "").strip().splitlines()[-1]
    assert "EvaluationOutOfMemory: Training finished (step 2)" in last_line
    assert "after 2 halving(s)" in last_line
    assert f"`peftbench resubmit` evaluates {paths.checkpoints / 'checkpoint-2'}" in last_line
    assert json.loads(paths.result.read_text())["training_finished"] is True
    assert (paths.checkpoints / "checkpoint-2" / "trainer_state.json").is_file()


def check_only_evaluated(again: RunResult, paths: RunPaths) -> None:
    """Resumed at the final step, nothing trained, evaluated at the full batch, saved."""
    assert again.status == "success", again.error
    assert (again.resumed_from_step, again.best_step) == (2, 2)
    assert again.cost is not None
    assert again.cost.train_seconds == 0.0
    assert (again.cost.eval_batch_size, again.cost.eval_oom_retries) == (4, 0)
    assert not again.training_finished
    assert paths.artifact.is_dir()


class _Args:
    per_device_eval_batch_size = 3
    output_dir = "/nonexistent"


class _State:
    global_step = 7


class _Trainer:
    """Only what HalvingEvaluation reads: the evaluation batch, the step, the checkpoint folder."""

    args, state, model = _Args(), _State(), None


def test_errors_other_than_out_of_memory_are_not_retried():
    halving = HalvingEvaluation(_Trainer())
    calls: list[int] = []

    def broken(split: str) -> None:
        calls.append(halving.batch_size)
        raise ValueError("a bug, not memory")

    with pytest.raises(ValueError):
        halving.run(broken, "test")
    assert calls == [3] and halving.retries == 0
    assert is_out_of_memory(RuntimeError("NCCL error: out of memory")) and is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_no_final_checkpoint_means_the_message_says_a_rerun_trains_again():
    halving = HalvingEvaluation(_Trainer())

    def always_oom(split: str) -> None:
        raise MemoryError

    with pytest.raises(MemoryError, match="no checkpoint holds the final step") as raised:
        halving.run(always_oom, "validation")
    assert "Training finished (step 7)" in str(raised.value) and halving.retries == 1  # 3 -> 1
