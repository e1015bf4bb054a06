"""Method blocks limited to some tasks; incremental tuning: a child run starts from its parent's model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from peftbench.core.errors import ConfigError
from peftbench.core.paths import RunPaths
from peftbench.core.spec import parent_run_id
from peftbench.methods import METHODS
from peftbench.models.loading import load_tokenizer
from peftbench.plan.loading import load_sweep
from peftbench.run.incremental import resolve_model
from peftbench.run.one import run_one
from peftbench.tasks import TASK_TYPES
from tests.conftest import TINY_TRAINING

QUERY = "bert.encoder.layer.0.attention.self.query.weight"

SWEEP = {
    "name": "incremental",
    "models": ["minilm-l6"],
    "tasks": ["movie_sentiment", "epistemic_nli"],
    "methods": {
        "full": {"tasks": ["movie_sentiment"], "learning_rate": 1e-4},
        "lora_after_full": {
            "method": "lora",
            "tasks": ["epistemic_nli"],
            "parent": {"method": "full", "task": "movie_sentiment"},
            "learning_rate": 1e-3,
        },
    },
    "training": {**TINY_TRAINING, "max_steps": 2, "eval_strategy": "no"},
}


def expand(sweep_file, data: dict, name: str = "sweep.yaml"):
    return load_sweep(sweep_file(data, name)).runs


def problems_of(sweep_file, data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep_file(data))
    return [str(p) for p in info.value.problems]


def with_methods(**methods: dict) -> dict:
    return {**SWEEP, "methods": {**SWEEP["methods"], **methods}}


def test_a_block_with_tasks_runs_only_on_those(sweep_file):
    data = {**SWEEP, "methods": {"full": {}, "bitfit": {"tasks": ["epistemic_nli"]}}, "seeds": [0, 1]}
    runs = expand(sweep_file, data)
    assert {(r.label, r.task.name) for r in runs} == {
        ("full", "movie_sentiment"),
        ("full", "epistemic_nli"),
        ("bitfit", "epistemic_nli"),
    }
    assert len(runs) == 3 * 2


def test_unknown_task_names_are_errors_with_the_sweeps_tasks(sweep_file):
    [problem] = problems_of(sweep_file, {**SWEEP, "methods": {"full": {"tasks": ["epistemic_nl"]}}})
    assert "methods.full.tasks: Task 'epistemic_nl' is not one of the sweep's tasks." in problem
    assert (
        "Allowed: movie_sentiment, epistemic_nli." in problem and "Did you mean 'epistemic_nli'?" in problem
    )


def test_a_child_starts_from_its_parents_run_and_comes_after_it(sweep_file):
    parent, child = expand(sweep_file, SWEEP)
    assert (parent.label, parent.task.name, child.label, child.task.name) == (
        "full",
        "movie_sentiment",
        "lora_after_full",
        "epistemic_nli",
    )
    assert child.model.source == f"run:{parent.run_id}"
    assert (child.model.name, child.model.family) == (parent.model.name, parent.model.family)
    assert parent_run_id(child) == parent.run_id and parent_run_id(parent) is None

    # Parents come first even when the child block is written first, and for every seed.
    reordered = {**SWEEP, "methods": dict(reversed(SWEEP["methods"].items())), "seeds": [0, 1]}
    runs = expand(sweep_file, reordered, "b.yaml")
    assert [r.label for r in runs] == ["full", "full", "lora_after_full", "lora_after_full"]
    assert [parent_run_id(r) for r in runs[2:]] == [r.run_id for r in runs[:2]]
    assert [r.seed for r in runs[2:]] == [0, 1]


def test_the_childs_run_id_follows_its_parents_settings(sweep_file):
    _, child = expand(sweep_file, SWEEP)
    changed = with_methods(full={"tasks": ["movie_sentiment"], "learning_rate": 5e-5})
    parent2, child2 = expand(sweep_file, changed, "b.yaml")
    assert child2.run_id != child.run_id and child2.model.source == f"run:{parent2.run_id}"
    assert child2.params == child.params and child2.training == child.training


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        (
            {"full": {"tasks": ["movie_sentiment"], "learning_rate": [1e-4, 5e-5]}},
            "methods.lora_after_full.parent: The parent methods.full must yield exactly one run per model "
            "and seed on task 'movie_sentiment'; for model 'minilm-l6' seed 0 it yields 2",
        ),
        (
            {"full": {"tasks": ["epistemic_nli"]}},
            "it yields none (its tasks ['epistemic_nli'] leave out 'movie_sentiment')",
        ),
        (
            {"lora_after_full": {"method": "lora", "parent": {"method": "ful", "task": "movie_sentiment"}}},
            "methods.lora_after_full.parent.method: Unknown method label 'ful'. Allowed: full. "
            "Did you mean 'full'?",
        ),
        (
            {"lora_after_full": {"method": "lora", "parent": {"method": "full", "task": "sentiment"}}},
            "methods.lora_after_full.parent.task: Unknown task 'sentiment'.",
        ),
        (
            {"lora_after_full": {"method": "lora", "parent": {"method": "full"}}},
            "methods.lora_after_full.parent: Give parent as {method: <a method label>, task: <a task name>}",
        ),
        (
            {
                "full": {"parent": {"method": "lora_after_full", "task": "epistemic_nli"}},
                "lora_after_full": {
                    "method": "lora",
                    "parent": {"method": "full", "task": "movie_sentiment"},
                },
            },
            "Parents form a cycle: full -> lora_after_full -> full.",
        ),
        (
            {
                "prompt_tuning": {"tasks": ["movie_sentiment"]},
                "lora_after_full": {
                    "method": "lora",
                    "parent": {"method": "prompt_tuning", "task": "movie_sentiment"},
                },
            },
            "A 'prompt_tuning' parent trains virtual tokens, not weights",
        ),
    ],
)
def test_bad_parents_are_config_errors(sweep_file, methods: dict, expected: str):
    found = problems_of(sweep_file, with_methods(**methods))
    assert any(expected in p for p in found), found


def query_weight(model: torch.nn.Module) -> torch.Tensor:
    return dict(model.named_parameters())[QUERY].detach()


def test_the_child_starts_from_the_weights_its_parent_trained(sweep_file, tmp_path: Path):
    parent, child = expand(sweep_file, SWEEP)
    sweep_dir = tmp_path / "runs" / "incremental"
    parent_dir, child_dir = sweep_dir / parent.run_id, sweep_dir / child.run_id
    assert run_one(parent, parent_dir).status == "success"

    task_type = TASK_TYPES[child.task.type]
    start = resolve_model(child.model, child_dir)
    assert Path(start.source) == RunPaths(child_dir).parent_model
    loaded = task_type.load_model(start, child.task, load_tokenizer(start))
    tokenizer = load_tokenizer(parent.model)
    trained = METHODS["full"].load(
        task_type.load_model(parent.model, parent.task, tokenizer), parent_dir / "artifact"
    )
    pretrained = task_type.load_model(parent.model, parent.task, tokenizer).model
    assert torch.equal(query_weight(loaded.model), query_weight(trained))
    assert not torch.equal(query_weight(trained), query_weight(pretrained))  # the parent did train it
    assert loaded.head_modules == ("classifier",)  # the child's task gets a new head

    result = run_one(child, child_dir)
    assert result.status == "success", result.error
    assert result.spec.model.source == f"run:{parent.run_id}"


def test_a_lora_parent_is_merged_into_its_base(sweep_file, tmp_path: Path):
    data = with_methods(
        full={
            "method": "lora",
            "tasks": ["movie_sentiment"],
            "target_modules": ["query"],
            "learning_rate": 1e-2,
        }
    )
    parent, child = expand(sweep_file, data)
    sweep_dir = tmp_path / "incremental"
    assert run_one(parent, sweep_dir / parent.run_id).status == "success"
    start = resolve_model(child.model, sweep_dir / child.run_id)

    task_type = TASK_TYPES[parent.task.type]
    tokenizer = load_tokenizer(parent.model)
    adapter = METHODS["lora"].load(
        task_type.load_model(parent.model, parent.task, tokenizer), sweep_dir / parent.run_id / "artifact"
    )
    query = adapter.base_model.model.bert.encoder.layer[0].attention.self.query
    expected = query.base_layer.weight + query.get_delta_weight("default")
    merged = task_type.load_model(start, child.task, load_tokenizer(start)).model
    assert torch.allclose(query_weight(merged), expected.detach(), atol=1e-6)
    assert not torch.allclose(expected, query.base_layer.weight)


def test_a_child_whose_parent_did_not_succeed_fails_with_a_clear_error(sweep_file, tmp_path: Path):
    _, child = expand(sweep_file, SWEEP)
    result = run_one(child, tmp_path / "incremental" / child.run_id)
    assert result.status == "failed"
    assert f"Parent run {parent_run_id(child)} has no readable result" in result.error
