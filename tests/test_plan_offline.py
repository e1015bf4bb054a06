"""Planning against a GPU site offline and at once: shapes from the HF cache or the shipped table,
never the hub; an unknown model is named with `peftbench fetch`; each count made once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import huggingface_hub.constants
import pytest
import yaml

import peftbench.plan.sweep_plan as sweep_plan
from peftbench.core.errors import ConfigError
from peftbench.core.spec import ModelRef
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.shapes import planning_config, shipped_shapes
from peftbench.plan.memory import count_from_config
from peftbench.plan.profiles import PACKAGED
from peftbench.plan.sweep_plan import load_plan, memory_rows
from tests.conftest import REPO

STUDY_SWEEPS = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))


def hub_models() -> set[str]:
    """Every hub model of the catalog and of the shipped study sweeps."""
    sources = {m.source for m in MODEL_CATALOG.values()}
    for path in STUDY_SWEEPS:
        sources |= {m["source"] for m in yaml.safe_load(path.read_text())["models"] if isinstance(m, dict)}
    return {s for s in sources if not s.startswith("package:")}


def test_every_hub_model_of_the_catalog_and_the_study_sweeps_has_a_shipped_shape():
    assert hub_models() <= set(shipped_shapes())


@pytest.mark.parametrize(
    ("source", "total"),
    [  # the counts the Hub reports for these checkpoints (LLaMA-7B/13B, Llama-3.1-8B)
        ("huggyllama/llama-7b", 6_738_415_616),
        ("huggyllama/llama-13b", 13_015_864_320),
        ("NYTK/PULI-LlumiX-Llama-3.1", 8_030_261_248),
    ],
)
def test_shipped_shapes_give_the_published_sizes(source: str, total: int, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # empty: the table answers
    config, origin = planning_config(ModelRef(name="m", source=source, family="llama"))
    assert origin == "table"
    assert count_from_config(config).total == total


def test_the_hf_cache_wins_over_the_table(tmp_path: Path, monkeypatch):
    """A cache laid out as huggingface_hub lays it out (models--org--name/refs, snapshots)."""
    from transformers import LlamaConfig

    repo = tmp_path / "models--huggyllama--llama-7b"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
    ).save_pretrained(repo / "snapshots" / "abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    config, origin = planning_config(ModelRef(name="m", source="huggyllama/llama-7b", family="llama"))
    assert (origin, config.hidden_size, config.num_hidden_layers) == ("cache", 64, 2)


def test_a_model_known_to_neither_is_unknown_and_a_run_source_waits_for_its_parent():
    assert planning_config(ModelRef(name="m", source="nobody/mystery", family="bert")) == (None, "unknown")
    assert planning_config(ModelRef(name="m", source="run:0123456789ab", family="bert")) == (None, "run")


GPU_SWEEP = {
    "name": "site",
    "models": ["xlm-roberta-base", {"name": "mystery", "source": "nobody/mystery-model", "family": "bert"}],
    "tasks": ["movie_sentiment"],
    "methods": {"lora": {"r": 8, "resources": {"gpus": 1}}},
}


class CountingHub:
    """A TCP port standing in for the hub (no network here): counts every connection it gets."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def test_a_dry_run_against_a_gpu_site_never_asks_the_hub_and_shows_the_plan(tmp_path: Path, sweep_file):
    hub = CountingHub()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "XDG_CONFIG_HOME": str(tmp_path / "x")}
    sweep = sweep_file(GPU_SWEEP)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "peftbench", "sweep", str(sweep), "--cluster", "vega", "--dry-run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    assert out.returncode == 0, out.stderr
    assert hub.connections == 0 and "Retrying" not in out.stderr
    assert "site: 2 runs on 'vega'" in out.stdout
    vega = PACKAGED / "vega.yaml"
    assert f"A submission would refuse — {vega}: slurm.account: This site fact is still FILL_ME" in out.stderr
    unknown = f"{sweep}: models[1]: The size of 'mystery' (nobody/mystery-model) is unknown"
    assert f"A submission would refuse — {unknown}" in out.stderr
    assert "`peftbench fetch " in out.stderr
    assert seconds < 120, seconds  # imports only: a retry loop would wait on every model


