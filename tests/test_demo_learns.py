"""The shipped demo teaches something: full fine-tuning and LoRA beat each task's majority class.

The demo's promise (configs/sweeps/demo.yaml) is that every task moves clearly above chance for
full fine-tuning and LoRA. This runs the shipped file's own settings (model, tasks, learning rates,
batch size, epochs, warmup, max_length) on a reduced copy: fewer training examples (so fewer steps)
and fewer evaluation examples, nothing else changed. A change to the demo, a default or the training
loop that stops it from learning fails here, not in front of a first-time user.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from peftbench.plan.loading import load_sweep
from peftbench.run.one import run_one
from tests.conftest import DEMO, write_yaml

PROMISED = ("full", "lora")  # the methods the demo promises learn on every task
REDUCED = {"max_train_samples": 320, "max_eval_samples": 200}  # 2 epochs of 10 steps, 200 test examples
MARGIN = 0.05  # accuracy points above the majority-class rate: 1.5 standard errors on 200 examples


@pytest.fixture(scope="module")
def reduced_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped demo with only its promised methods and fewer examples; every other key as shipped."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["name"] = "demo-reduced"
    data["methods"] = {name: data["methods"][name] for name in PROMISED}
    data["training"] = {**data["training"], **REDUCED}
    return write_yaml(tmp_path_factory.mktemp("demo") / "demo-reduced.yaml", data)


def test_the_reduced_copy_changes_only_the_sizes(reduced_demo: Path):
    shipped = {(r.label, r.task.name): r for r in load_sweep(DEMO).runs}
    for run in load_sweep(reduced_demo).runs:
        original = shipped[(run.label, run.task.name)]
        assert run.params == original.params and run.model == original.model
        changed = {k for k, v in run.training.model_dump().items() if v != getattr(original.training, k)}
        assert changed == set(REDUCED)


@pytest.mark.parametrize("method", PROMISED)
def test_the_demo_settings_learn_above_the_majority_class(reduced_demo: Path, method: str, tmp_path: Path):
    runs = [r for r in load_sweep(reduced_demo).runs if r.label == method]
    assert len({r.task.name for r in runs}) >= 2
    for spec in runs:
        result = run_one(spec, tmp_path / spec.run_id)
        assert result.status == "success", result.error
        accuracy, chance = result.test["accuracy"], result.test["majority_rate"]
        assert accuracy >= chance + MARGIN, (
            f"{method} on {spec.task.name}: test accuracy {accuracy:.3f}, majority class {chance:.3f}"
        )
