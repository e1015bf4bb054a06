"""Experiment trackers (run/tracking.py), offline, each read back with its own library's reader."""

from __future__ import annotations

import json
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


def test_a_failed_run_is_reported_too_and_a_tracker_that_cannot_write_costs_a_warning(tmp_path: Path, caplog):
    """No training here: the trackers' two ends, as `run_one` calls them for a run that failed."""
    from peftbench.core.results import RunResult
    from peftbench.run.tracking import Tracking

    spec = tracked("tensorboard")
    failed = RunResult(
        run_id=spec.run_id, status="oom", spec=spec, error="CUDA out of memory",
        started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:01:00+00:00",
    )  # fmt: skip
    Tracking(spec, tmp_path / "run").finish(failed)
    [folder] = (tmp_path / "run" / TENSORBOARD_DIR).iterdir()
    assert "_hparams_/session_start_info" in tensorboard_events(folder).PluginTagToContent("hparams")
    (tmp_path / "blocked").write_text("a file where the run folder should be")
    blocked = Tracking(spec, tmp_path / "blocked")
    blocked.finish(failed)  # the run's result is never lost to a tracker
    assert "tracking tensorboard: not written" in caplog.text
    assert Tracking(spec, tmp_path / "rank1", main_process=False).writers == {}
    assert not (tmp_path / "rank1").exists()


