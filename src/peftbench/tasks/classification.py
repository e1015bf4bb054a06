"""Single-sentence and sentence-pair classification (one or two text columns)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.metrics import CLASSIFICATION_METRICS, classification_metrics
from peftbench.models import load_for_sequence_classification
from peftbench.tasks.base import PreparedData, TaskType, register_task_type
from peftbench.tasks.sources import load_split

if TYPE_CHECKING:
    from peftbench.config import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models import LoadedModel

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "labels")


@register_task_type
class Classification(TaskType):
    name = "classification"
    metrics = CLASSIFICATION_METRICS

    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any) -> LoadedModel:
        return load_for_sequence_classification(ref, len(task.labels), tokenizer.pad_token_id)

    def prepare_data(self, task: TaskSpec, tokenizer: Any, training: TrainingSettings) -> PreparedData:
        from transformers import DataCollatorWithPadding

        limits = {
            "train": training.max_train_samples,
            "validation": training.max_eval_samples,
            "test": training.max_eval_samples,
        }
        splits = {}
        for split, limit in limits.items():
            data = load_split(task, split)
            missing = [c for c in (*task.text_columns, task.label_column) if c not in data.column_names]
            if missing:
                raise ValueError(
                    f"Task {task.name!r}, split {split!r}: no column(s) {missing}; "
                    f"the data has {data.column_names}."
                )
            if limit is not None and limit < len(data):
                data = data.select(range(limit))
            splits[split] = self._tokenize(data, task, tokenizer, training.max_length)
        return PreparedData(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            collator=DataCollatorWithPadding(tokenizer),
            train_tokens=sum(len(ids) for ids in splits["train"]["input_ids"]),
        )

    @staticmethod
    def _tokenize(data: Any, task: TaskSpec, tokenizer: Any, max_length: int) -> Any:
        def encode(batch: dict[str, list]) -> dict[str, list]:
            texts = [batch[c] for c in task.text_columns]
            encoded = tokenizer(*texts, truncation=True, max_length=max_length)
            encoded["labels"] = batch[task.label_column]
            return encoded

        encoded = data.map(encode, batched=True, remove_columns=data.column_names)
        return encoded.remove_columns([c for c in encoded.column_names if c not in MODEL_INPUTS])

    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]:
        return classification_metrics(logits.argmax(-1).tolist(), list(labels))
