"""Single-sentence and sentence-pair classification (one or two text columns)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from peftbench.core.directions import AVERAGED_METRICS, CLASSIFICATION_METRICS, GROUPED_ANSWER_METRICS
from peftbench.core.spec import AVERAGINGS
from peftbench.models.loading import load_for_sequence_classification
from peftbench.tasks.base import (
    EXAMPLE_ID,
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
from peftbench.tasks.metrics import answer_group_metrics, classification_metrics, majority_rate

if TYPE_CHECKING:
    from peftbench.core.method_traits import MethodTraits
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel

TaskProblem = tuple[str, str, Any, tuple[str, ...]]  # a problem of a task: key, message, value, allowed
NOT_BINARY = tuple(a for a in AVERAGINGS if a != "binary")
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "labels")
PAIR_JOINER = "\n"
GROUP_ID = (
    "group_id"  # the row's `group_column` value, kept beside its tokens for `em` (the Trainer drops it)
)


@register_task_type
class Classification(TaskType):
    name = "classification"
    metrics = (*CLASSIFICATION_METRICS, *AVERAGED_METRICS, *GROUPED_ANSWER_METRICS)
    takes_averaging = True

    def problems(self, task: TaskSpec) -> list[TaskProblem]:
        return [
            *super().problems(task),
            *label_problems(task),
            *grouped_answer_problems(task),
            *averaged_metric_problems(task, self.metrics),
        ]

    def unsupported_reason(self, task: TaskSpec, traits: FamilyTraits, method: MethodTraits) -> str | None:
        if traits.kind == "seq2seq" and method.adds_virtual_tokens:
            # T5's and BART's classification heads find the end token in input_ids: they take no
            # input embeddings (NotImplementedError) and misalign a prefix's attention mask.
            return "virtual tokens do not fit a seq2seq model's classification head; use lora or ia3"
        return None

    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any, **options: Any) -> LoadedModel:
        return load_for_sequence_classification(
            ref, len(task.labels or ()), tokenizer.pad_token_id, **options
        )

    def split_encoding(self, task: TaskSpec, tokenizer: Any, training: TrainingSettings) -> SplitEncoding:
        from transformers import DataCollatorWithPadding

        key = {
            "task_type": self.name,
            "max_length": training.max_length,
            **task.model_dump(include={"text_columns", "label_column", "labels"}),
        }
        if task.group_column is not None:
            key["group_column"] = task.group_column
        if len(task.text_columns) == 2 and pair_joiner(tokenizer) is not None:
            key["pair_joiner"] = PAIR_JOINER
        key["pair_truncation"] = "longest_first"  # encodings cut from the right alone are not reused
        return SplitEncoding(
            key=key,
            columns=[
                *task.text_columns,
                task.label_column,
                *([task.group_column] if task.group_column else []),
            ],
            encode=partial(encode_texts, task=task, tokenizer=tokenizer, max_length=training.max_length),
            collator=DataCollatorWithPadding(
                tokenizer, padding=training.effective_padding, max_length=training.padded_length
            ),
        )

    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]:
        gold = list(labels)
        predicted = self.predicted_labels(logits)
        scores = classification_metrics(predicted, gold, task.effective_averaging)
        if task.group_column is not None:
            scores |= answer_group_metrics(predicted, gold)  # f1a; em needs the groups: `evaluate`
        return scores | {"majority_rate": majority_rate(gold)}  # chance, for the tables (collect.chance)

    def predicted_labels(self, logits: Any) -> list[int]:
        return logits.argmax(-1).tolist()

    def evaluate_only_metrics(self, task: TaskSpec) -> tuple[str, ...]:
        return ("em",) if task.group_column is not None else ()

    def evaluate(self, trainer: Any, task: TaskSpec, data: PreparedData, split: str) -> Evaluation:
        """As the base class; with a `group_column`, also `em` over the split's questions."""
        dataset = getattr(data, split)
        output = trainer.predict(dataset, metric_key_prefix=split)
        predicted = self.predicted_labels(logits_of(output))
        metrics = split_metrics(output.metrics, split)
        if task.group_column is not None:
            gold = [int(g) for g in output.label_ids]
            metrics |= answer_group_metrics(predicted, gold, dataset[GROUP_ID])
        return Evaluation(metrics, predicted)


def label_problems(task: TaskSpec) -> list[TaskProblem]:
    """At least two labels; exactly two with binary averaging (the second is the positive class)."""
    if not task.labels or len(task.labels) < 2:
        return [("labels", "Classification needs at least two labels.", task.labels, ())]
    if task.averaging == "binary" and len(task.labels) != 2:
        message = f"binary averaging needs exactly two labels (the second is positive); {task.name} has"
        return [("averaging", f"{message} {len(task.labels)}.", task.averaging, NOT_BINARY)]
    return []


