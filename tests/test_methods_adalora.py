"""AdaLoRA through the real Trainer: the callback fits the schedule and prunes ranks to the budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import Trainer

from peftbench.core.spec import TrainingSettings
from peftbench.methods import METHODS
from peftbench.methods.adalora import AdaLoraParams
from peftbench.models.loading import load_tokenizer
from peftbench.run.trainer_args import training_arguments
from peftbench.tasks import TASK_TYPES
from tests.method_training import MINILM, TASK, head_parameters

STEPS = 6


def test_adalora_trains_its_triplets_and_shrinks_the_rank_budget(tmp_path: Path):
    method = METHODS["adalora"]
    params = AdaLoraParams(
        init_r=6, target_r=2, target_modules=["query", "value"], tinit_ratio=0.0, tfinal_ratio=0.34
    )
    task_type = TASK_TYPES[TASK.type]
    tokenizer = load_tokenizer(MINILM)
    settings = TrainingSettings(
        max_steps=STEPS,
        batch_size=8,
        max_train_samples=16,
        max_eval_samples=8,
        max_length=48,
        learning_rate=1e-2,
        eval_strategy="no",
        warmup_ratio=0.0,
    )
    data = task_type.prepare_data(TASK, tokenizer, settings)
    torch.manual_seed(0)
    model = method.prepare(task_type.load_model(MINILM, TASK, tokenizer), params)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = Trainer(
        model=model,
        args=training_arguments(settings, TASK.metric, 0, tmp_path / "checkpoints"),
        train_dataset=data.train,
        data_collator=data.collator,
        callbacks=method.callbacks(model),
    )
    trainer.train()

    config = model.peft_config["default"]
    assert (config.total_step, config.tinit, config.tfinal) == (STEPS, 0, 2)  # fitted to the real steps
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    triplets = {n for n in changed if any(f".lora_{x}." in n for x in "ABE")}
    assert {n.split(".lora_")[1][0] for n in triplets} == {"A", "B", "E"}
    assert changed == triplets | head_parameters(changed)

    # The final budget is target_r per matrix on average: the other singular values are masked to 0.
    singular = [p for n, p in model.named_parameters() if ".lora_E." in n]
    kept = sum(int((e != 0).sum()) for e in singular)
    assert kept == params.target_r * len(singular) < params.init_r * len(singular)
    assert config.rank_pattern and sum(sum(v) for v in config.rank_pattern.values()) == kept

    # Saved and reloaded onto a fresh base, it predicts exactly as trained.
    batch = data.collator([data.train[i] for i in range(8)])
    model.eval()
    with torch.no_grad():
        trained = model(**batch).logits
    method.save(model, tmp_path / "adapter")
    torch.manual_seed(1)
    reloaded = method.load(task_type.load_model(MINILM, TASK, tokenizer), tmp_path / "adapter")
    reloaded.eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(**batch).logits, trained, atol=1e-5)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"tinit_ratio": 0.5, "tfinal_ratio": 0.5}, "must be below 1"),
        ({"init_r": 4, "target_r": 8}, "must not exceed init_r"),
    ],
)
def test_a_schedule_without_room_is_refused(bad: dict, message: str):
    with pytest.raises(ValueError, match=message):
        AdaLoraParams(**bad)
