"""Every YAML under configs/ loads and validates, and starts with the command that runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.plan.loading import load_cluster, load_sweep
from peftbench.plan.profiles import PACKAGED

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SWEEPS = sorted((CONFIGS / "sweeps").glob("*.yaml"))
CLUSTERS = sorted(PACKAGED.glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_sweep_validates_and_expands(path: Path):
    assert load_sweep(path).runs


@pytest.mark.parametrize("path", CLUSTERS, ids=lambda p: p.name)
def test_cluster_profile_validates(path: Path):
    assert load_cluster(str(path)).name == path.stem


@pytest.mark.parametrize("path", SWEEPS + CLUSTERS, ids=lambda p: p.name)
def test_starts_with_the_command_that_runs_it(path: Path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# make ") or first.startswith("# peftbench ")


def test_the_demo_compares_four_methods_on_two_tasks():
    # Two single-sentence sentiment domains: the bundled pair tasks stay at chance in a demo's budget
    # (tests/test_demo_learns.py checks the demo learns; test_run and test_methods cover pairs).
    runs = load_sweep(CONFIGS / "sweeps" / "demo.yaml").runs
    assert {"full", "lora", "bitfit", "prompt_tuning"} <= {r.method for r in runs}
    assert {r.task.name for r in runs} == {"movie_sentiment", "tweet_sentiment"}
