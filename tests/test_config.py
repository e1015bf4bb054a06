"""Bad input fails before anything runs, with one message listing every problem."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from peftbench.core.errors import ConfigError
from peftbench.core.spec import RunSpec
from peftbench.plan.loading import load_cluster, load_sweep

BASE = {
    "name": "t",
    "models": ["minilm-l6"],
    "tasks": ["movie_sentiment"],
    "methods": {"lora": {"r": 8}},
}


def problems_of(sweep_file, data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep_file(data))
    return [str(p) for p in info.value.problems]


def test_unknown_method_names_file_key_allowed_and_near_match(sweep_file):
    [message] = problems_of(sweep_file, {**BASE, "methods": {"lroa": {"r": 8}}})
    assert "sweep.yaml: methods.lroa: Unknown method 'lroa'." in message
    assert "adalora, bitfit, full, ia3, lora, none, p_tuning, prefix_tuning, prompt_tuning, qlora" in message
    assert "Did you mean 'lora'?" in message


def test_unknown_task_and_model_with_near_match(sweep_file):
    found = problems_of(sweep_file, {**BASE, "tasks": ["movie_sentimnt"], "models": ["minilm-l7"]})
    assert any("tasks[0]: Unknown task 'movie_sentimnt'" in p and "'movie_sentiment'" in p for p in found)
    assert any(
        "models[0]: Unknown model 'minilm-l7'" in p and "Did you mean 'minilm-l6'?" in p for p in found
    )


def test_unknown_model_family(sweep_file):
    model = {"name": "m", "source": "org/model", "family": "bret"}
    [message] = problems_of(sweep_file, {**BASE, "models": [model]})
    assert "models[0].family: Unknown model family 'bret'" in message
    assert "Did you mean 'bert'?" in message


def test_misspelt_keys_at_every_level(sweep_file):
    data = {**BASE, "seed": [1], "training": {"epochz": 1}, "methods": {"lora": {"rank": 8}}}
    found = problems_of(sweep_file, data)
    assert any("seed: Unknown key 'seed'" in p and "Did you mean 'seeds'?" in p for p in found)
    assert any("training.epochz: Unknown key 'epochz'" in p and "Did you mean 'epochs'?" in p for p in found)
    assert any("methods.lora.rank: Unknown key 'rank'" in p for p in found)
    assert len(found) == 3


def test_wrong_type(sweep_file):
    [message] = problems_of(sweep_file, {**BASE, "training": {"batch_size": "big"}})
    assert "training.batch_size" in message and "'big'" in message


def test_empty_grid(sweep_file):
    [message] = problems_of(sweep_file, {**BASE, "methods": {"lora": {"r": []}}})
    assert "methods.lora.r: Empty grid" in message


def test_negative_rank_and_learning_rate_reported_together(sweep_file):
    found = problems_of(sweep_file, {**BASE, "methods": {"lora": {"r": [8, -4], "learning_rate": -1e-3}}})
    assert any("methods.lora.r: Input should be greater than 0 (got -4)" in p for p in found)
    assert any("methods.lora.learning_rate: Input should be greater than 0 (got -0.001)" in p for p in found)


def test_cross_field_check(sweep_file):
    [message] = problems_of(sweep_file, {**BASE, "training": {"eval_strategy": "steps"}})
    assert "eval_strategy 'steps' needs eval_steps" in message


def test_method_that_cannot_train_the_family(sweep_file):
    model = {"name": "tiny-llama", "source": "org/llama", "family": "llama"}
    [message] = problems_of(sweep_file, {**BASE, "models": [model], "methods": {"bitfit": {}}})
    assert "methods.bitfit: Method 'bitfit' cannot train model 'tiny-llama' (family llama)" in message


def test_missing_dataset_file(sweep_file, tmp_path):
    task = {
        "name": "mine",
        "source": {"files": {"train": str(tmp_path / "nope.jsonl")}},
        "text_columns": ["text"],
        "labels": ["a", "b"],
    }
    [message] = problems_of(sweep_file, {**BASE, "tasks": [task]})
    assert "tasks[0].source: No such data file or folder" in message and "nope.jsonl" in message


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nmethods: {lora: [\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+: Not valid YAML"):
        load_sweep(path)


def test_unknown_cluster_lists_profiles():
    with pytest.raises(ConfigError) as info:
        load_cluster("locl")
    message = str(info.value)
    assert "No profile for cluster 'locl'" in message and "Did you mean 'local'?" in message


def test_every_problem_in_one_error(sweep_file):
    data = {**BASE, "tasks": ["nope"], "methods": {"lroa": {}, "lora": {"r": 0}}}
    assert len(problems_of(sweep_file, data)) == 3


def test_a_seed_numpy_refuses_is_refused_naming_it(sweep_file):
    [message] = problems_of(sweep_file, {**BASE, "seeds": [0, 2**40]})
    assert message.endswith(
        "sweep.yaml: seeds[1]: A seed is at most 2^32 - 1 = 4294967295: NumPy refuses larger ones "
        "(got 1099511627776)."
    )


def test_the_largest_seed_numpy_takes_is_accepted_in_a_sweep_and_a_run_spec(sweep_file):
    [run] = load_sweep(sweep_file({**BASE, "seeds": [2**32 - 1]})).runs
    assert run.seed == 2**32 - 1
    assert RunSpec.model_validate(run.model_dump()).run_id == run.run_id
    with pytest.raises(ValidationError, match="seed"):
        RunSpec.model_validate({**run.model_dump(), "seed": 2**32})


def test_infinite_epochs_are_refused(sweep_file):
    [message] = problems_of(sweep_file, {**BASE, "training": {"epochs": float("inf")}})
    assert "training.epochs: Input should be a finite number (got inf)." in message


def test_a_directory_is_not_a_sweep_file(tmp_path):
    expected = f"{tmp_path}: <file>: Is a directory, not a sweep file."
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_sweep(tmp_path)
