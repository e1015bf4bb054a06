"""What a sweep needs from the hub, whether the HF cache has it, and `peftbench fetch` without network.

Nothing here reaches a hub: the cache layouts are built by hand, downloads are replaced, and the
CLI tests run with HF_HUB_OFFLINE=1 or a hub endpoint on a closed local port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import peftbench.tools.fetch as hub
from peftbench.plan.loading import load_sweep
from peftbench.tools.fetch import (
    FetchError,
    HubItem,
    dataset_missing,
    hub_needs,
    ignored_files,
    model_missing,
)
from tests.conftest import DEMO, REPO, write_yaml

BERT = "google-bert/bert-base-multilingual-cased"
HUB_SWEEP = {
    "name": "hub",
    "models": ["bert-base-multilingual", "minilm-l6"],
    "tasks": ["sst2", "movie_sentiment", "cola"],
    "methods": {"lora": {"r": [4, 8]}},
}
OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_runs(tmp_path: Path, **changes) -> list:
    return load_sweep(write_yaml(tmp_path / "hub.yaml", {**HUB_SWEEP, **changes})).runs


def peftbench(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in OFFLINE} | {"COLUMNS": "200", **env}
    command = [sys.executable, "-m", "peftbench", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=environment, timeout=120)


def cached_model(hub_cache: Path, repo_id: str, files: dict[str, str]) -> Path:
    """A model in huggingface_hub's cache layout: refs/main -> snapshots/<commit>/<files>."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    for name, content in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_text(content)
    return snapshot


def prepared_dataset(datasets_cache: Path, repo_id: str, config: str) -> None:
    folder = datasets_cache / repo_id.replace("/", "___") / config / "0.0.0" / "abc123"
    folder.mkdir(parents=True)
    (folder / "dataset_info.json").write_text(json.dumps({"config_name": config}))


def test_needs_are_hub_items_once_each_bundled_and_package_ones_are_not(tmp_path: Path):
    items = hub_needs(hub_runs(tmp_path))
    assert [str(i) for i in items] == [
        f"model {BERT} — used by model bert-base-multilingual",
        "dataset nyu-mll/glue (config sst2) — used by task sst2",
        "dataset nyu-mll/glue (config cola) — used by task cola",
    ]


def test_local_model_folders_and_dataset_folders_are_not_needed(tmp_path: Path):
    (tmp_path / "bert").mkdir()
    local = {"name": "mine", "source": str(tmp_path / "bert"), "family": "bert"}
    assert hub_needs(hub_runs(tmp_path, models=[local], tasks=["movie_sentiment"])) == []


def test_a_model_is_cached_when_config_tokenizer_and_every_weight_are(tmp_path: Path):
    snapshot = cached_model(tmp_path, BERT, {"config.json": "{}", "vocab.txt": "", "model.safetensors": ""})
    assert model_missing(BERT, str(tmp_path)) is None
    (snapshot / "model.safetensors").unlink()
    assert model_missing(BERT, str(tmp_path)).startswith("no weights")
    assert model_missing("someone/else", str(tmp_path)) == "not in the cache"


def test_a_sharded_model_misses_its_absent_shards(tmp_path: Path):
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    files = {
        "config.json": "{}",
        "tokenizer.json": "{}",
        "model.safetensors.index.json": json.dumps(index),
        "model-00001-of-00002.safetensors": "",
    }
    snapshot = cached_model(tmp_path, BERT, files)
    assert model_missing(BERT, str(tmp_path)) == (
        f"weight shards missing in {snapshot}: model-00002-of-00002.safetensors"
    )


def test_a_model_without_tokenizer_files_is_missing(tmp_path: Path):
    cached_model(tmp_path, BERT, {"config.json": "{}", "model.safetensors": ""})
    assert model_missing(BERT, str(tmp_path)).startswith("no tokenizer file")


def test_a_dataset_is_cached_when_its_configuration_is_prepared(tmp_path: Path):
    prepared_dataset(tmp_path, "nyu-mll/glue", "sst2")
    assert dataset_missing("nyu-mll/glue", "sst2", str(tmp_path)) is None
    assert dataset_missing("nyu-mll/glue", "cola", str(tmp_path)).startswith("not prepared")
    assert dataset_missing("nyu-mll/other", None, str(tmp_path)) == "not prepared in the datasets cache"


def test_only_pytorch_weights_are_fetched():
    assert "*.bin" in ignored_files(["model.safetensors", "pytorch_model.bin", "tf_model.h5"])
    assert "*.bin" not in ignored_files(["pytorch_model.bin"])
    assert {"*.h5", "*.msgpack", "*.onnx"} <= set(ignored_files([]))


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch):
    """No offline variables, a reachable hub, and a cache that is empty until `download` fills it."""
    for name in OFFLINE:
        monkeypatch.delenv(name, raising=False)
    cached: set[HubItem] = set()
    monkeypatch.setattr(hub, "hub_unreachable", lambda: None)
    monkeypatch.setattr(
        hub, "missing_from_cache", lambda items: [hub.Missing(i, "absent") for i in items if i not in cached]
    )
    return cached


def test_fetch_downloads_what_is_missing_and_names_what_failed(tmp_path, online, monkeypatch):
    items = hub_needs(hub_runs(tmp_path))

    def download(item: HubItem) -> None:
        if item.config == "cola":
            raise ConnectionError("403 Forbidden\nmore detail")
        online.add(item)

    monkeypatch.setattr(hub, "download", download)
    with pytest.raises(FetchError) as caught:
        hub.fetch(items, report=lambda line: None)
    [failed] = caught.value.missing
    assert (failed.item, failed.reason) == (items[2], "download failed: ConnectionError: 403 Forbidden")
    assert online == set(items[:2])
    monkeypatch.setattr(hub, "download", online.add)
    assert hub.fetch(items, report=lambda line: None) == [items[2]]
    assert hub.fetch(items, report=lambda line: None) == []


def test_cli_offline_with_an_empty_cache_lists_every_missing_item(tmp_path: Path):
    sweep = write_yaml(tmp_path / "hub.yaml", HUB_SWEEP)
    out = peftbench("fetch", str(sweep), HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "3 item(s) the sweep needs are not in the HF cache" in out.stderr
    assert f"model {BERT}" in out.stderr
    assert "dataset nyu-mll/glue (config sst2)" in out.stderr and "(config cola)" in out.stderr
    assert "minilm" not in out.stderr and "movie_sentiment" not in out.stderr
    assert f"HF_HUB_OFFLINE=0 peftbench fetch {sweep}" in out.stderr  # works as printed
    assert not list((tmp_path / "hf").rglob("*.json"))


def test_cli_without_network_fails_at_once_naming_what_is_missing(tmp_path: Path):
    sweep = write_yaml(tmp_path / "hub.yaml", HUB_SWEEP)
    out = peftbench("fetch", str(sweep), HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT="http://127.0.0.1:9")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "the hub at http://127.0.0.1:9 cannot be reached" in out.stderr
    assert f"model {BERT}" in out.stderr and "(config sst2)" in out.stderr


def test_cli_a_sweep_of_bundled_data_and_package_models_needs_nothing():
    out = peftbench("fetch", str(DEMO), "--check", HF_HUB_OFFLINE="1")
    assert out.returncode == 0, out.stderr
    assert "0 hub item(s) needed" in out.stdout
