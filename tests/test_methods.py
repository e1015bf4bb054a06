"""Each method really trains, and exactly its intended parameters change.

Real MiniLM, real demo sentences, a few AdamW steps on one batch: enough to see the loss fall
and to compare every parameter tensor before and after.
"""

from __future__ import annotations

import pytest
import torch

from peftbench.methods import METHODS, Method, register_method
from peftbench.models.loading import load_tokenizer
from peftbench.tasks import TASK_TYPES
from tests.conftest import demo_run
from tests.method_training import adam_steps

STEPS = 8


def train_a_few_steps(method_name: str, task: str = "movie_sentiment"):
    """(model, losses, names of parameter tensors that changed)."""
    spec = demo_run(method_name, task, max_train_samples=16)
    torch.manual_seed(0)
    task_type = TASK_TYPES[spec.task.type]
    tokenizer = load_tokenizer(spec.model)
    data = task_type.prepare_data(spec.task, tokenizer, spec.training)
    loaded = task_type.load_model(spec.model, spec.task, tokenizer)
    model = METHODS[spec.method].prepare(loaded, METHODS[spec.method].Params.model_validate(spec.params))
    batch = data.collator([data.train[i] for i in range(16)])
    _, losses, changed = adam_steps(model, batch, spec.training.learning_rate, STEPS)
    return model, losses, changed


def assert_learns(losses: list[float]) -> None:
    assert min(losses[-3:]) < losses[0] - 0.02, f"loss did not fall: {losses}"


@pytest.mark.parametrize("task", ["movie_sentiment", "epistemic_nli"])
def test_full_changes_every_parameter(task: str):
    model, losses, changed = train_a_few_steps("full", task)
    assert_learns(losses)
    names = {n for n, _ in model.named_parameters()}
    # Position/token-type rows never seen in one short batch get no gradient; everything else moves.
    assert {n for n in names - changed if "embeddings" not in n} == set()
    assert len(changed) > 0.9 * len(names)


def test_bitfit_changes_only_biases_and_the_head():
    _, losses, changed = train_a_few_steps("bitfit")
    assert_learns(losses)
    assert changed and all(n.endswith(".bias") or n.startswith("classifier.") for n in changed)
    assert "classifier.weight" in changed
    assert any(n.startswith("bert.encoder") for n in changed)


def test_lora_changes_only_lora_weights_and_the_head():
    _, losses, changed = train_a_few_steps("lora")
    assert_learns(losses)
    lora = {n for n in changed if ".lora_A." in n or ".lora_B." in n}
    head = {n for n in changed if ".classifier.modules_to_save." in n}
    assert lora and head and changed == lora | head


def test_prompt_tuning_changes_only_the_prompt_and_the_head():
    _, losses, changed = train_a_few_steps("prompt_tuning")
    assert_learns(losses)
    head = {n for n in changed if ".classifier.modules_to_save." in n}
    assert head and changed == head | {"prompt_encoder.default.embedding.weight"}


def test_registry_rejects_duplicates_and_bad_names():
    class Again(Method):
        name = "lora"

    class Bad(Method):
        name = "Lo-RA"

    for cls in (Again, Bad):
        with pytest.raises(ValueError, match=r"lora|Lo-RA"):
            register_method(cls)
