"""Multiple choice: pick one of an example's choices (COPA, HuCoPA, CommonsenseQA, ...).

Where a task's parts come from:
- context: `prompt` formatted over the example's columns when given, else its `text_columns`
  joined by a space;
- choices: one column each (`choice_columns`), or one column holding a list (`choices_column`;
  dots enter structs: CommonsenseQA's `choices.text`); every example has the same number;
- gold: `label_column`, an index into the choices, or a label looked up in `labels`
  (CommonsenseQA's answerKey "A".."E"; HuCoPA's "1", "2").

Two ways to score a choice (`scoring`):
- `head` (default): a trained head scores each (context, choice) sequence: transformers'
  XForMultipleChoice for encoders, models.DecoderForMultipleChoice for decoders.
- `loglikelihood` (decoders): the choice's summed token log-probability after the context, as
  lm-evaluation-harness scores multiple choice (models.DecoderForChoiceLikelihood). Nothing needs
  training; methods that train use the causal-LM loss on the gold choice's tokens.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peftbench.models.loading import load_for_choice_likelihood, load_for_multiple_choice
from peftbench.tasks.base import (
    PROMPT_LEARNING,
    Evaluation,
    PreparedData,
    TaskType,
    example_id,
    logits_of,
    register_task_type,
    split_limits,
    split_metrics,
    take_example_ids,
)
from peftbench.tasks.metrics import MULTIPLE_CHOICE_METRICS, choice_metrics
from peftbench.tasks.token_cache import tokenized_split

if TYPE_CHECKING:
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel
    from peftbench.tasks.token_cache import TokenizationCache

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
        if task.prompt is not None:
            try:
                fields = prompt_fields(task.prompt)
            except ValueError as err:
                found.append(("prompt", f"Not a format template: {err}.", task.prompt, ()))
            else:
                if not fields:
                    found.append(
                        ("prompt", "The template names no column, e.g. '{premise}'.", task.prompt, ())
                    )
        return found

    def unsupported_reason(self, task: TaskSpec, traits: FamilyTraits, method: str) -> str | None:
        if traits.kind == "seq2seq":
            return "multiple choice needs an encoder or a decoder-only model"
        if task.scoring == "loglikelihood" and traits.kind != "decoder":
            return "scoring: loglikelihood needs a decoder-only model"
        if task.scoring != "loglikelihood" and method in PROMPT_LEARNING:
            return (
                "virtual tokens do not fit the choice head's [examples, choices, length] input; "
                "with a decoder, use scoring: loglikelihood"
            )
        return None

    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any, **options: Any) -> LoadedModel:
        if task.scoring == "loglikelihood":
            return load_for_choice_likelihood(ref, **options)
        return load_for_multiple_choice(ref, tokenizer.pad_token_id, **options)

    def prepare_data(
        self,
        task: TaskSpec,
        tokenizer: Any,
        training: TrainingSettings,
        cache: TokenizationCache | None = None,
    ) -> PreparedData:
        limits = split_limits(training)
        likelihood = task.scoring == "loglikelihood"
        settings = {
            "task_type": self.name,
            "max_length": training.max_length,
            **task.model_dump(include=TASK_FIELDS),
        }
        splits = {}
        for split, limit in limits.items():
            gold_only = likelihood and split == "train"  # training needs the gold continuation alone
            encode = ChoiceEncoder(task, tokenizer, training.max_length, likelihood, gold_only)
            splits[split] = tokenized_split(
                task, split, limit, tokenizer, cache, settings, source_columns(task), encode
            )
        splits, ids = take_example_ids(splits)
        pad_to = training.max_length if training.padding == "max_length" else None
        collator = (
            ChoiceLikelihoodCollator(tokenizer, pad_to)
            if likelihood
            else ChoiceHeadCollator(tokenizer, pad_to)
        )
        return PreparedData(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            collator=collator,
            train_tokens=nested_token_count(splits["train"]),
            test_ids=ids["test"] or list(range(len(splits["test"]))),
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


def prompt_fields(prompt: str) -> list[str]:
    """The column names a format template uses; ValueError when it is not a valid template."""
    return [field for _, field, _, _ in string.Formatter().parse(prompt) if field]


def source_columns(task: TaskSpec) -> list[str]:
    """Top-level columns the data must have for this task."""
    context = (
        [f.split(".")[0].split("[")[0] for f in prompt_fields(task.prompt)]
        if task.prompt
        else task.text_columns
    )
    choices = task.choice_columns or [str(task.choices_column).split(".")[0]]
    return list(dict.fromkeys([*context, *choices, task.label_column]))


def nested_value(row: dict[str, Any], path: str) -> Any:
    """`row["choices"]["text"]` for the path "choices.text"."""
    value: Any = row
    for part in path.split("."):
        value = value[part]
    return value


def choice_example(task: TaskSpec, row: dict[str, Any]) -> ChoiceExample:
    """An example's context, choices and gold index; ValueError naming the problem."""
    if task.prompt is not None:
        context = task.prompt.format(**row)
    else:
        context = " ".join(str(row[c]) for c in task.text_columns)
    if task.choice_columns is not None:
        choices = [str(row[c]) for c in task.choice_columns]
    else:
        choices = [str(c) for c in nested_value(row, str(task.choices_column))]
    value = row[task.label_column]
    if isinstance(value, str) and task.labels is not None:
        if value not in task.labels:
            raise ValueError(f"gold {value!r} in {task.label_column!r} is not one of labels {task.labels}")
        gold = task.labels.index(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        gold = value
    else:
        raise ValueError(
            f"gold {value!r} in {task.label_column!r} is neither a choice index nor, with `labels`, a label"
        )
    if not 0 <= gold < len(choices):
        raise ValueError(f"gold {value!r} is no index into the example's {len(choices)} choices")
    return ChoiceExample(context, choices, gold)


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

    def __call__(self, data: Any) -> Any:
        import pyarrow.compute as pc

        def encode(row: dict[str, Any], index: int) -> dict[str, Any]:
            try:
                example = choice_example(self.task, row)
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
            "input_ids": torch.tensor([r + [self.pad_id] * (length - len(r)) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows]),
            "target_ids": torch.tensor([t + [-100] * (length - len(t)) for t in targets]),
            "choice_lengths": torch.tensor([f["choice_lengths"] for f in features], dtype=torch.float32),
            "choice_label": torch.tensor([f["choice_label"] for f in features]),
        }


def nested_token_count(data: Any) -> int:
    """Tokens in a split whose input_ids are [choices][length] per example."""
    import pyarrow.compute as pc

    rows = pc.list_flatten(data.with_format("arrow")["input_ids"])
    return int(pc.sum(pc.list_value_length(rows)).as_py() or 0)
