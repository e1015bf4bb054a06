"""Token classification (named entities, BIO tags): a tag for every word of a pre-split sentence.

`text_columns` is the one column of words (CoNLL-2003's `tokens`), `label_column` the column of
tags (`ner_tags`: indices into `labels`, or the tag names themselves), `labels` the BIO tag names.
A word's tag is learned and predicted on its first sub-word token; its other tokens and the
special tokens are ignored (-100). Words cut off by max_length are not scored.
Metrics: entity-level precision/recall/F1 (exact type and span, as seqeval and conlleval count
them) and per-word tag accuracy. Test predictions are each sentence's tags, space-separated.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from peftbench.core.directions import TOKEN_CLASSIFICATION_METRICS
from peftbench.models.heads.inputs import IGNORED
from peftbench.models.loading import load_for_token_classification
from peftbench.tasks.base import (
    Evaluation,
    PreparedData,
    SplitEncoding,
    TaskType,
    example_id,
    logits_of,
    register_task_type,
    split_metrics,
)
from peftbench.tasks.labels import label_index
from peftbench.tasks.metrics import entity_metrics

if TYPE_CHECKING:
    from peftbench.core.method_traits import MethodTraits
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel

BIO_TAG = re.compile(r"^(O|[BI]-.+)$")


@register_task_type
class TokenClassification(TaskType):
    name = "token_classification"
    metrics = TOKEN_CLASSIFICATION_METRICS

    def problems(self, task: TaskSpec) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        found = super().problems(task)
        if len(task.text_columns) != 1:
            found.append(
                ("text_columns", "Give one column: the words of each sentence.", task.text_columns, ())
            )
        if not task.labels or len(task.labels) < 2:
            found.append(("labels", "Give the tag names (BIO), e.g. [O, B-PER, I-PER].", task.labels, ()))
        else:
            bad = [tag for tag in task.labels if not BIO_TAG.match(tag)]
            if bad:
                found.append(("labels", f"Not BIO tags (O, B-TYPE, I-TYPE): {bad}.", task.labels, ()))
        return found

    def unsupported_reason(self, task: TaskSpec, traits: FamilyTraits, method: MethodTraits) -> str | None:
        if traits.kind == "seq2seq":
            return "token classification needs an encoder or a decoder-only model"
        return None

    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any, **options: Any) -> LoadedModel:
        loaded = load_for_token_classification(ref, len(task.labels or ()), **options)
        loaded.model.config.pad_token_id = tokenizer.pad_token_id
        return loaded

    def split_encoding(self, task: TaskSpec, tokenizer: Any, training: TrainingSettings) -> SplitEncoding:
        from transformers import DataCollatorForTokenClassification

        return SplitEncoding(
            key={
                "task_type": self.name,
                "max_length": training.max_length,
                **task.model_dump(include={"text_columns", "label_column", "labels"}),
            },
            columns=[task.text_columns[0], task.label_column],
            encode=WordTagEncoder(task, tokenizer, training.max_length),
            collator=DataCollatorForTokenClassification(
                tokenizer, padding=training.effective_padding, max_length=training.padded_length
            ),
        )

    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]:
        predicted, gold = word_tags(logits, labels, task.labels or [])
        return entity_metrics(predicted, gold)

    def predicted_labels(self, logits: Any) -> list[int]:
        raise NotImplementedError(
            "A token task predicts a tag per word, not a label per example; see evaluate."
        )

    def evaluate(self, trainer: Any, task: TaskSpec, data: PreparedData, split: str) -> Evaluation:
        """Metrics, and each sentence's predicted tags as one space-separated text."""
        output = trainer.predict(getattr(data, split), metric_key_prefix=split)
        predicted, _ = word_tags(logits_of(output), output.label_ids, task.labels or [])
        return Evaluation(split_metrics(output.metrics, split), [" ".join(tags) for tags in predicted])


def word_tags(logits: Any, labels: Any, names: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """(predicted, gold) tag names of each sentence's scored words: the positions whose label is not -100."""
    import numpy as np

    best = np.asarray(logits).argmax(-1)
    labels = np.asarray(labels)
    predicted, gold = [], []
    for row_best, row_labels in zip(best, labels, strict=True):
        scored = row_labels != IGNORED
        predicted.append([names[i] for i in row_best[scored]])
        gold.append([names[i] for i in row_labels[scored]])
    return predicted, gold


class WordTagEncoder:
    """Tokenizes each sentence's words; its tag goes on each word's first sub-word token, -100 elsewhere."""

    def __init__(self, task: TaskSpec, tokenizer: Any, max_length: int):
        self.task, self.tokenizer, self.max_length = task, tokenizer, max_length

    def __call__(self, data: Any) -> Any:
        words_column, tags_column = self.task.text_columns[0], self.task.label_column
        names = self.task.labels or []

        def encode(row: dict[str, Any], index: int) -> dict[str, Any]:
            words, tags = row[words_column], row[tags_column]
            if len(words) != len(tags):
                raise ValueError(
                    f"Task {self.task.name!r}, example {index}: {len(words)} words but {len(tags)} tags."
                )
            try:
                tag_ids = [label_index(names, tag) for tag in tags]
            except ValueError as err:
                raise ValueError(f"Task {self.task.name!r}, example {index}: {err}") from err
            encoded = self.tokenizer(
                words, is_split_into_words=True, truncation=True, max_length=self.max_length
            )
            labels, previous = [], None
            for word in encoded.word_ids():
                labels.append(tag_ids[word] if word is not None and word != previous else IGNORED)
                previous = word
            return {**encoded, "labels": labels} | example_id(row)

        return data.map(encode, with_indices=True, remove_columns=data.column_names)
