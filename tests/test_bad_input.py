"""Bad input a lab hits next, refused before anything runs with one line naming the file, the key, the
value and what is allowed: module names the model lacks, training that cannot fit its time limit,
a report of nothing, a run-one of a broken spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from peftbench.core.errors import ConfigError
from peftbench.plan.profiles import PACKAGED
from peftbench.plan.sweep_plan import load_plan
from peftbench.plan.training_time import MIN_SECONDS_PER_STEP
from tests.conftest import REPO

LOCAL = str(PACKAGED / "local.yaml")
DEV = str(PACKAGED / "dev.yaml")  # the localhost Slurm: 60 min, requeued 3 times after a timeout

BASE: dict[str, Any] = {
    "name": "t",
    "models": ["minilm-l6"],
    "tasks": ["movie_sentiment"],
    "methods": {"lora": {"target_modules": ["query", "value"]}},
}


def plan_problems(sweep_file, data: dict[str, Any], cluster: str, tmp: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_plan(sweep_file(data), cluster, runs_dir=tmp, submitting=False)
    return [str(p) for p in info.value.problems]


def test_a_target_module_the_model_lacks_is_refused_with_its_layers_and_a_near_match(sweep_file, tmp_path):
    data = {**BASE, "methods": {"lora": {"target_modules": ["qeury", "nonexistent_proj", "value"]}}}
    found = plan_problems(sweep_file, data, LOCAL, tmp_path)
    assert len(found) == 2, found
    typo, unknown = found
    key = "methods.lora.target_modules"
    assert typo.startswith(f"{tmp_path / 'sweep.yaml'}: {key}: No module of 'minilm-l6'")
    assert "named 'qeury'" in typo and "Did you mean 'query'?" in typo
    assert "Allowed: LayerNorm, classifier, dense, key, position_embeddings, query" in unknown
    assert "named 'nonexistent_proj'" in unknown and "Did you mean" not in unknown


def test_module_names_that_exist_presets_and_dotted_endings_pass(sweep_file, tmp_path):
    lists = [["query", "key", "value", "dense"], ["attention.self.query"], "all-linear", "attention"]
    data = {**BASE, "methods": {"lora": {"target_modules": lists}}}
    plan = load_plan(sweep_file(data), LOCAL, runs_dir=tmp_path, submitting=False)
    assert len(plan.runs) == 4 and plan.notes == []


def test_every_parameter_listing_modules_is_checked(sweep_file, tmp_path):
    ia3 = {"target_modules": ["key", "value", "outptu.dense"], "feedforward_modules": ["outptu.dense"]}
    adalora = {"method": "adalora", "target_modules": ["querry"]}
    data = {**BASE, "methods": {"ia3": ia3, "ada": adalora}}
    found = plan_problems(sweep_file, data, LOCAL, tmp_path)
    assert len(found) == 3, found
    for key in ("target_modules", "feedforward_modules"):
        assert any(f"methods.ia3.{key}: " in p and "named 'outptu.dense'" in p for p in found), found
    assert any("methods.ada.target_modules: " in p and "Did you mean 'query'?" in p for p in found), found


def test_a_child_run_is_checked_against_its_parents_model(sweep_file, tmp_path):
    methods = {
        "full": {"tasks": ["movie_sentiment"]},
        "lora_after": {
            "method": "lora",
            "tasks": ["tweet_sentiment"],
            "parent": {"method": "full", "task": "movie_sentiment"},
            "target_modules": ["qurey"],
        },
    }
    data = {**BASE, "tasks": ["movie_sentiment", "tweet_sentiment"], "methods": methods}
    [problem] = plan_problems(sweep_file, data, LOCAL, tmp_path)
    assert "methods.lora_after.target_modules: No module of 'minilm-l6'" in problem
    assert "Did you mean 'query'?" in problem


def test_a_model_whose_config_is_not_here_is_noted_not_refused(sweep_file, tmp_path):
    model = {"name": "elsewhere", "source": "peftbench-tests/no-such-model", "family": "bert"}
    data = {**BASE, "models": [model], "methods": {"lora": {"target_modules": ["anything"]}}}
    plan = load_plan(sweep_file(data), LOCAL, runs_dir=tmp_path, submitting=False)
    [note] = [str(n) for n in plan.notes]
    assert "methods.lora: The module names this block lists could not be checked against 'elsewhere'" in note
    assert "HF cache" in note and "peftbench fetch" in note


@pytest.mark.parametrize(
    ("training", "block", "key", "value"),
    [
        ({"epochs": 1e9}, {}, "training.epochs", "1e+09 epochs"),
        ({}, {"epochs": [3, 1e9]}, "methods.lora.epochs", "1e+09 epochs"),
        ({"max_steps": 10**9}, {}, "training.max_steps", "1,000,000,000 optimizer steps"),
    ],
)
def test_training_that_cannot_fit_the_time_limit_names_the_key(
    sweep_file, tmp_path, training, block, key, value
):
    data = {**BASE, "training": training, "methods": {"lora": {**BASE["methods"]["lora"], **block}}}
    [local] = plan_problems(sweep_file, data, LOCAL, tmp_path)
    fit = int(60 * 60 / MIN_SECONDS_PER_STEP)
    assert f": {key}: {value} " in local and f"room for at most {fit:,} steps." in local
    assert "60 min (resources.time_min; the local launcher stops no run)" in local
    [slurm] = [p for p in plan_problems(sweep_file, data, DEV, tmp_path) if f": {key}: " in p]
    assert "60 min (resources.time_min) on each of 4 tries on 'dev'" in slurm
    assert f"room for at most {4 * fit:,} steps" in slurm


def test_long_but_possible_training_passes(sweep_file, tmp_path):
    data = {**BASE, "training": {"epochs": 1000}, "resources": {"time_min": 1}}
    assert load_plan(sweep_file(data), LOCAL, runs_dir=tmp_path, submitting=False).runs
    data = {**BASE, "training": {"max_steps": 1_000_000}}
    assert load_plan(sweep_file(data), LOCAL, runs_dir=tmp_path, submitting=False).runs


def peftbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "peftbench", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_report_on_no_results_says_so_and_writes_nothing(tmp_path):
    sweep = tmp_path / "empty"
    (sweep / "abc123").mkdir(parents=True)
    (sweep / "abc123" / "spec.json").write_text("{}")  # a run with no result yet
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = peftbench("report", str(sweep), cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
    assert f"No results to report in {sweep}: 1 run(s) without a result yet" in out.stderr
    assert "Nothing was written." in out.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "No such file or directory."),
        ("{not json", "not JSON: Expecting property name"),
        ("[1, 2]", "expected a JSON object (a run's spec), got list."),
        (json.dumps({"sweep": "s", "seed": 2**40}), "model: Field required ("),
    ],
)
def test_run_one_on_a_bad_spec_is_one_line_naming_the_file(tmp_path, content, why):
    spec = tmp_path / "spec.json"
    if content is not None:
        spec.write_text(content)
    out = peftbench("run-one", str(spec), str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(f"{spec}: ") and why in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()
