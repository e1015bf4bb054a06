"""Single-sentence and sentence-pair classification (one or two text columns)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from peftbench.models.loading import load_for_sequence_classification
from peftbench.tasks.base import (
    EXAMPLE_ID,
    ID_COLUMNS,
    PROMPT_LEARNING,
    PreparedData,
    TaskType,
    register_task_type,
    split_limits,
    take_example_ids,
)
from peftbench.tasks.labels import label_index
from peftbench.tasks.metrics import CLASSIFICATION_METRICS, classification_metrics
from peftbench.tasks.sources import load_split
from peftbench.tasks.token_cache import source_identity, tokenizer_identity

if TYPE_CHECKING:
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel
    from peftbench.tasks.token_cache import TokenizationCache

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "labels")
PAIR_JOINER = "\n"


@register_task_type
class Classification(TaskType):
    name = "classification"
    metrics = CLASSIFICATION_METRICS

    def problems(self, task: TaskSpec) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        found = super().problems(task)
        if not task.labels or len(task.labels) < 2:
            found.append(("labels", "Classification needs at least two labels.", task.labels, ()))
        return found

    def unsupported_reason(self, task: TaskSpec, traits: FamilyTraits, method: str) -> str | None:
        if traits.kind == "seq2seq" and method in PROMPT_LEARNING:
            # T5's and BART's classification heads find the end token in input_ids: they take no
            # input embeddings (NotImplementedError) and misalign a prefix's attention mask.
            return "virtual tokens do not fit a seq2seq model's classification head; use lora or ia3"
        return None

    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any, **options: Any) -> LoadedModel:
        return load_for_sequence_classification(
            ref, len(task.labels or ()), tokenizer.pad_token_id, **options
        )

    def prepare_data(
        self,
        task: TaskSpec,
        tokenizer: Any,
        training: TrainingSettings,
        cache: TokenizationCache | None = None,
    ) -> PreparedData:
        from transformers import DataCollatorWithPadding

        limits = split_limits(training)
        splits = {
            split: self._tokenized_split(task, split, limit, tokenizer, training.max_length, cache)
            for split, limit in limits.items()
        }
        splits, ids = take_example_ids(splits)
        padding = training.padding or "longest"
        return PreparedData(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            collator=DataCollatorWithPadding(
                tokenizer,
                padding=padding,
                max_length=training.max_length if padding == "max_length" else None,
            ),
            train_tokens=token_count(splits["train"]),
            test_ids=ids["test"] or list(range(len(splits["test"]))),
        )

    def _tokenized_split(
        self,
        task: TaskSpec,
        split: str,
        limit: int | None,
        tokenizer: Any,
        max_length: int,
        cache: TokenizationCache | None,
    ) -> Any:
        """One split, tokenized: taken from the cache when it has it, else tokenized (and cached)."""
        build = partial(self._load_and_tokenize, task, split, limit, tokenizer, max_length)
        if cache is None:
            return build()
        parts = {
            "task_type": self.name,
            "source": source_identity(task, split),
            "tokenizer": tokenizer_identity(tokenizer),
            "max_length": max_length,
            "text_columns": task.text_columns,
            "label_column": task.label_column,
            "labels": task.labels,
            "limit": limit,
        }
        if len(task.text_columns) == 2 and pair_joiner(tokenizer) is not None:
            parts["pair_joiner"] = PAIR_JOINER
        return cache.load_or_build(parts, build, label=f"{task.name}/{split}")

    @classmethod
    def _load_and_tokenize(
        cls, task: TaskSpec, split: str, limit: int | None, tokenizer: Any, max_length: int
    ) -> Any:
        data = load_split(task, split)
        missing = [c for c in (*task.text_columns, task.label_column) if c not in data.column_names]
        if missing:
            raise ValueError(
                f"Task {task.name!r}, split {split!r}: no column(s) {missing}; "
                f"the data has {data.column_names}."
            )
        if limit is not None and limit < len(data):
            data = data.select(range(limit))
        return cls._tokenize(data, task, tokenizer, max_length)

    @staticmethod
    def _tokenize(data: Any, task: TaskSpec, tokenizer: Any, max_length: int) -> Any:
        joiner = pair_joiner(tokenizer)

        def encode(batch: dict[str, list]) -> dict[str, list]:
            texts = [batch[c] for c in task.text_columns]
            if len(texts) == 2 and joiner is not None:
                texts = [[f"{a}{joiner}{b}" for a, b in zip(*texts, strict=True)]]
            encoded = tokenizer(*texts, truncation=True, max_length=max_length)
            encoded["labels"] = [label_index(task.labels or (), v) for v in batch[task.label_column]]
            id_column = next((c for c in ID_COLUMNS if c in batch), None)
            if id_column is not None:
                encoded[EXAMPLE_ID] = batch[id_column]
            return encoded

        encoded = data.map(encode, batched=True, remove_columns=data.column_names)
        keep = (*MODEL_INPUTS, EXAMPLE_ID)
        return encoded.remove_columns([c for c in encoded.column_names if c not in keep])

    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]:
        return classification_metrics(self.predicted_labels(logits), list(labels))

    def predicted_labels(self, logits: Any) -> list[int]:
        return logits.argmax(-1).tolist()


def pair_joiner(tokenizer: Any) -> str | None:
    """What joins a sentence pair into one text for a tokenizer with no separator token, else None.

    Decoder tokenizers (Llama, GPT-2, ...) have none: given a pair, they run its two texts together
    with nothing between ("...premise.Hypothesis...").
    """
    return PAIR_JOINER if tokenizer.sep_token is None else None


def token_count(data: Any) -> int:
    """Tokens in a tokenized split, counted in Arrow (iterating rows in Python takes seconds at 100k)."""
    import pyarrow.compute as pc

    return int(pc.sum(pc.list_value_length(data.with_format("arrow")["input_ids"])).as_py() or 0)
