"""Coreference metrics as the CoNLL-2012 reference scorer defines them: MUC, B³, CEAFφ4, the CoNLL F1.

Written from the definitions in Pradhan et al. (2014), "Scoring Coreference Partitions of Predicted
Mentions: A Reference Implementation" (the scorer v8.01, github.com/conll/reference-coreference-scorers),
and checked against that scorer's own worked test cases (tests/test_coreference_scores.py):

- a mention is whatever hashable identifies it (here a (first word, last word) span); a response
  mention given twice counts once, where it first appears (the scorer's de-duplication);
- MUC (Vilain et al., 1995): recall = Σ_K (|K| - |partitions of K by the response|) / Σ_K (|K| - 1),
  a key mention the response lacks being a partition of its own; precision the same with key and
  response swapped;
- B³ (Bagga and Baldwin, 1998): recall = Σ_K Σ_R |K∩R|² / |K| over Σ_K |K|; precision swapped;
- CEAFφ4 (Luo, 2005): the one-to-one alignment of key and response entities that maximises
  Σ φ4(K, R) = 2|K∩R| / (|K| + |R|) (Kuhn-Munkres); recall = that sum / key entities, precision =
  that sum / response entities;
- the CoNLL F1 is the mean of the three F1s.

Over many documents each metric adds its numerators and its denominators before dividing, as the
scorer does for a whole file; F1 is the harmonic mean of the summed recall and precision, 0 when
both are 0. Singletons count where they are given (the scorer scores whatever the files hold).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

Mention = Hashable
Clusters = Sequence[Sequence[Mention]]


@dataclass
class Tally:
    """One metric's recall and precision as (numerator, denominator) pairs, summed over documents."""

    recall_num: float = 0.0
    recall_den: float = 0.0
    precision_num: float = 0.0
    precision_den: float = 0.0

    def add(self, recall: tuple[float, float], precision: tuple[float, float]) -> None:
        self.recall_num += recall[0]
        self.recall_den += recall[1]
        self.precision_num += precision[0]
        self.precision_den += precision[1]

    @property
    def recall(self) -> float:
        return self.recall_num / self.recall_den if self.recall_den else 0.0

    @property
    def precision(self) -> float:
        return self.precision_num / self.precision_den if self.precision_den else 0.0

    @property
    def f1(self) -> float:
        r, p = self.recall, self.precision
        return 2 * p * r / (p + r) if p + r else 0.0


def deduplicated(clusters: Clusters) -> list[list[Mention]]:
    """Each mention once, in the first cluster that names it; clusters left empty are dropped."""
    seen: set[Mention] = set()
    kept = []
    for cluster in clusters:
        fresh = []
        for mention in cluster:
            if mention not in seen:
                seen.add(mention)
                fresh.append(mention)
        if fresh:
            kept.append(fresh)
    return kept


def muc_counts(key: Clusters, response: Clusters) -> tuple[float, float]:
    """(numerator, denominator) of MUC recall of `response` against `key` (swap them for precision)."""
    cluster_of = {m: i for i, cluster in enumerate(response) for m in cluster}
    numerator = denominator = 0
    for cluster in key:
        partitions = set()
        for mention in cluster:
            partitions.add(cluster_of.get(mention, ("missing", mention)))
        numerator += len(cluster) - len(partitions)
        denominator += len(cluster) - 1
    return float(numerator), float(denominator)


def b_cubed_counts(key: Clusters, response: Clusters) -> tuple[float, float]:
    """(numerator, denominator) of B³ recall of `response` against `key` (swap them for precision)."""
    response_sets = [set(cluster) for cluster in response]
    numerator = 0.0
    for cluster in key:
        mentions = set(cluster)
        numerator += sum(len(mentions & other) ** 2 for other in response_sets) / len(mentions)
    return numerator, float(sum(len(set(cluster)) for cluster in key))


def ceaf_entity_similarity(key: Clusters, response: Clusters) -> float:
    """The largest Σ φ4(K, R) over one-to-one alignments of key and response entities."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    if not key or not response:
        return 0.0
    key_sets, response_sets = [set(c) for c in key], [set(c) for c in response]
    phi = np.array(
        [[2 * len(k & r) / (len(k) + len(r)) for r in response_sets] for k in key_sets], dtype=float
    )
    rows, columns = linear_sum_assignment(phi, maximize=True)
    return float(phi[rows, columns].sum())


@dataclass
class CorefScores:
    """MUC, B³ and CEAFφ4 tallies over the documents scored so far."""

    muc: Tally = field(default_factory=Tally)
    b3: Tally = field(default_factory=Tally)
    ceafe: Tally = field(default_factory=Tally)

    def add_document(self, key: Clusters, response: Clusters) -> None:
        """Score one document's response clusters against its key clusters."""
        key, response = deduplicated(key), deduplicated(response)
        self.muc.add(muc_counts(key, response), muc_counts(response, key))
        self.b3.add(b_cubed_counts(key, response), b_cubed_counts(response, key))
        similarity = ceaf_entity_similarity(key, response)
        self.ceafe.add((similarity, float(len(key))), (similarity, float(len(response))))

    def metrics(self) -> dict[str, float]:
        """`{muc_f1, muc_precision, muc_recall, ..., conll_f1}` (conll_precision/recall: the means too)."""
        tallies = {"muc": self.muc, "b3": self.b3, "ceafe": self.ceafe}
        found = {}
        for name, tally in tallies.items():
            found |= {
                f"{name}_f1": tally.f1,
                f"{name}_precision": tally.precision,
                f"{name}_recall": tally.recall,
            }
        for part in ("f1", "precision", "recall"):
            found[f"conll_{part}"] = sum(found[f"{name}_{part}"] for name in tallies) / len(tallies)
        return found


def coref_metrics(documents: Iterable[tuple[Clusters, Clusters]]) -> dict[str, float]:
    """The metrics of many (key clusters, response clusters) documents, counts summed over them."""
    scores = CorefScores()
    for key, response in documents:
        scores.add_document(key, response)
    return scores.metrics()