def grouped_answer_problems(task: TaskSpec) -> list[TaskProblem]:
    """MultiRC's metrics score answer options grouped by question: a group column and two labels."""
    if task.metric not in GROUPED_ANSWER_METRICS:
        return []
    if task.group_column is not None and len(task.labels or ()) == 2:
        return []
    message = (
        f"Metric {task.metric!r} scores answer options grouped by question: it needs group_column "
        "and two labels (the second: the answer is right)."
    )
    return [("metric", message, task.metric, CLASSIFICATION_METRICS)]


def averaged_metric_problems(task: TaskSpec, allowed: tuple[str, ...]) -> list[TaskProblem]:
    """`f1_micro` and its kind are reported only in the task's own averaging."""
    suffix = task.metric.rpartition("_")[2]
    if task.metric not in AVERAGED_METRICS or suffix == task.effective_averaging:
        return []
    message = f"Metric {task.metric!r} needs averaging {suffix!r} (the task's is "
    message += f"{task.effective_averaging!r})."
    return [("metric", message, task.metric, allowed)]


def encode_texts(data: Any, task: TaskSpec, tokenizer: Any, max_length: int) -> Any:
    """Each row's text (or sentence pair) as token ids, with its label's class index."""
    joiner = pair_joiner(tokenizer)

    def encode(batch: dict[str, list]) -> dict[str, Any]:
        texts = [batch[c] for c in task.text_columns]
        if len(texts) == 2 and joiner is not None:
            encoded: dict[str, Any] = encode_joined_pairs(tokenizer, *texts, joiner, max_length)
        else:
            encoded = tokenizer(*texts, truncation=True, max_length=max_length)
        encoded["labels"] = [label_index(task.labels or (), v) for v in batch[task.label_column]]
        if task.group_column is not None:
            encoded[GROUP_ID] = [str(v) for v in batch[task.group_column]]
        return {**encoded, **example_id(batch)}

    encoded = data.map(encode, batched=True, remove_columns=data.column_names)
    keep = (*MODEL_INPUTS, EXAMPLE_ID, GROUP_ID)
    return encoded.remove_columns([c for c in encoded.column_names if c not in keep])


def pair_joiner(tokenizer: Any) -> str | None:
    """What joins a sentence pair into one text for a tokenizer with no separator token, else None.

    Decoder tokenizers (Llama, GPT-2, ...) have none: given a pair, they run its two texts together
    with nothing between ("...premise.Hypothesis...").
    """
    return PAIR_JOINER if tokenizer.sep_token is None else None


def encode_joined_pairs(
    tokenizer: Any, firsts: list[str], seconds: list[str], joiner: str, max_length: int
) -> dict[str, list[list[int]]]:
    """Sentence pairs as one text each, `first{joiner}second`, that keep both parts when too long.

    The two parts are tokenized apart (the joiner opens the second) and cut as the tokenizers' own
    `longest_first` cuts pairs (`longest_first_lengths`); the tokenizer's special tokens for one
    text (a BOS, ...) go around them. Cut from the right as one text, a long premise would leave
    no hypothesis at all.
    """
    before, after = special_tokens_around(tokenizer)
    room = max(max_length - len(before) - len(after), 0)
    first_ids = tokenizer(firsts, add_special_tokens=False)["input_ids"]
    second_ids = tokenizer([joiner + s for s in seconds], add_special_tokens=False)["input_ids"]
    rows = []
    for first, second in zip(first_ids, second_ids, strict=True):
        keep_first, keep_second = longest_first_lengths(len(first), len(second), room)
        rows.append(before + first[:keep_first] + second[:keep_second] + after)
    return {"input_ids": rows, "attention_mask": [[1] * len(row) for row in rows]}


def longest_first_lengths(first: int, second: int, room: int) -> tuple[int, int]:
    """How many tokens of each part to keep within `room`, as fast tokenizers' `longest_first` keeps them:
    a part shorter than half the room is kept whole and the other gets the rest; else the shorter part
    (the first on a tie) gets the lower half and the longer the upper."""
    if first + second <= room:
        return first, second
    shorter = min(first, second)
    if 2 * shorter <= room:
        return (first, room - first) if first == shorter else (room - second, second)
    half = room // 2
    return (room - half, half) if first > second else (half, room - half)


def special_tokens_around(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one text (e.g. ([bos], []))."""
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start], full[start + len(plain) :]
    return [], []
