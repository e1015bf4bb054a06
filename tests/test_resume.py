"""Resuming a run from its checkpoints (what a requeued Slurm task does): same metrics, never
a step past max_steps or the last epoch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.run.checkpoints import last_complete_checkpoint
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


def test_a_checkpoint_cut_short_by_the_kill_is_passed_over_for_the_one_before(tmp_path: Path):
    """Killed while saving checkpoint-4 (its trainer state half written; checkpoint-2, complete, is
    kept until then): the requeued run resumes from checkpoint-2 instead of failing on checkpoint-4."""
    settings = {"lr_scheduler": "constant", "keep_checkpoints": True, "checkpoint_steps": 2}
    early = run_one(demo_run("bitfit", max_steps=2, **settings), tmp_path / "early")
    assert early.status == "success", early.error
    interrupted = RunPaths(tmp_path / "interrupted")
    shutil.copytree(RunPaths(tmp_path / "early").checkpoints, interrupted.checkpoints)
    cut = interrupted.checkpoints / "checkpoint-4"
    shutil.copytree(interrupted.checkpoints / "checkpoint-2", cut)
    (cut / "trainer_state.json").write_text('{"global_step": 4, "log_hist')

    resumed = run_one(demo_run("bitfit", max_steps=4, **settings), interrupted.root)
    assert resumed.status == "success", resumed.error
    assert resumed.resumed_from_step == 2 and resumed.best_step == 4


def test_only_a_checkpoint_with_its_trainer_state_at_its_own_step_counts(tmp_path: Path):
    for step, state in [(2, '{"global_step": 2}'), (4, None), (6, '{"global_st'), (8, '{"global_step": 7}')]:
        (tmp_path / f"checkpoint-{step}").mkdir()
        if state is not None:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-9.tmp").mkdir()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert last_complete_checkpoint(tmp_path / "none") is None
