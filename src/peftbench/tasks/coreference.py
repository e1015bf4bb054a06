"""Coreference resolution: which spans of a document name the same entity (CoNLL-2012, SentiCoref).

`text_columns` is the one column of words (sentences of words; SentiCoref's paragraphs of sentences
are flattened), `label_column` the clusters: each entity's mentions as [first word, last word], or
(cjvt's hub schema) as mention ids looked up in a `mentions` column. Local `*_conll` files are read
in the CoNLL-2012 column format (tasks/coref_data.py). The model is models/heads/coreference.py.

Encoding: a document is cut into windows of whole sentences that fit `max_length` tokens, each window
an example (a sentence longer than that is cut, and its mentions past the cut go unfound); a link
between two windows is neither learned nor scored. Every span of up to `coref_max_span_width` words
inside one sentence is a candidate; a gold mention that is no candidate (wider, or cut off) is kept
in the labels, so that it counts against recall.

Scoring: MUC, B³, CEAFφ4 and the CoNLL F1 (tasks/coref_metrics.py), each window a document, with
singletons left out of key and response alike (the model predicts links, never a lone mention; the
CoNLL-2012 key has none). Test predictions: each window's predicted clusters as JSON, mentions as
[first word, last word] counted over the whole document.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from peftbench.core.errors import RunCannotStart
from peftbench.models.heads.coreference import HEAD_DEFAULTS, NO_LINK
from peftbench.models.heads.inputs import IGNORED
from peftbench.models.loading import load_for_coreference
from peftbench.tasks.base import (
    EXAMPLE_ID,
    Evaluation,
    PreparedData,
    SplitEncoding,
    TaskType,
    logits_of,
    register_task_type,
    split_metrics,
)
from peftbench.tasks.catalog import FETCH_BY_HAND
from peftbench.tasks.coref_data import document_of
from peftbench.tasks.coref_metrics import COREF_METRICS, CorefScores
from peftbench.tasks.sources import missing_files

if TYPE_CHECKING:
    from peftbench.core.method_traits import MethodTraits
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel

MAX_SPAN_WIDTH = HEAD_DEFAULTS["coref_max_span_width"]
TOP_SPAN_RATIO = HEAD_DEFAULTS["coref_top_span_ratio"]
SPAN_COLUMNS = ("span_starts", "span_ends", "span_widths", "span_mask", "labels")
SPAN_WORDS = "span_words"  # each candidate's [first word, last word] in the document: for predictions


@register_task_type
class Coreference(TaskType):
    name = "coreference"
    metrics = COREF_METRICS

    def problems(self, task: TaskSpec) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        found = super().problems(task)
        if len(task.text_columns) != 1:
            found.append(
                (
                    "text_columns",
                    "Give one column: each document's sentences of words.",
                    task.text_columns,
                    (),
                )
            )
        return found

    def unsupported_reason(self, task: TaskSpec, traits: FamilyTraits, method: MethodTraits) -> str | None:
        if traits.kind != "encoder":
            return (
                "the coreference head reads span boundaries from an encoder's hidden states; use an encoder"
            )
        return None

    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any, **options: Any) -> LoadedModel:
        return load_for_coreference(ref, **options)

    def prepare_data(
        self, task: TaskSpec, tokenizer: Any, training: TrainingSettings, cache: Any = None
    ) -> PreparedData:
        """As every task type's, once the data is known to be there (nothing fetches these corpora)."""
        missing = missing_files(task.source)
        if missing:
            where = FETCH_BY_HAND.get(task.name, "the files its source names")
            raise RunCannotStart(
                f"Task {task.name!r}: no {', '.join(missing)}. peftbench does not download it; fetch it "
                f"yourself: {where} (docs/tasks.md, 'Coreference')."
            )
        return super().prepare_data(task, tokenizer, training, cache)

    def split_encoding(self, task: TaskSpec, tokenizer: Any, training: TrainingSettings) -> SplitEncoding:
        return SplitEncoding(
            key={
                "task_type": self.name,
                "max_length": training.max_length,
                "max_span_width": MAX_SPAN_WIDTH,
                "top_span_ratio": TOP_SPAN_RATIO,
                **task.model_dump(include={"text_columns", "label_column"}),
            },
            columns=[task.text_columns[0], task.label_column],
            encode=DocumentWindows(task, tokenizer, training.max_length),
            collator=SpanCollator(tokenizer),
        )

    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]:
        scores = CorefScores()
        for links, entities in zip(logits, labels, strict=True):
            scores.add_document(gold_clusters(entities), predicted_clusters(links))
        return scores.metrics()

    def predicted_labels(self, logits: Any) -> list[int]:
        raise NotImplementedError("Coreference predicts clusters per document, not a label; see evaluate.")

    def evaluate(self, trainer: Any, task: TaskSpec, data: PreparedData, split: str) -> Evaluation:
        """Metrics, and each window's predicted clusters (document word spans) as JSON."""
        dataset = getattr(data, split)
        output = trainer.predict(dataset, metric_key_prefix=split)
        texts = []
        for links, words in zip(logits_of(output), dataset[SPAN_WORDS], strict=True):
            clusters = [[words[i] for i in cluster] for cluster in predicted_clusters(links)]
            texts.append(json.dumps(sorted(sorted(c) for c in clusters)))
        return Evaluation(split_metrics(output.metrics, split), texts)


