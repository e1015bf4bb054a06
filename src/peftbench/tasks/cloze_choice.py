"""Cloze over a passage, answered by choosing one of the passage's own candidates (ReCoRD).

The task's parts: `text_columns` [passage, query], the query holding `@placeholder`;
`choices_column` the example's candidates (ReCoRD: the distinct entity texts of its passage, a
different number per example; row_layouts' `superglue_record` builds them); `label_column` the
list of gold answer texts (several may be right; none on unlabelled test rows).

Each candidate is scored as the pair (passage, query with @placeholder replaced by the candidate);
the prediction is the best-scored candidate, and it is scored as SuperGLUE scores ReCoRD: exact
match and token F1 after SQuAD's normalization, each the maximum over the gold answers
(tasks.metrics.cloze_scores; English articles are dropped for English only).

Why a softmax over each example's own candidates (models.heads.candidate_choice) and not the
multiple_choice type: that type's head takes [examples, choices, length] with the same number of
choices everywhere and a cross-entropy over all of them, so a padded choice would take part in the
softmax; here candidate lists are padded per batch and masked out of loss and prediction. Why not
binary classification of each candidate on its own rows (the SuperGLUE BERT baseline): the
Trainer's metrics then see rows without their example, and selecting on EM/F1 during training
would need the grouping outside logits and labels; here each example is one row, and its
candidates' EM and F1 travel in its labels ([candidates, 2]), so EM and F1 select checkpoints.

`max_train_choices` caps the training candidates per example (gold ones first), for memory; every
candidate is scored in evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.core.directions import CLOZE_METRICS
from peftbench.models.heads.candidate_choice import PADDED
from peftbench.models.loading import load_for_candidate_choice
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
from peftbench.tasks.classification import encode_joined_pairs, pair_joiner
from peftbench.tasks.metrics import cloze_scores
from peftbench.tasks.prompts import column_value

if TYPE_CHECKING:
    from peftbench.core.method_traits import MethodTraits
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel

PLACEHOLDER = "@placeholder"
CANDIDATES = "candidate_texts"  # each example's candidates, kept beside its tokens for predictions


@register_task_type
class ClozeChoice(TaskType):
    name = "cloze_choice"
    metrics = CLOZE_METRICS
    takes_max_train_choices = True

    def problems(self, task: TaskSpec) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        found = super().problems(task)
        if len(task.text_columns) != 2:
            message = "Give two columns: the passage, then the query with @placeholder."
            found.append(("text_columns", message, task.text_columns, ()))
        if task.choices_column is None or task.choice_columns is not None:
            given = {"choices_column": task.choices_column, "choice_columns": task.choice_columns}
            message = "Give choices_column (each example's list of candidates) and no choice_columns."
            found.append(("choices_column", message, given, ()))
        if task.labels is not None:
            message = "The gold answers are texts (label_column holds a list of them); leave labels out."
            found.append(("labels", message, task.labels, ()))
        return found

    def unsupported_reason(self, task: TaskSpec, traits: FamilyTraits, method: MethodTraits) -> str | None:
        if traits.kind == "seq2seq":
            return "cloze_choice scores candidates with an encoder's or a decoder's classification head"
        if method.adds_virtual_tokens:
            return "virtual tokens do not fit the candidate head's [examples, candidates, length] input"
        return None

    def sequences_per_example(self, task: TaskSpec, training: bool) -> int | None:
        """One (passage, filled query) pair per candidate: in training at most `max_train_choices`
        (the collator pads a batch to its most), in evaluation all of them (unbounded: None)."""
        return task.max_train_choices if training else None

    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any, **options: Any) -> LoadedModel:
        return load_for_candidate_choice(ref, tokenizer.pad_token_id, **options)

    def split_encoding(self, task: TaskSpec, tokenizer: Any, training: TrainingSettings) -> SplitEncoding:
        fields = {"text_columns", "choices_column", "label_column", "language"}
        cap = task.max_train_choices
        return SplitEncoding(
            key={
                "task_type": self.name,
                "max_length": training.max_length,
                **task.model_dump(include=fields),
            },
            columns=[*task.text_columns, str(task.choices_column), task.label_column],
            encode=CandidateEncoder(task, tokenizer, training.max_length, cap=None),
            encode_train=CandidateEncoder(task, tokenizer, training.max_length, cap) if cap else None,
            collator=CandidateCollator(tokenizer, training.padded_length),
        )

    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]:
        return chosen_candidate_scores(logits, labels)

    def predicted_labels(self, logits: Any) -> list[int]:
        return logits.argmax(-1).tolist()

    def evaluate(self, trainer: Any, task: TaskSpec, data: PreparedData, split: str) -> Evaluation:
        """Metrics, and each example's chosen candidate as text (what a ReCoRD submission holds)."""
        dataset = getattr(data, split)
        output = trainer.predict(dataset, metric_key_prefix=split)
        chosen = chosen_indices(logits_of(output), output.label_ids)
        texts = [candidates[i] for candidates, i in zip(dataset[CANDIDATES], chosen, strict=True)]
        return Evaluation(split_metrics(output.metrics, split), texts)


