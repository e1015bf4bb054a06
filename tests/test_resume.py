"""Resuming a run from its checkpoints (what a requeued Slurm task does): same metrics, never
a step past max_steps or the last epoch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.run.one import run_one
from tests.conftest import demo_run


@pytest.mark.parametrize(
    "budget", [{"max_steps": 4, "checkpoint_steps": 2}, {"epochs": 1, "max_train_samples": 64}]
)
def test_interrupted_after_the_final_checkpoint_resume_gives_the_same_metrics(tmp_path: Path, budget: dict):
    """The signal came after the last checkpoint (e.g. during evaluation): the requeued run finds a
    checkpoint at the final step and must evaluate that model, not train one step more."""
    spec = demo_run("bitfit", lr_scheduler="constant", keep_checkpoints=True, **budget)
    reference = run_one(spec, tmp_path / "reference")
    assert reference.status == "success", reference.error
    interrupted = RunPaths(tmp_path / "interrupted")
    shutil.copytree(tmp_path / "reference", interrupted.root)
    interrupted.result.unlink()  # the run was killed before writing its result
    shutil.rmtree(interrupted.artifact)

    resumed = run_one(spec, interrupted.root)
    assert resumed.status == "success", resumed.error
    final = reference.best_step
    assert resumed.resumed_from_step == final and resumed.best_step == final
    assert resumed.epochs_done == reference.epochs_done
    assert resumed.test == pytest.approx(reference.test, abs=1e-6)
    assert resumed.validation == pytest.approx(reference.validation, abs=1e-6)
