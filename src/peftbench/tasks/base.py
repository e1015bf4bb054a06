"""What a task type is (classification, multiple choice, generation, ...) and the registry of them.

A task type turns a TaskSpec into tokenized splits, a model with the right head, and metrics.
Benchmarks are data (tasks/catalog.py); a new benchmark of an existing type needs no code.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from peftbench.config import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models import LoadedModel
    from peftbench.tasks.token_cache import TokenizationCache


@dataclass
class PreparedData:
    """Tokenized splits ready for the Trainer, and how to batch them."""

    train: Any
    validation: Any
    test: Any
    collator: Any
    train_tokens: int  # non-padding tokens in one pass over the training split
    test_ids: list[Any] = field(default_factory=list)  # each test example's own id (else its position)


class TaskType(ABC):
    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]

    def problems(self, task: TaskSpec) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        """(key, message, value, allowed) for each way `task` does not fit this type."""
        if task.metric not in self.metrics:
            return [("metric", f"Unknown metric {task.metric!r}.", task.metric, self.metrics)]
        return []

    @abstractmethod
    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any) -> LoadedModel: ...

    @abstractmethod
    def prepare_data(
        self,
        task: TaskSpec,
        tokenizer: Any,
        training: TrainingSettings,
        cache: TokenizationCache | None = None,
    ) -> PreparedData:
        """Tokenized splits; through `cache` when given, so that a sweep tokenizes each split once."""

    @abstractmethod
    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]: ...

    @abstractmethod
    def predicted_labels(self, logits: Any) -> list[int]:
        """The predicted class index of each example (what a leaderboard submission holds)."""


TASK_TYPES: dict[str, TaskType] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register_task_type(cls: type[TaskType]) -> type[TaskType]:
    """Class decorator: add a task type under its `name`; duplicates are bugs."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"Task type name {name!r} of {cls.__name__} must match {_NAME.pattern}.")
    if name in TASK_TYPES:
        raise ValueError(f"Task type {name!r} is registered twice ({cls.__name__}).")
    TASK_TYPES[name] = cls()
    return cls
