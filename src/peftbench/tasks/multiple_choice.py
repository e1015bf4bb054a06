"""Multiple choice: pick one of an example's choices (COPA, HuCoPA, CommonsenseQA, ...).

Where a task's parts come from:
- context: the `prompt` template filled from the example's columns when given (tasks.prompts),
  else its `text_columns` joined by a space;
- choices: one column each (`choice_columns`), or one column holding a list (`choices_column`;
  dots enter structs: CommonsenseQA's `choices.text`); every example has the same number;
- gold: `label_column`, a label looked up in `labels` (CommonsenseQA's answerKey "A".."E";
  HuCoPA's "1", "2"), else an index into the choices (labels.choice_index).

Two ways to score a choice (`scoring`):
- `head` (default): a trained head scores each (context, choice) sequence: transformers'
  XForMultipleChoice for encoders, models.DecoderForMultipleChoice for decoders.
- `loglikelihood` (decoders): the choice's summed token log-probability after the context, as
  lm-evaluation-harness scores multiple choice (models.DecoderForChoiceLikelihood). Nothing needs
  training; methods that train use the causal-LM loss on the gold choice's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peftbench.core.directions import MULTIPLE_CHOICE_METRICS
from peftbench.models.loading import load_for_choice_likelihood, load_for_multiple_choice
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
from peftbench.tasks.labels import choice_index
from peftbench.tasks.metrics import choice_metrics
from peftbench.tasks.prompts import PromptTemplate, column_text, column_value, template_problem

if TYPE_CHECKING:
    from peftbench.core.method_traits import MethodTraits
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel

TARGET_DELIMITER = " "  # between the context and a choice, as lm-evaluation-harness joins them
SCORE_COLUMN = {"accuracy": 0, "acc_norm": 1, "acc_bytes": 2}  # of DecoderForChoiceLikelihood's logits


@dataclass(frozen=True)
class ChoiceExample:
    context: str
    choices: list[str]
    gold: int


@register_task_type
class MultipleChoice(TaskType):
    name = "multiple_choice"
    metrics = MULTIPLE_CHOICE_METRICS

    def problems(self, task: TaskSpec) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        found = super().problems(task)
        if (task.choice_columns is None) == (task.choices_column is None):
            given = {"choice_columns": task.choice_columns, "choices_column": task.choices_column}
            found.append(
                ("choice_columns", "Give exactly one of choice_columns and choices_column.", given, ())
            )
        elif task.choice_columns is not None and len(task.choice_columns) < 2:
            found.append(("choice_columns", "Give at least two choice columns.", task.choice_columns, ()))
        if task.metric in ("acc_norm", "acc_bytes") and task.scoring != "loglikelihood":
            message = f"Metric {task.metric!r} needs scoring: loglikelihood."
            found.append(("metric", message, task.metric, ("accuracy",)))
        if task.labels is not None and len(task.labels) < 2:
            found.append(
                ("labels", "Give at least two labels, or none (gold given as an index).", task.labels, ())
            )
        problem = template_problem(task.prompt)
        if problem:
            found.append(("prompt", problem, task.prompt, ()))
        return found

    def unsupported_reason(self, task: TaskSpec, traits: FamilyTraits, method: MethodTraits) -> str | None:
        if traits.kind == "seq2seq":
            return "multiple choice needs an encoder or a decoder-only model"
        if task.scoring == "loglikelihood" and traits.kind != "decoder":
            return "scoring: loglikelihood needs a decoder-only model"
        if task.scoring != "loglikelihood" and method.adds_virtual_tokens:
            return (
                "virtual tokens do not fit the choice head's [examples, choices, length] input; "
                "with a decoder, use scoring: loglikelihood"
            )
        return None

    def sequences_per_example(self, task: TaskSpec, training: bool) -> int | None:
        """One (context, choice) sequence per choice; a log-likelihood scorer trains on the gold
        continuation alone (ChoiceEncoder's `gold_only`). The choices are counted from
        `choice_columns`, else from `labels`; a `choices_column` without labels does not say."""
        if training and task.scoring == "loglikelihood":
            return 1
        if task.choice_columns is not None:
            return len(task.choice_columns)
        return len(task.labels) if task.labels else None

    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any, **options: Any) -> LoadedModel:
        if task.scoring == "loglikelihood":
            return load_for_choice_likelihood(ref, **options)
        return load_for_multiple_choice(ref, tokenizer.pad_token_id, **options)

    def split_encoding(self, task: TaskSpec, tokenizer: Any, training: TrainingSettings) -> SplitEncoding:
        likelihood = task.scoring == "loglikelihood"
        collator = ChoiceLikelihoodCollator if likelihood else ChoiceHeadCollator
        return SplitEncoding(
            key={
                "task_type": self.name,
                "max_length": training.max_length,
                **task.model_dump(include=TASK_FIELDS),
            },
            columns=source_columns(task),
            encode=ChoiceEncoder(task, tokenizer, training.max_length, likelihood, gold_only=False),
            # Training a log-likelihood scorer needs the gold continuation alone.
            encode_train=(
                ChoiceEncoder(task, tokenizer, training.max_length, likelihood, gold_only=True)
                if likelihood
                else None
            ),
            collator=collator(tokenizer, training.padded_length),
        )

    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]:
        return choice_metrics(logits, labels)

    def predicted_labels(self, logits: Any) -> list[int]:
        return predicted_choices(logits, "accuracy")

    def evaluate(self, trainer: Any, task: TaskSpec, data: PreparedData, split: str) -> Evaluation:
        """As the base class, but the predicted choice is the one the task's own metric picks."""
        output = trainer.predict(getattr(data, split), metric_key_prefix=split)
        predictions = predicted_choices(logits_of(output), task.metric)
        return Evaluation(split_metrics(output.metrics, split), predictions)


TASK_FIELDS = {
    "text_columns",
    "choice_columns",
    "choices_column",
    "label_column",
    "labels",
    "prompt",
    "scoring",
}


def predicted_choices(logits: Any, metric: str) -> list[int]:
    """Each example's chosen index: from a head's [examples, choices] logits, or from the log-likelihood
    scores [examples, choices, 3] normalised as `metric` says."""
    if logits.ndim == 3:
        logits = logits[..., SCORE_COLUMN[metric]]
    return logits.argmax(-1).tolist()


def context_template(task: TaskSpec) -> PromptTemplate:
    """The task's `prompt`, else its text columns joined by a space."""
    return PromptTemplate(task.prompt) if task.prompt else PromptTemplate.joining(task.text_columns, " ")


def source_columns(task: TaskSpec) -> list[str]:
    """The column paths the data must have for this task."""
    choices = task.choice_columns or [str(task.choices_column)]
    return [*context_template(task).fields, *choices, task.label_column]


def choice_example(task: TaskSpec, context: PromptTemplate, row: dict[str, Any]) -> ChoiceExample:
    """An example's context, choices and gold index; ValueError naming the problem."""
    if task.choice_columns is not None:
        choices = [column_text(row, c) for c in task.choice_columns]
    else:
        choices = [str(c) for c in column_value(row, str(task.choices_column))]
    gold = choice_index(task.labels, column_value(row, task.label_column), len(choices))
    return ChoiceExample(context.fill(row), choices, gold)


def bos_prefix(tokenizer: Any) -> list[int]:
    """The begin-of-sequence token where the tokenizer starts every text with one (Llama 3, Gemma)."""
    ids = tokenizer("", add_special_tokens=True)["input_ids"]
    return ids[:1] if ids and ids[0] == tokenizer.bos_token_id else []


def encode_continuation(
    tokenizer: Any, context: str, continuation: str, max_length: int
) -> tuple[list[int], int]:
    """(token ids of context + continuation, how many of them at the end are the continuation's).

    As lm-evaluation-harness does it: trailing spaces of the context move to the continuation; the
    continuation's tokens are those of the whole text past the context's own tokens. Too long, the
    context loses its start; the continuation is kept.
    """
    stripped = context.rstrip(" ")
    continuation = context[len(stripped) :] + continuation
    context_ids = tokenizer(stripped, add_special_tokens=False)["input_ids"]
    whole = tokenizer(stripped + continuation, add_special_tokens=False)["input_ids"]
    prefix = bos_prefix(tokenizer)
    room = max(max_length - len(prefix), 1)
    continuation_ids = whole[len(context_ids) :][:room]
    kept = room - len(continuation_ids)
    context_ids = context_ids[max(len(context_ids) - kept, 0) :] if kept else []
    return prefix + context_ids + continuation_ids, len(continuation_ids)


class ChoiceEncoder:
    """Turns a split's rows into one record per example, its choices' sequences side by side.

    Head scoring: input_ids, attention_mask (and token_type_ids) [choices][length], labels.
    Encoder tokenizers (they have a separator token) get (context, choice) pairs; decoder ones the
    context and the choice as one text, like log-likelihood scoring.
    Log-likelihood scoring: input_ids and target_ids [choices][length], choice_lengths
    [choices][2] (characters, UTF-8 bytes), choice_label; with `gold_only` the gold choice alone.
    """

    def __init__(self, task: TaskSpec, tokenizer: Any, max_length: int, likelihood: bool, gold_only: bool):
        self.task, self.tokenizer, self.max_length = task, tokenizer, max_length
        self.likelihood, self.gold_only = likelihood, gold_only
        self.context = context_template(task)

    def __call__(self, data: Any) -> Any:
        import pyarrow.compute as pc

        def encode(row: dict[str, Any], index: int) -> dict[str, Any]:
            try:
                example = choice_example(self.task, self.context, row)
            except (KeyError, ValueError, IndexError) as err:
                raise ValueError(f"Task {self.task.name!r}, example {index}: {err}") from err
            record = self.likelihood_record(example) if self.likelihood else self.head_record(example)
            return record | example_id(row)

        encoded = data.map(encode, with_indices=True, remove_columns=data.column_names)
        choice_counts = pc.unique(pc.list_value_length(encoded.with_format("arrow")["input_ids"])).to_pylist()
        if len(choice_counts) > 1:
            raise ValueError(
                f"Task {self.task.name!r}: examples have {sorted(choice_counts)} choices; "
                "every example needs the same number."
            )
        return encoded

    def head_record(self, example: ChoiceExample) -> dict[str, Any]:
        if self.tokenizer.sep_token is not None:
            contexts = [example.context] * len(example.choices)
            encoded = self.tokenizer(contexts, example.choices, truncation=True, max_length=self.max_length)
            return {**encoded, "labels": example.gold}
        rows = [self.joined(example.context, choice)[0] for choice in example.choices]
        return {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows], "labels": example.gold}

    def likelihood_record(self, example: ChoiceExample) -> dict[str, Any]:
        indices = [example.gold] if self.gold_only else range(len(example.choices))
        input_ids, target_ids, lengths = [], [], []
        for i in indices:
            choice = example.choices[i]
            ids, in_choice = self.joined(example.context, choice)
            input_ids.append(ids)
            target_ids.append([-100] * (len(ids) - in_choice) + ids[len(ids) - in_choice :])
            lengths.append([max(len(choice), 1), max(len(choice.encode("utf-8")), 1)])
        return {
            "input_ids": input_ids,
            "target_ids": target_ids,
            "choice_lengths": lengths,
            "choice_label": 0 if self.gold_only else example.gold,
        }

    def joined(self, context: str, choice: str) -> tuple[list[int], int]:
        return encode_continuation(self.tokenizer, context, TARGET_DELIMITER + choice, self.max_length)