def gold_clusters(entities: Any) -> list[list[int]]:
    """A row of labels (entity per candidate span; 0 none; -100 padding) as clusters of span indices,
    singletons left out."""
    members: dict[int, list[int]] = {}
    for index, entity in enumerate(entities):
        if entity > 0:
            members.setdefault(int(entity), []).append(index)
    return [m for m in members.values() if len(m) > 1]


def predicted_clusters(links: Any) -> list[list[int]]:
    """A row of predicted links (each span's antecedent span, or -1; -100 padding) as clusters."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.get(i, i) != i:
            i = parent[i]
        return i

    for index, antecedent in enumerate(links):
        if antecedent > NO_LINK:
            parent.setdefault(index, index)
            parent.setdefault(int(antecedent), int(antecedent))
            parent[root(index)] = root(int(antecedent))
    clusters: dict[int, list[int]] = {}
    for index in sorted(parent):
        clusters.setdefault(root(index), []).append(index)
    return list(clusters.values())


class DocumentWindows:
    """Documents -> windows of whole sentences, each with its candidate spans and their entities."""

    def __init__(self, task: TaskSpec, tokenizer: Any, max_length: int):
        self.task, self.tokenizer, self.max_length = task, tokenizer, max_length

    def __call__(self, data: Any) -> Any:
        words_column, clusters_column = self.task.text_columns[0], self.task.label_column

        def encode(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
            out: dict[str, list[Any]] = {}
            for offset, index in enumerate(indices):
                row = {name: values[offset] for name, values in batch.items()}
                try:
                    document = document_of(row, words_column, clusters_column)
                except (ValueError, TypeError, IndexError, KeyError) as err:
                    raise ValueError(f"Task {self.task.name!r}, document {index}: {err}") from err
                for window in self.windows(document, index):
                    for name, value in window.items():
                        out.setdefault(name, []).append(value)
            return out

        return data.map(encode, batched=True, with_indices=True, remove_columns=data.column_names)

    def windows(self, document: dict[str, Any], index: int) -> list[dict[str, Any]]:
        """The document's windows, encoded; ids `doc_key` (one window) or `doc_key/n`."""
        budget = self.max_length - self.tokenizer.num_special_tokens_to_add()
        groups: list[list[int]] = [[]]
        used = 0
        for number, sentence in enumerate(document["sentences"]):
            tokens = sum(len(self.tokenizer.tokenize(word)) or 1 for word in sentence)
            if groups[-1] and used + tokens > budget:
                groups.append([])
                used = 0
            groups[-1].append(number)
            used += tokens
        key = document["doc_key"] if document["doc_key"] is not None else str(index)
        encoded = [self.encode_window(document, group) for group in groups]
        for n, window in enumerate(encoded):
            window[EXAMPLE_ID] = key if len(encoded) == 1 else f"{key}/{n}"
        return encoded

    def encode_window(self, document: dict[str, Any], sentence_numbers: list[int]) -> dict[str, Any]:
        sentences = document["sentences"]
        first_word = sum(len(s) for s in sentences[: sentence_numbers[0]])
        words = [w for n in sentence_numbers for w in sentences[n]]
        encoded = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=self.max_length)
        first_token: dict[int, int] = {}
        last_token: dict[int, int] = {}
        for position, word in enumerate(encoded.word_ids()):
            if word is not None:
                first_token.setdefault(word, position)
                last_token[word] = position
        entity_of = {}
        for number, cluster in enumerate(document["clusters"], start=1):
            for start, end in cluster:
                if first_word <= start and end < first_word + len(words):
                    entity_of[(start - first_word, end - first_word)] = number
        spans = candidate_spans([len(sentences[n]) for n in sentence_numbers], set(first_token))
        starts, ends, widths, mask, labels = [], [], [], [], []
        for start, end in spans:
            starts.append(first_token[start])
            ends.append(last_token[end])
            widths.append(end - start)
            mask.append(1)
            labels.append(entity_of.pop((start, end), 0))
        missed = sorted(entity_of.items())  # gold mentions no candidate covers: counted, never predicted
        spans += [span for span, _ in missed]
        starts += [0] * len(missed)
        ends += [0] * len(missed)
        widths += [0] * len(missed)
        mask += [0] * len(missed)
        labels += [entity for _, entity in missed]
        return {
            **encoded,
            "span_starts": starts,
            "span_ends": ends,
            "span_widths": widths,
            "span_mask": mask,
            "labels": labels,
            "top_k": max(1, math.ceil(TOP_SPAN_RATIO * len(first_token))),
            SPAN_WORDS: [[first_word + s, first_word + e] for s, e in spans],
        }