def chosen_indices(logits: Any, labels: Any) -> list[int]:
    """Each example's best-scored real candidate (padded ones, label -100, never win)."""
    import numpy as np

    scores = np.where(np.asarray(labels)[..., 0] == PADDED, -np.inf, np.asarray(logits, dtype=np.float64))
    return scores.argmax(-1).tolist()


def chosen_candidate_scores(logits: Any, labels: Any) -> dict[str, float]:
    """Mean exact match and token F1 of each example's chosen candidate (its labels hold both)."""
    import numpy as np

    labels = np.asarray(labels)
    picked = labels[np.arange(len(labels)), chosen_indices(logits, labels)]
    return {"em": float(picked[:, 0].mean()), "f1": float(picked[:, 1].mean())}


def filled_query(query: str, candidate: str) -> str:
    if PLACEHOLDER not in query:
        raise ValueError(f"the query has no {PLACEHOLDER}: {query[:80]!r}")
    return query.replace(PLACEHOLDER, candidate)


class CandidateEncoder:
    """Rows -> one record per example: input_ids (attention_mask, token_type_ids) [candidates][length],
    labels [candidates][2] (each candidate's EM and F1 against the gold answers), and the candidates'
    texts. With `cap`, at most that many candidates: the gold ones first, then the others in order."""

    def __init__(self, task: TaskSpec, tokenizer: Any, max_length: int, cap: int | None):
        self.task, self.tokenizer, self.max_length, self.cap = task, tokenizer, max_length, cap

    def __call__(self, data: Any) -> Any:
        passage_column, query_column = self.task.text_columns

        def encode(row: dict[str, Any], index: int) -> dict[str, Any]:
            try:
                candidates = [str(c) for c in column_value(row, str(self.task.choices_column))]
                answers = [str(a) for a in column_value(row, self.task.label_column) or []]
                if not candidates:
                    raise ValueError("no candidates")
                scores = [list(cloze_scores(c, answers, self.task.language)) for c in candidates]
                keep = self.kept(scores)
                queries = [filled_query(column_value(row, query_column), candidates[i]) for i in keep]
            except (KeyError, ValueError, TypeError) as err:
                raise ValueError(f"Task {self.task.name!r}, example {index}: {err}") from err
            passage = str(column_value(row, passage_column))
            record = self.pairs([passage] * len(keep), queries)
            return (
                record
                | {
                    "labels": [scores[i] for i in keep],
                    CANDIDATES: [candidates[i] for i in keep],
                }
                | example_id(row)
            )

        return data.map(encode, with_indices=True, remove_columns=data.column_names)

    def kept(self, scores: list[list[float]]) -> list[int]:
        order = list(range(len(scores)))
        if self.cap is None or len(order) <= self.cap:
            return order
        gold_first = sorted(order, key=lambda i: scores[i][0] != 1.0)
        return sorted(gold_first[: self.cap])

    def pairs(self, passages: list[str], queries: list[str]) -> dict[str, Any]:
        """(passage, filled query) pairs: the tokenizer's own pair encoding where it has a separator
        token, else one text joined as classification joins pairs (tasks.classification)."""
        joiner = pair_joiner(self.tokenizer)
        if joiner is not None:
            return encode_joined_pairs(self.tokenizer, passages, queries, joiner, self.max_length)
        return dict(self.tokenizer(passages, queries, truncation="longest_first", max_length=self.max_length))


class CandidateCollator:
    """Pads every example's candidates to the batch's most (repeating its first candidate, label -100)
    and every sequence to one length: tensors [examples, candidates, length], labels [examples,
    candidates, 2]."""

    def __init__(self, tokenizer: Any, pad_to: int | None = None):
        self.tokenizer, self.pad_to = tokenizer, pad_to

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        most = max(len(f["input_ids"]) for f in features)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features[0]]
        flat = [sequence for f in features for sequence in candidate_sequences(f, keys, most)]
        labels = [candidate_labels(f, most) for f in features]
        padding = "max_length" if self.pad_to else "longest"
        batch = self.tokenizer.pad(flat, padding=padding, max_length=self.pad_to, return_tensors="pt")
        batch = {k: v.view(len(features), most, -1) for k, v in batch.items()}
        batch["labels"] = torch.tensor(labels, dtype=torch.float32)
        return batch


def candidate_sequences(feature: dict[str, Any], keys: list[str], most: int) -> list[dict[str, Any]]:
    """One example's candidates' tokens, `most` of them: the first candidate stands in for those it lacks."""
    count = len(feature["input_ids"])
    return [{k: feature[k][i if i < count else 0] for k in keys} for i in range(most)]


def candidate_labels(feature: dict[str, Any], most: int) -> list[list[float]]:
    """One example's candidates' (exact match, F1), `most` of them: PADDED for those it lacks."""
    count = len(feature["input_ids"])
    return [list(feature["labels"][i]) if i < count else [PADDED, PADDED] for i in range(most)]