def test_submitting_refuses_the_unknown_model_and_the_unset_facts_together(tmp_path: Path, sweep_file):
    with pytest.raises(ConfigError) as info:
        load_plan(sweep_file(GPU_SWEEP), "vega", tmp_path / "runs")
    keys = {(Path(p.file).name, p.key) for p in info.value.problems}
    assert ("sweep.yaml", "models[1]") in keys and ("vega.yaml", "slurm.account") in keys
    plan = load_plan(sweep_file(GPU_SWEEP), "vega", tmp_path / "runs", submitting=False)
    assert len(plan.runs) == 2 and {Path(p.file).name for p in plan.warnings} == {"vega.yaml", "sweep.yaml"}


def test_a_run_too_big_for_the_sites_gpus_is_shown_in_a_preview_and_refused_on_submission(
    tmp_path, sweep_file
):
    big = {"name": "llama-7b", "source": "huggyllama/llama-7b", "family": "llama"}
    data = {**GPU_SWEEP, "models": [big], "methods": {"full": {"resources": {"gpus": 1}}}}
    plan = load_plan(sweep_file(data), "vega", tmp_path / "runs", submitting=False)
    [warning] = [w for w in plan.warnings if w.key == "methods.full"]
    assert (
        "llama-7b on movie_sentiment needs about" in warning.message
        and "Smallest that fits" in warning.message
    )
    with pytest.raises(ConfigError, match=r"methods\.full: llama-7b on movie_sentiment needs about"):
        load_plan(sweep_file(data), "vega", tmp_path / "runs")


def test_each_model_and_method_is_counted_once_however_many_runs(sweep_file, monkeypatch):
    calls = {"count": 0, "trainable": 0}

    def spy(name: str, real):
        def counted(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return counted

    monkeypatch.setattr(sweep_plan, "count_from_config", spy("count", sweep_plan.count_from_config))
    monkeypatch.setattr(
        sweep_plan, "trainable_from_config", spy("trainable", sweep_plan.trainable_from_config)
    )
    grid = {"r": [8, 16], "learning_rate": [1e-4 * i for i in range(1, 26)], "resources": {"gpus": 1}}
    data = {**GPU_SWEEP, "models": ["xlm-roberta-base"], "methods": {"lora": grid}, "seeds": [0, 1, 2, 3]}
    runs = sweep_plan.load_sweep(sweep_file(data)).runs
    profile = sweep_plan.load_cluster("vega")
    rows = memory_rows(runs, profile)
    assert len(rows) == 200 and all(row.fit is not None and row.fit.fits for row in rows)
    assert calls == {"count": 1, "trainable": 2}  # one model; two ranks


def test_the_plan_keeps_its_estimates_and_the_memory_table_makes_only_the_missing_ones(
    tmp_path: Path, sweep_file, monkeypatch
):
    """The site checks estimate each GPU run once; `peftbench plan`'s table reuses those rows and
    estimates only what the checks left out (here: the CPU run)."""
    data = {
        **GPU_SWEEP,
        "models": ["xlm-roberta-base"],
        "methods": {"lora": {"resources": {"gpus": 1}}, "bitfit": {}},
    }
    plan = load_plan(sweep_file(data), "vega", tmp_path / "runs", submitting=False)
    gpu_runs = {r.run_id for r in plan.runs if r.resources.gpus}
    assert set(plan.memory) == gpu_runs and len(gpu_runs) < len(plan.runs)
    asked: list[list[str]] = []
    real = sweep_plan.memory_rows

    def spy(runs, profile):
        asked.append([r.run_id for r in runs])
        return real(runs, profile)

    monkeypatch.setattr(sweep_plan, "memory_rows", spy)
    table = plan.memory_table()
    assert [row.run.run_id for row in table] == [r.run_id for r in plan.runs]
    assert asked == [[r.run_id for r in plan.runs if not r.resources.gpus]]
    assert all(table[i] is plan.memory[r.run_id] for i, r in enumerate(plan.runs) if r.run_id in gpu_runs)
    assert not any(row.refused for row in table)