def candidate_spans(sentence_lengths: list[int], encoded_words: set[int]) -> list[tuple[int, int]]:
    """Every (first, last) word span within one sentence, at most MAX_SPAN_WIDTH words, whose words all
    survived truncation; in document order."""
    spans, first = [], 0
    for length in sentence_lengths:
        for start in range(first, first + length):
            for end in range(start, min(start + MAX_SPAN_WIDTH, first + length)):
                if end in encoded_words:
                    spans.append((start, end))
        first += length
    return spans


class SpanCollator:
    """Pads the tokens (the tokenizer's own padding, either side) and the spans (mask 0, labels -100).

    `text_mask` is the padded attention mask under its own name: peft's prompt learning extends
    `attention_mask` by its virtual tokens, and the head needs the text's own length.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        token_keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features[0]]
        batch = dict(
            self.tokenizer.pad([{k: f[k] for k in token_keys} for f in features], return_tensors="pt")
        )
        batch["text_mask"] = batch["attention_mask"].clone()
        length = batch["input_ids"].shape[1]
        left = self.tokenizer.padding_side == "left"
        spans = max(len(f["labels"]) for f in features)
        for name in SPAN_COLUMNS:
            fill = IGNORED if name == "labels" else 0
            rows = []
            for f in features:
                shift = length - len(f["input_ids"]) if left and name in ("span_starts", "span_ends") else 0
                rows.append([v + shift for v in f[name]] + [fill] * (spans - len(f[name])))
            batch[name] = torch.tensor(rows)
        batch["top_k"] = torch.tensor([f["top_k"] for f in features])
        return batch
