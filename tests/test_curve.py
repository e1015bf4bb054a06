"""run.curve: the validation curve a run writes, and stopping once validation reaches a target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from peftbench.core.paths import RunPaths
from peftbench.core.spec import TrainingSettings
from peftbench.run.one import run_one
from tests.conftest import demo_run


def test_a_target_needs_evaluations_during_training():
    with pytest.raises(ValidationError, match="target_validation needs an eval_strategy other than 'no'"):
        TrainingSettings(target_validation=0.8, eval_strategy="no")


def test_a_run_stops_at_its_target_and_keeps_its_validation_curve(tmp_path: Path):
    # Accuracy >= 0 holds at the first evaluation: the run stops at step 1 of its cap of 4.
    spec = demo_run("bitfit", eval_strategy="steps", eval_steps=1, max_steps=4, target_validation=0.0)
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    curve = json.loads(RunPaths(tmp_path).validation_curve.read_text())
    assert curve["metric"] == "accuracy" and curve["target"] == 0.0
    [point] = curve["points"]
    assert point["step"] == result.best_step == 1 and point["reached_target"]
    assert point["samples"] == spec.training.batch_size
    assert 0 < point["train_seconds"] < point["seconds"]  # the evaluation is timed apart
    assert point["validation"]["accuracy"] == result.validation["accuracy"]  # the final model's score
    assert "majority_rate" in result.test  # chance, recorded for the tables
