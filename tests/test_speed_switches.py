"""The speed switches of TrainingSettings: fast by default, each one switchable, run ids unchanged."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from peftbench.core.spec import TrainingSettings
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_for_sequence_classification, load_tokenizer, set_attention
from peftbench.run.one import _last_validation, run_one
from peftbench.run.trainer_args import training_arguments
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from tests.conftest import TINY_TRAINING, demo_run

SWITCHES = ("padding", "attention", "optimizer", "gradient_checkpointing", "tokenization_cache")
MOVIES = TASK_CATALOG["movie_sentiment"]


def test_unset_switches_are_left_out_of_the_run_id():
    payload = demo_run("lora").model_dump(
        mode="json", exclude={"sweep", "label", "resources"}, exclude_none=True
    )
    assert not set(SWITCHES) & set(payload["training"])


def test_unset_settings_read_as_their_effective_defaults():
    unset = TrainingSettings(max_length=100)
    assert unset.effective_padding == "longest" and unset.padded_length is None
    assert unset.uses_tokenization_cache and not unset.uses_packing
    assert not unset.uses_gradient_checkpointing and unset.engine == "none"
    assert unset.effective_max_new_tokens == 50 and unset.effective_checkpoint_steps == 500
    given = TrainingSettings(
        max_length=100,
        padding="max_length",
        tokenization_cache=False,
        packing=True,
        gradient_checkpointing=True,
        distributed="zero2",
        max_new_tokens=8,
        eval_strategy="steps",
        eval_steps=20,
    )
    assert given.effective_padding == "max_length" and given.padded_length == 100
    assert not given.uses_tokenization_cache and given.uses_packing
    assert given.uses_gradient_checkpointing and given.engine == "zero2"
    assert given.effective_max_new_tokens == 8 and given.effective_checkpoint_steps == 20
    assert given.model_copy(update={"checkpoint_steps": 7}).effective_checkpoint_steps == 7
    assert "engine" not in given.model_dump(), "properties are not settings: run ids stay"


def test_the_defaults_are_the_fast_ones(tmp_path: Path):
    args = training_arguments(TrainingSettings(), "accuracy", 0, tmp_path)
    assert args.optim == "adamw_torch_fused"
    assert not args.gradient_checkpointing
    assert args.train_sampling_strategy == "group_by_length"
    assert args.per_device_eval_batch_size > args.per_device_train_batch_size


def test_each_switch_reaches_the_trainer(tmp_path: Path):
    settings = TrainingSettings(optimizer="adamw_torch", gradient_checkpointing=True, group_by_length=False)
    args = training_arguments(settings, "accuracy", 0, tmp_path)
    assert args.optim == "adamw_torch"
    assert args.gradient_checkpointing and args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert args.train_sampling_strategy == "random"


def test_batches_are_padded_to_their_longest_example_unless_max_length_is_asked_for():
    tokenizer = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    classification = TASK_TYPES["classification"]
    settings = TrainingSettings.model_validate(TINY_TRAINING)
    data = classification.prepare_data(MOVIES, tokenizer, settings)
    examples = [data.train[i] for i in range(8)]
    longest = max(len(e["input_ids"]) for e in examples)
    assert data.collator(examples)["input_ids"].shape == (8, longest)
    assert longest < settings.max_length
    padded = classification.prepare_data(
        MOVIES, tokenizer, settings.model_copy(update={"padding": "max_length"})
    )
    assert padded.collator(examples)["input_ids"].shape == (8, settings.max_length)


def test_set_attention_switches_the_kernel():
    loaded = load_for_sequence_classification(MODEL_CATALOG["minilm-l6"], 2, 0)
    assert loaded.model.config._attn_implementation == "sdpa"
    set_attention(loaded.model, "eager")
    assert loaded.model.config._attn_implementation == "eager"


def fake_trainer(eval_step: int | None, final_step: int = 10, best: str | None = None) -> SimpleNamespace:
    history = [{"loss": 0.7, "step": 5}]
    if eval_step is not None:
        history.append(
            {"eval_loss": 0.5, "eval_accuracy": 0.8, "eval_runtime": 1.0, "epoch": 1.0, "step": eval_step}
        )
    return SimpleNamespace(
        state=SimpleNamespace(log_history=history, global_step=final_step, best_model_checkpoint=best),
        args=SimpleNamespace(load_best_model_at_end=best is not None),
    )


def test_the_final_in_training_evaluation_is_reused_only_when_it_saw_the_final_model():
    assert _last_validation(fake_trainer(eval_step=10)) == {"loss": 0.5, "accuracy": 0.8}
    assert _last_validation(fake_trainer(eval_step=8)) is None
    assert _last_validation(fake_trainer(eval_step=None)) is None
    assert _last_validation(fake_trainer(eval_step=10, best="ckpt/checkpoint-6")) is None


def test_a_run_with_every_switch_turned_the_other_way_succeeds(tmp_path: Path):
    """LoRA with gradient checkpointing (non-reentrant), eager attention, unfused AdamW, max padding."""
    spec = demo_run(
        "lora",
        max_steps=1,
        attention="eager",
        optimizer="adamw_torch",
        gradient_checkpointing=True,
        padding="max_length",
        tokenization_cache=False,
    )
    result = run_one(spec, tmp_path / "sweep" / "run")
    assert result.status == "success", result.error
    assert not (tmp_path / "sweep" / ".cache").exists()
    assert result.cost.train_tokens > 0


@pytest.mark.parametrize("bad", [{"attention": "flash"}, {"padding": "none"}, {"optimizer": "sgd"}])
def test_unknown_switch_values_are_config_errors(bad: dict):
    with pytest.raises(ValueError):
        TrainingSettings.model_validate(bad)