class ChoiceHeadCollator:
    """Pads every choice of a batch to one length: tensors [examples, choices, length], labels [examples]."""

    def __init__(self, tokenizer: Any, pad_to: int | None = None):
        self.tokenizer, self.pad_to = tokenizer, pad_to

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        choices = len(features[0]["input_ids"])
        keys = [k for k in features[0] if k != "labels"]
        flat = [{k: f[k][i] for k in keys} for f in features for i in range(choices)]
        padding = "max_length" if self.pad_to else "longest"
        batch = self.tokenizer.pad(flat, padding=padding, max_length=self.pad_to, return_tensors="pt")
        batch = {k: v.view(len(features), choices, -1) for k, v in batch.items()}
        batch["labels"] = torch.tensor([f["labels"] for f in features])
        return batch


class ChoiceLikelihoodCollator:
    """One row per (example, choice), right-padded: the scorer reads positions from the left."""

    def __init__(self, tokenizer: Any, pad_to: int | None = None):
        self.pad_id, self.pad_to = tokenizer.pad_token_id, pad_to

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        rows = [ids for f in features for ids in f["input_ids"]]
        targets = [t for f in features for t in f["target_ids"]]
        length = self.pad_to or max(len(r) for r in rows)
        return {
            "input_ids": torch.tensor(right_padded(rows, length, self.pad_id)),
            "attention_mask": torch.tensor(right_padded([[1] * len(r) for r in rows], length, 0)),
            "target_ids": torch.tensor(right_padded(targets, length, -100)),
            "choice_lengths": torch.tensor([f["choice_lengths"] for f in features], dtype=torch.float32),
            "choice_label": torch.tensor([f["choice_label"] for f in features]),
        }


def right_padded(rows: list[list[int]], length: int, fill: int) -> list[list[int]]:
    """Each row filled up to `length` on the right."""
    return [row + [fill] * (length - len(row)) for row in rows]
