"""The `coreference` task type: documents in, each window's clusters of word spans out.

`text_columns` is the one column of words (sentences of words; SentiCoref's paragraphs of sentences
are flattened), `label_column` the clusters: each entity's mentions as [first word, last word], or
(cjvt's hub schema) as mention ids looked up in a `mentions` column (documents.py). Local `*_conll`
files are read in the CoNLL-2012 column format (conll.py). Windows and candidate spans: encoding.py.
The model is models/heads/coreference.py.

Scoring: MUC, B³, CEAFφ4 and the CoNLL F1 (scores.py), each window a document, with singletons
left out of key and response alike (the model predicts links, never a lone mention; the CoNLL-2012
key has none). Test predictions: each window's predicted clusters as JSON, mentions as
[first word, last word] counted over the whole document.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from peftbench.core.directions import COREF_METRICS
from peftbench.core.errors import RunCannotStart
from peftbench.models.heads.coreference import NO_LINK
from peftbench.models.loading import load_for_coreference
from peftbench.tasks.base import (
    Evaluation,
    PreparedData,
    SplitEncoding,
    TaskType,
    logits_of,
    register_task_type,
    split_metrics,
)
from peftbench.tasks.catalog import FETCH_BY_HAND
from peftbench.tasks.coreference.encoding import (
    MAX_SPAN_WIDTH,
    SPAN_WORDS,
    TOP_SPAN_RATIO,
    DocumentWindows,
    SpanCollator,
)
from peftbench.tasks.coreference.scores import CorefScores
from peftbench.tasks.sources import missing_files

if TYPE_CHECKING:
    from peftbench.core.method_traits import MethodTraits
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel


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
