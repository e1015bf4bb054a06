"""Metrics against examples worked out by hand."""

from __future__ import annotations

import pytest

from peftbench.metrics import bio_entities, choice_metrics, entity_metrics


def test_bio_entities_are_chunked_as_conlleval_does():
    tags = ["B-PER", "I-PER", "O", "I-ORG", "I-ORG", "B-LOC", "B-LOC", "I-MISC", "I-LOC"]
    assert bio_entities(tags) == {
        ("PER", 0, 1),
        ("ORG", 3, 4),  # I- after O starts an entity
        ("LOC", 5, 5),  # B- after B- of the same type: two entities
        ("LOC", 6, 6),
        ("MISC", 7, 7),  # I- of another type starts a new one
        ("LOC", 8, 8),
    }
    assert bio_entities(["O", "O"]) == set()
    assert bio_entities(["B-PER"]) == {("PER", 0, 0)}


def test_entity_f1_and_tag_accuracy_on_a_hand_checked_example():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "I-ORG", "O", "O"]]
    # Gold: PER 0-1, LOC 3, ORG 0-2. Predicted: PER 0-1 (right), ORG 3 (wrong type), ORG 0-1 (wrong
    # span). 1 of 3 right each way: P = R = F1 = 1/3. Tags right: 3 of 4, then 2 of 4: 5/8.
    metrics = entity_metrics(predicted, gold)
    assert metrics["entity_precision"] == pytest.approx(1 / 3)
    assert metrics["entity_recall"] == pytest.approx(1 / 3)
    assert metrics["entity_f1"] == pytest.approx(1 / 3)
    assert metrics["accuracy"] == pytest.approx(5 / 8)


def test_entity_f1_when_precision_and_recall_differ():
    gold = [["B-PER", "O", "B-LOC", "O"]]
    predicted = [["B-PER", "O", "O", "O"]]  # one entity found, right: P = 1, R = 1/2, F1 = 2/3
    metrics = entity_metrics(predicted, gold)
    assert (metrics["entity_precision"], metrics["entity_recall"]) == (1.0, 0.5)
    assert metrics["entity_f1"] == pytest.approx(2 / 3)
    assert entity_metrics([["O"]], [["O"]])["entity_f1"] == 0.0  # nothing to find: 0, not NaN


def test_choice_metrics_from_head_logits_and_from_likelihood_scores():
    assert choice_metrics([[0.1, 0.9], [2.0, -1.0], [0.0, 0.5]], [1, 1, 1]) == {
        "accuracy": pytest.approx(2 / 3)
    }
    # Example 1: choices of 4 and 8 characters, 4 and 12 bytes; summed log-probs -8 and -12.
    # sum: -8 > -12 picks 0; per character: -2 < -1.5 picks 1; per byte: -2 < -1 picks 1.
    scores = [[[-8.0, -2.0, -2.0], [-12.0, -1.5, -1.0]]]
    assert choice_metrics(scores, [1]) == {"accuracy": 0.0, "acc_norm": 1.0, "acc_bytes": 1.0}
    assert choice_metrics(scores, [0]) == {"accuracy": 1.0, "acc_norm": 0.0, "acc_bytes": 0.0}
