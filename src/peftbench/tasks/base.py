"""What a task type is (classification, multiple choice, generation, ...) and the registry of them.

A task type turns a TaskSpec into tokenized splits, a model with the right head, and metrics.
Benchmarks are data (tasks/catalog.py); a new benchmark of an existing type needs no code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from peftbench.core.registry import register_class
from peftbench.tasks.token_cache import tokenized_split

if TYPE_CHECKING:
    from peftbench.core.judging import SavedAnswer
    from peftbench.core.method_traits import MethodTraits
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel
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


@dataclass
class SplitEncoding:
    """What one task type says about turning its splits into model inputs; `TaskType.prepare_data`
    does the rest alike for every type: split limits, the tokenization cache, example ids, token
    counts, PreparedData."""

    key: dict[str, Any]  # all that decides the encoding but the source data, the tokenizer and the limit
    columns: list[str]  # the column paths every split must have (dots enter structs)
    encode: Callable[[Any], Any]  # a Dataset of rows -> model inputs (and EXAMPLE_ID where rows have ids)
    collator: Any
    encode_train: Callable[[Any], Any] | None = None  # the training split's own encoding, where it differs
    prepared: Callable[..., PreparedData] = PreparedData  # or a subclass, its extra fields bound (partial)

    def for_split(self, split: str) -> tuple[dict[str, Any], Callable[[Any], Any]]:
        """The cache key settings and the encoding of one split."""
        if split == "train" and self.encode_train is not None:
            return self.key | {"train_encoding": True}, self.encode_train
        return self.key, self.encode


@dataclass
class Evaluation:
    """Metrics on one split, and each example's prediction in the split's order."""

    metrics: dict[str, float]
    predictions: list[int] | list[str]  # a class index per example, or the generated text
    answers: list[SavedAnswer] = field(default_factory=list)  # what a judge reads later (instruction)


class TaskType(ABC):
    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    takes_averaging: ClassVar[bool] = False  # precision/recall/F1 follow the task's `averaging`
    takes_max_train_choices: ClassVar[bool] = False  # training keeps at most `max_train_choices` candidates

    def problems(self, task: TaskSpec) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        """(key, message, value, allowed) for each way `task` does not fit this type."""
        found: list[tuple[str, str, Any, tuple[str, ...]]] = []
        if task.metric not in self.metrics:
            found.append(("metric", f"Unknown metric {task.metric!r}.", task.metric, self.metrics))
        if task.averaging is not None and not self.takes_averaging:
            message = f"Task type {self.name!r} has no class averaging to set; leave averaging out."
            found.append(("averaging", message, task.averaging, ()))
        if task.max_train_choices is not None and not self.takes_max_train_choices:
            message = f"Task type {self.name!r} has no candidates to cap; leave max_train_choices out."
            found.append(("max_train_choices", message, task.max_train_choices, ()))
        return found

    def sequences_per_example(self, task: TaskSpec, training: bool) -> int | None:
        """How many sequences of up to max_length one example puts through the model, in a training
        micro-batch or an evaluation batch: 1, one per choice (multiple choice), one per candidate
        (cloze). None: it varies by example and the task does not bound it. The memory planner
        multiplies the batch by it (plan/memory.py)."""
        return 1

    def unsupported_reason(self, task: TaskSpec, traits: FamilyTraits, method: MethodTraits) -> str | None:
        """Why `task` cannot run on a model of that family with a method of those traits, or None.

        Asked for every point of a sweep before anything is submitted, beside the method's own
        `Method.unsupported_reason`.
        """
        return None

    def selection_metric(self, task: TaskSpec) -> str:
        """The validation metric the Trainer keeps its best checkpoint by and stops early on.

        By default the task's own metric, computed from the logits of each evaluation during
        training. Task types whose metric needs generated text return "loss": evaluating during
        training then costs one forward pass and gathers no logits, and the task's metric is computed
        once, by `evaluate`, on the final model.
        """
        return task.metric

    @abstractmethod
    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any, **options: Any) -> LoadedModel:
        """The base model with this task's head; `options` go to `from_pretrained` (a method's
        `loading_options`, e.g. QLoRA's quantization_config)."""

    def prepare_data(
        self,
        task: TaskSpec,
        tokenizer: Any,
        training: TrainingSettings,
        cache: TokenizationCache | None = None,
    ) -> PreparedData:
        """Tokenized splits; through `cache` when given, so that a sweep tokenizes each split once.

        The same for every task type but what `split_encoding` says.
        """
        encoding = self.split_encoding(task, tokenizer, training)
        splits = {}
        for split, limit in split_limits(training).items():
            settings, encode = encoding.for_split(split)
            splits[split] = tokenized_split(
                task, split, limit, tokenizer, cache, settings, encoding.columns, encode
            )
        splits, ids = take_example_ids(splits)
        return encoding.prepared(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            collator=encoding.collator,
            train_tokens=token_count(splits["train"]),
            test_ids=ids["test"] or list(range(len(splits["test"]))),
        )

    @abstractmethod
    def split_encoding(self, task: TaskSpec, tokenizer: Any, training: TrainingSettings) -> SplitEncoding:
        """How this type's splits become model inputs, and how they are batched."""

    @abstractmethod
    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]: ...

    def evaluate_only_metrics(self, task: TaskSpec) -> tuple[str, ...]:
        """Metrics that `evaluate` adds to what `compute_metrics` gives during training (they need more
        than logits and labels, e.g. the rows' question groups): validation is evaluated again for them."""
        return ()

    @abstractmethod
    def predicted_labels(self, logits: Any) -> list[int]:
        """The predicted class index of each example (what a leaderboard submission holds)."""

    def evaluate(self, trainer: Any, task: TaskSpec, data: PreparedData, split: str) -> Evaluation:
        """Metrics and predictions of the trained model on `split` ("validation" or "test").

        By default the Trainer predicts logits and `compute_metrics` scores them; task types that
        generate text or score choices by likelihood override this.
        """
        output = trainer.predict(getattr(data, split), metric_key_prefix=split)
        return Evaluation(split_metrics(output.metrics, split), self.predicted_labels(logits_of(output)))


