"""Train a method for a few steps on a real (tiny) model and see which parameter tensors moved.

Shared by the tests/test_methods_*.py files: real peft on MiniLM-L6 or the tiny Llama, a few
sentences of the bundled movie_sentiment task, plain AdamW steps on one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from peftbench.core.spec import ModelRef, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import LoadedModel, load_tokenizer
from peftbench.tasks import TASK_CATALOG, TASK_TYPES

MINILM = MODEL_CATALOG["minilm-l6"]
TASK = TASK_CATALOG["movie_sentiment"]
SETTINGS = TrainingSettings(max_train_samples=8, max_eval_samples=8, max_length=48)


@dataclass
class Trained:
    model: Any
    loaded: LoadedModel
    batch: dict[str, Any]
    losses: list[float]
    before: dict[str, torch.Tensor]
    changed: set[str]


def load_base(ref: ModelRef = MINILM, **options: Any) -> tuple[LoadedModel, dict[str, Any]]:
    """A fresh base model with the task's head, and one batch of 8 real training examples."""
    task_type = TASK_TYPES[TASK.type]
    tokenizer = load_tokenizer(ref)
    data = task_type.prepare_data(TASK, tokenizer, SETTINGS)
    torch.manual_seed(0)
    loaded = task_type.load_model(ref, TASK, tokenizer, **options)
    return loaded, data.collator([data.train[i] for i in range(len(data.train))])


def train_a_few_steps(
    method: str,
    params: dict[str, Any] | None = None,
    ref: ModelRef = MINILM,
    steps: int = 3,
    lr: float = 1e-2,
) -> Trained:
    loaded, batch = load_base(ref)
    chosen = METHODS[method]
    model = chosen.prepare(loaded, chosen.Params.model_validate(params or {}))
    before, losses, changed = adam_steps(model, batch, lr, steps)
    return Trained(model, loaded, batch, losses, before, changed)


def adam_steps(
    model: Any, batch: dict[str, Any], lr: float, steps: int
) -> tuple[dict[str, torch.Tensor], list[float], set[str]]:
    """Plain AdamW steps on one batch: (parameters before, losses, names of tensors that changed)."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    return before, losses, changed


def tiny_llama(folder: Any) -> ModelRef:
    return ModelRef(name="tiny-llama", source=str(folder), family="llama")


def adapted_modules(names: set[str], marker: str) -> set[str]:
    """`...layer.0.attention.self.query.lora_A.default.weight` -> `query`: the adapted modules' own names."""
    return {n.split(f".{marker}")[0].rsplit(".", 1)[-1] for n in names if f".{marker}" in n}


def head_parameters(names: set[str]) -> set[str]:
    return {n for n in names if ".modules_to_save." in n}