def tensorboard_events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return events


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory: pytest.TempPathFactory):
    """One real training run (MiniLM, 12 steps, validation at 6 and 12) reporting to all three
    trackers, offline: (its spec, its result, the sweep folder)."""
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    from peftbench.run.one import run_one

    sweep = tmp_path_factory.mktemp("tracked") / "demo"
    spec = tracked("tensorboard", "wandb", "mlflow", max_steps=12, eval_strategy="steps", eval_steps=6)
    with pytest.MonkeyPatch.context() as env:
        for name in ("WANDB_MODE", "WANDB_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
            env.delenv(name, raising=False)
        env.setenv("WANDB_SILENT", "true")
        result = run_one(spec, sweep / spec.run_id)
    assert result.status == "success", result.error
    return spec, result, sweep


@pytest.mark.slow
def test_a_tracked_run_writes_tensorboard_events_read_back_by_tensorboard(tracked_run):
    from tensorboard.plugins.hparams import plugin_data_pb2

    spec, result, sweep = tracked_run
    [folder] = (sweep / spec.run_id / TENSORBOARD_DIR).iterdir()
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


def wandb_records(path: Path) -> list:
    """The records of a W&B offline run's transaction log (`run-<id>.wandb`), decoded with wandb's own
    protobuf `Record`. The file is a LevelDB-style log: a 7-byte header (`:W&B`, magic, version),
    then 32 KiB blocks of chunks, each a 7-byte header (checksum, length, type: 1 full, 2 first,
    3 middle, 4 last) and its bytes. (wandb 0.31 reads it in its Go core; Python has no reader.)"""
    from wandb.proto.wandb_internal_pb2 import Record

    data, block, position, pending, records = path.read_bytes(), 32768, 7, b"", []
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length, kind = int.from_bytes(data[position + 4 : position + 6], "little"), data[position + 6]
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            records.append(Record.FromString(pending))
            pending = b""
    return records


def item_key(item) -> str:
    """A record item's name: `key`, or (as wandb 0.31 writes history and summary) `nested_key`."""
    return item.key or ".".join(item.nested_key)


def items(updates) -> dict:
    return {item_key(item): json.loads(item.value_json) for item in updates}


def read_wandb_run(log: Path) -> tuple[object, dict, list[dict], dict, list[str]]:
    """(the run record, its config, its history rows, its summary, every record's kind)."""
    records = wandb_records(log)
    kinds = [r.WhichOneof("record_type") for r in records]
    run = next(r.run for r, kind in zip(records, kinds, strict=True) if kind == "run")
    history = [items(r.history.item) for r in records if r.HasField("history")]
    summary: dict = {}
    for update in (r.summary.update for r in records if r.HasField("summary")):
        summary |= items(update)
    return run, items(run.config.update), history, summary, kinds


@pytest.mark.slow
def test_a_tracked_run_writes_a_wandb_offline_run_read_back_from_its_files(tracked_run):
    """Offline by default (compute nodes have no network): project = the sweep, group = the cell,
    name = the run, config = the spec, history = the steps, summary = the result."""
    from peftbench.run.tracking import cell_name

    spec, result, sweep = tracked_run
    [log] = (sweep / spec.run_id / "wandb").glob("offline-run-*/run-*.wandb")
    run, config, history, summary, kinds = read_wandb_run(log)
    assert (run.project, run.run_group, run.display_name) == (spec.sweep, cell_name(spec), run_name(spec))
    assert config["run_id"] == spec.run_id and config["training.max_steps"] == 12
    assert [h["_step"] for h in history if "eval/accuracy" in h][:2] == [6, 12], history
    assert any(h.get("_step") == 10 and "train/loss" in h for h in history)
    assert summary["test/accuracy"] == pytest.approx(result.test["accuracy"])
    assert summary["status"] == "success"
    assert "cost/wall_seconds" in summary and "exit" in kinds


@pytest.fixture
def offline_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A sweep folder with two runs' offline W&B runs (real ones, written by wandb), the second
    already uploaded: `wandb sync` left its `run-<id>.wandb.synced` marker (wandb/cli/beta_sync.py)."""
    wandb = pytest.importorskip("wandb")
    import shutil

    monkeypatch.setenv("WANDB_SILENT", "true")
    sweep = tmp_path / "runs" / "synth"
    (sweep / "aaaaaaaaaaaa").mkdir(parents=True)
    run = wandb.init(mode="offline", dir=str(sweep / "aaaaaaaaaaaa"), project="synth", reinit="create_new")
    run.log({"train/loss": 0.5}, step=1)
    run.finish()
    [first] = (sweep / "aaaaaaaaaaaa" / "wandb").glob("offline-run-*")
    second = sweep / "bbbbbbbbbbbb" / "wandb" / first.name
    shutil.copytree(first, second)
    [log] = second.glob("run-*.wandb")
    log.with_suffix(".wandb.synced").touch()
    return sweep


def test_sync_dry_run_names_what_is_not_uploaded_yet(offline_sweep: Path):
    from typer.testing import CliRunner

    from peftbench.cli import app

    said = CliRunner().invoke(app, ["sync", str(offline_sweep), "--dry-run"])
    assert said.exit_code == 0, said.output
    lines = said.stdout.strip().splitlines()
    assert lines[0] == "Would upload 1 offline W&B run(s) (1 uploaded before):"
    assert lines[1].split() == [
        "aaaaaaaaaaaa",
        str(next((offline_sweep / "aaaaaaaaaaaa" / "wandb").glob("offline-*"))),
    ]
    missing = CliRunner().invoke(app, ["sync", str(offline_sweep.parent / "nope"), "--dry-run"])
    assert (
        missing.exit_code == 1
        and missing.stderr.strip() == f"{offline_sweep.parent / 'nope'}: no such sweep folder"
    )


def test_sync_says_in_one_line_why_wandb_could_not_upload(offline_sweep: Path, monkeypatch, tmp_path: Path):
    """The real `wandb sync`, with no API key here (and no network): one line, nothing marked uploaded."""
    from typer.testing import CliRunner

    from peftbench.cli import app

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no saved login
    refused = CliRunner().invoke(app, ["sync", str(offline_sweep)])
    assert refused.exit_code == 1
    assert refused.stderr.strip().startswith("wandb sync exited 1: ") and "API key" in refused.stderr
    assert not list((offline_sweep / "aaaaaaaaaaaa").rglob("*.wandb.synced"))


@pytest.mark.slow
def test_a_tracked_run_writes_an_mlflow_run_read_back_by_mlflows_client(tracked_run):
    """In the sweep's file store (runs/<sweep>/mlruns): experiment = the sweep, the same names."""
    from mlflow import MlflowClient

    from peftbench.run.tracking import MLFLOW_STORE, cell_name

    spec, result, sweep = tracked_run
    client = MlflowClient((sweep / MLFLOW_STORE).as_uri())
    experiment = client.get_experiment_by_name(spec.sweep)
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == run_name(spec) and run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["peftbench.cell"] == cell_name(spec) and tags["peftbench.run_id"] == spec.run_id
    assert run.data.params["model"] == "minilm-l6" and run.data.params["training.max_steps"] == "12"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "eval/accuracy")]
    assert steps[:2] == [6, 12]
    assert run.data.metrics["test/accuracy"] == pytest.approx(result.test["accuracy"])
    assert "cost/wall_seconds" in run.data.metrics