EXAMPLE_ID = "example_id"  # an example's own id from the data, kept beside its tokens for predictions
ID_COLUMNS = ("idx", "id")  # where the data keeps that id


def split_limits(training: TrainingSettings) -> dict[str, int | None]:
    """How many examples each split keeps (None: all)."""
    return {
        "train": training.max_train_samples,
        "validation": training.max_eval_samples,
        "test": training.max_eval_samples,
    }


def take_example_ids(splits: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any] | None]]:
    """(the splits without their EXAMPLE_ID column, each split's ids or None where it had none)."""
    ids = {name: s[EXAMPLE_ID] if EXAMPLE_ID in s.column_names else None for name, s in splits.items()}
    kept = {
        name: s.remove_columns([EXAMPLE_ID]) if ids[name] is not None else s for name, s in splits.items()
    }
    return kept, ids


def example_id(row: dict[str, Any]) -> dict[str, Any]:
    """`{EXAMPLE_ID: the row's own id}` when the row has an id column, else nothing.

    A batch (a dict of columns) gets its ids the same way, as a list.
    """
    column = next((c for c in ID_COLUMNS if c in row), None)
    return {EXAMPLE_ID: row[column]} if column is not None else {}


def token_count(data: Any) -> int:
    """Tokens in a tokenized split, counted in Arrow (iterating rows in Python takes seconds at 100k).

    Whatever nests the input_ids (multiple choice: [choices][length] per example), every id counts.
    """
    import pyarrow.compute as pc

    return len(pc.list_flatten(data.with_format("arrow")["input_ids"], recursive=True))


def split_metrics(metrics: dict[str, Any], split: str) -> dict[str, float]:
    """The Trainer's `test_accuracy`-style metrics of one split as `{"accuracy": ...}`, timings dropped
    (including `model_preparation_time`, which a Trainer that never trained adds to its first predict)."""
    prefix = f"{split}_"
    keep = {k.removeprefix(prefix): float(v) for k, v in metrics.items() if k.startswith(prefix)}
    return {k: v for k, v in keep.items() if not k.endswith(("runtime", "per_second", "preparation_time"))}


def logits_of(output: Any) -> Any:
    """The logits of a Trainer prediction (models that also return hidden states give a tuple)."""
    predictions = output.predictions
    return predictions[0] if isinstance(predictions, tuple) else predictions


TASK_TYPES: dict[str, TaskType] = {}


def register_task_type(cls: type[TaskType]) -> type[TaskType]:
    """Class decorator: add a task type under its `name` (core.registry's rule)."""
    return register_class(TASK_TYPES, "Task type", cls)
