"""Experiment trackers (run/tracking.py), offline, each read back with its own library's reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.core.errors import ConfigError
from peftbench.plan.loading import load_sweep
from peftbench.run.tracking import TENSORBOARD_DIR, hyperparameters, run_name, step_numbers
from tests.conftest import demo_run


def tracked(*trackers: str, **training):
    spec = demo_run("bitfit", **training)
    return spec.model_copy(update={"tracking": list(trackers)})


def test_tracking_is_not_part_of_the_run_id_and_comes_from_the_sweep(sweep_file, tiny_demo: Path):
    import yaml

    assert tracked("tensorboard").run_id == tracked().run_id  # a folder does not move for a tracker
    data = yaml.safe_load(tiny_demo.read_text()) | {"tracking": ["tensorboard"]}
    assert {tuple(run.tracking) for run in load_sweep(sweep_file(data)).runs} == {("tensorboard",)}
    with pytest.raises(ConfigError) as refused:
        load_sweep(sweep_file(data | {"tracking": ["neptune"]}))
    assert "tracking" in str(refused.value) and "tensorboard" in str(refused.value)


def test_names_hyperparameters_and_step_numbers_are_the_same_for_every_tracker():
    spec = tracked("tensorboard")
    assert (
        run_name(spec)
        == f"minilm-l6 · movie_sentiment · bitfit · lr={spec.training.learning_rate:g} · seed 0"
    )
    flat = hyperparameters(spec)
    assert (
        flat["model"] == "minilm-l6" and flat["run_id"] == spec.run_id and flat["training.batch_size"] == 16
    )
    assert all(isinstance(v, (str, int, float, bool)) for v in flat.values())
    logs = {"loss": 0.7, "learning_rate": 1e-3, "eval_accuracy": 0.5, "epoch": 1.0, "train_runtime": 3.0}
    assert step_numbers(logs) == {
        "train/loss": 0.7,
        "train/learning_rate": 1e-3,
        "eval/accuracy": 0.5,
        "train/train_runtime": 3.0,  # the summary at the end keeps its own names
    }


def tensorboard_events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return events


@pytest.mark.slow
def test_a_tracked_run_writes_tensorboard_events_read_back_by_tensorboard(tmp_path: Path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    from peftbench.run.one import run_one

    spec = tracked("tensorboard", max_steps=12, eval_strategy="steps", eval_steps=6)
    result = run_one(spec, tmp_path / spec.run_id)
    assert result.status == "success", result.error
    [folder] = (tmp_path / spec.run_id / TENSORBOARD_DIR).iterdir()
    assert folder.name == run_name(spec)  # what `tensorboard --logdir runs/<sweep>` lists
    events = tensorboard_events(folder)
    scalars = events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("eval/accuracy")][:2] == [6, 12]
    assert [e.step for e in events.Scalars("train/loss")] == [10]
    assert events.Scalars("test/accuracy")[-1].value == pytest.approx(result.test["accuracy"])
    assert {"validation/accuracy", "cost/wall_seconds", "cost/trainable_params"} <= set(scalars)
    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["model"].string_value == "minilm-l6" and hparams["run_id"].string_value == spec.run_id
    assert hparams["training.max_steps"].number_value == 12
