"""Metrics against examples worked out by hand: classification-like and text (ROUGE, BLEU, chrF)."""

from __future__ import annotations

import re
import string
from collections import Counter

import pytest

from peftbench.core.directions import CLOZE_METRICS, GROUPED_ANSWER_METRICS, METRIC_DIRECTION, TEXT_METRICS
from peftbench.tasks.metrics import (
    answer_group_metrics,
    bio_entities,
    choice_metrics,
    classification_metrics,
    cloze_scores,
    entity_metrics,
    normalize_answer,
    text_metrics,
)


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
        "accuracy": pytest.approx(2 / 3),
        "mcc": 0.0,  # one gold class only: sklearn's 0
    }
    # chosen 1, 0, 1, 0 against gold 1, 0, 0, 0: TP 1, FP 1, TN 2, FN 0; MCC = 2 / sqrt(2·1·3·2)
    two_way = choice_metrics([[0, 1], [1, 0], [0, 1], [1, 0]], [1, 0, 0, 0])
    assert two_way == {"accuracy": 0.75, "mcc": pytest.approx(2 / 12**0.5)}
    # Example 1: choices of 4 and 8 characters, 4 and 12 bytes; summed log-probs -8 and -12.
    # sum: -8 > -12 picks 0; per character: -2 < -1.5 picks 1; per byte: -2 < -1 picks 1.
    scores = [[[-8.0, -2.0, -2.0], [-12.0, -1.5, -1.0]]]
    assert choice_metrics(scores, [1]) == {"accuracy": 0.0, "acc_norm": 1.0, "acc_bytes": 1.0, "mcc": 0.0}
    assert choice_metrics(scores, [0]) == {"accuracy": 1.0, "acc_norm": 0.0, "acc_bytes": 0.0, "mcc": 0.0}


def test_identical_texts_score_the_maximum():
    texts = ["The cat sat on the mat.", "Dobro jutro, kako ste?"]
    metrics = text_metrics(texts, texts)
    assert set(metrics) == set(TEXT_METRICS)
    assert metrics["rouge1"] == metrics["rouge2"] == metrics["rougeL"] == 1.0
    assert metrics["bleu"] == pytest.approx(100.0)
    assert metrics["chrf"] == pytest.approx(100.0)


def test_rouge_and_bleu_of_a_small_example_by_hand():
    # "the cat sat on the mat" vs "the cat sat on a mat": 6 tokens each.
    # ROUGE-1: 5 shared unigrams (the, cat, sat, on, mat) -> P = R = F = 5/6.
    # ROUGE-2: 3 of 5 bigrams shared (the cat, cat sat, sat on) -> 3/5.
    # ROUGE-L: longest common subsequence "the cat sat on mat" = 5 -> 5/6.
    # BLEU: n-gram precisions 5/6, 3/5, 2/4, 1/3, brevity penalty 1 -> (1/12) ** (1/4).
    metrics = text_metrics(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert metrics["rouge1"] == pytest.approx(5 / 6)
    assert metrics["rouge2"] == pytest.approx(3 / 5)
    assert metrics["rougeL"] == pytest.approx(5 / 6)
    assert metrics["bleu"] == pytest.approx(100 * (1 / 12) ** 0.25)


def test_rouge_is_the_mean_over_examples():
    metrics = text_metrics(["a b", "x y"], ["a b", "z w"])
    assert metrics["rouge1"] == pytest.approx(0.5)


def test_english_rouge_stems_like_the_xsum_convention():
    # Porter stemmer (rouge-score use_stemmer=True): "cats" -> "cat", "running" -> "run".
    assert text_metrics(["cats running"], ["cat run"])["rouge1"] == 1.0
    # Without stemming (another language) the forms differ.
    assert text_metrics(["cats running"], ["cat run"], language="sl")["rouge1"] == 0.0


def test_chinese_rouge_counts_characters():
    # rouge-score's own tokenizer keeps ASCII only and would score every Chinese text 0.
    # By characters: 3 of 4 shared -> 0.75; bigrams 我喜, 喜欢 shared of 3 -> 2/3.
    metrics = text_metrics(["我喜欢猫"], ["我喜欢狗"], language="zh")
    assert metrics["rouge1"] == pytest.approx(0.75)
    assert metrics["rouge2"] == pytest.approx(2 / 3)
    assert metrics["bleu"] > 0


def test_translation_pair_is_scored_in_its_target_language():
    # 'en-sl': the references are Slovene, so no English stemming.
    assert text_metrics(["cats"], ["cat"], language="en-sl")["rouge1"] == 0.0
    assert text_metrics(["cats"], ["cat"], language="sl-en")["rouge1"] == 1.0


def test_disjoint_texts_score_zero():
    metrics = text_metrics(["aaa bbb"], ["ccc ddd"])
    assert metrics["rouge1"] == metrics["rougeL"] == 0.0
    assert metrics["bleu"] == 0.0 and metrics["chrf"] == 0.0


def test_empty_input_and_length_mismatch():
    with pytest.raises(ValueError, match="split is empty"):
        text_metrics([], [])
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        text_metrics(["a", "b"], ["a"])


def test_text_metrics_are_higher_is_better():
    assert all(METRIC_DIRECTION[m] == "higher" for m in (*TEXT_METRICS, "judge"))


def test_multirc_f1a_and_em_as_superglue_defines_them():
    """SuperGLUE's MultiRC metrics (Wang et al. 2019, SuperGLUE, Table 1 and Appendix; the SuperGLUE
    scorer in jiant): F1a is the F1 of the positive class over all answer options of all questions;
    EM counts a question right only when every one of its options is labelled right.

    Three questions, (gold, predicted) per answer option:
      q1: (1, 1) (0, 0)          all right
      q2: (1, 0) (0, 0)          one option wrong
      q3: (0, 1) (1, 1) (0, 0)   one option wrong
    Over all 7 options: TP = 2 (q1's first, q3's second), FP = 1 (q3's first), FN = 1 (q2's first):
    precision = recall = 2/3, so F1a = 2/3. EM = 1 of 3 questions = 1/3. Macro-F1 (what slo_multirc
    reported before) differs: the negative class has TN = 3 of 4 gold and 4 predicted negatives,
    F1 3/4, and the macro mean is (2/3 + 3/4) / 2 = 17/24.
    """
    gold = [1, 0, 1, 0, 0, 1, 0]
    predicted = [1, 0, 0, 0, 1, 1, 0]
    groups = ["0-0", "0-0", "0-1", "0-1", "1-0", "1-0", "1-0"]
    scores = answer_group_metrics(predicted, gold, groups)
    assert scores == {"f1a": pytest.approx(2 / 3), "em": pytest.approx(1 / 3)}
    assert classification_metrics(predicted, gold)["f1_macro"] == pytest.approx(17 / 24)
    assert answer_group_metrics(predicted, gold) == {"f1a": pytest.approx(2 / 3)}  # no groups: no em
    assert answer_group_metrics([0, 0], [0, 0], ["a", "a"]) == {"f1a": 0.0, "em": 1.0}  # no positive at all


def test_record_em_and_f1_take_the_best_gold_answer_after_normalization():
    """SuperGLUE's ReCoRD metrics: SQuAD's token F1 and exact match after normalization, the maximum
    over the gold answers.

    "Združene države" against "ZDA" (no token in common: F1 0) and "Združene države Amerike"
    (2 common tokens: precision 2/2, recall 2/3, F1 = 2·1·(2/3)/(1 + 2/3) = 0.8): EM 0, F1 0.8.
    Punctuation (Unicode, so „ and “ too) and case go; articles go only in English: "The Bled" is
    "bled" in English, but in Slovene "the bled" against "bled" has EM 0 and F1 2·(1/2)·1/(3/2) = 2/3.
    """
    assert cloze_scores("Združene države", ["ZDA", "Združene države Amerike"], "sl") == (
        0.0,
        pytest.approx(0.8),
    )
    assert cloze_scores("„Ljubljana“.", ["ljubljana"], "sl") == (1.0, 1.0)
    assert cloze_scores("The Bled", ["Bled"], "en") == (1.0, 1.0)
    assert cloze_scores("The Bled", ["Bled"], "sl") == (0.0, pytest.approx(2 / 3))
    assert normalize_answer("  A  man, the Man! ", None) == "man man"
    assert cloze_scores("Bled", [], "sl") == (0.0, 0.0)  # unlabelled: nothing to match


def official_record_normalize(s: str) -> str:
    """The official ReCoRD v1.0 scorer's normalize_answer, re-implemented here from its text
    (huggingface/evaluate, metrics/super_glue/record_evaluation.py, commit 9cf3b6022e3e): lower,
    remove `string.punctuation`, remove the articles a/an/the, collapse whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def official_record_f1(prediction: str, gold: str) -> float:
    """The same scorer's f1_score (SQuAD's token F1)."""
    predicted = official_record_normalize(prediction).split()
    expected = official_record_normalize(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("character", list(string.punctuation))
def test_record_normalization_equals_the_official_scorer_on_ascii_punctuation(character: str):
    """Every ASCII punctuation character alone, inside a word, before one and between words; EM and
    F1 against an answer without it equal the scorer's."""
    c = character
    cases = {c: "", f"C{c}{c}": "C", f"{c}5 billion": "5 billion", f"The A{c}b, an x{c} y": "Ab x y"}
    for text, gold in cases.items():
        assert normalize_answer(text, "en") == official_record_normalize(text), text
        assert normalize_answer(text, None) == official_record_normalize(text), text
        official = float(official_record_normalize(text) == official_record_normalize(gold))
        assert cloze_scores(text, [gold], "en") == (official, pytest.approx(official_record_f1(text, gold)))


def test_record_removes_the_ascii_symbols_unicode_does_not_call_punctuation():
    """The issue's cases: $ and + are punctuation to the scorer (not to Unicode's P* categories)."""
    assert cloze_scores("$5 billion", ["5 billion"], "en") == (1.0, 1.0)
    assert cloze_scores("C++", ["C"], "en") == (1.0, 1.0)
    assert cloze_scores("a<b>=c^d|e~f`g", ["abcdefg"], "sl") == (1.0, 1.0)


def test_record_normalization_also_removes_the_unicode_quotes_slovene_text_uses():
    """On top of the scorer's ASCII set: Slovene quotes („…“, »…«, ‚…‘), dashes and the ellipsis go.
    The official scorer would keep them: „Ljubljana“ would not match ljubljana."""
    for quoted in ("„Ljubljana“", "»Ljubljana«", "«Ljubljana»", "‚Ljubljana‘", "“Ljubljana”", "Ljubljana…"):
        assert normalize_answer(quoted, "sl") == "ljubljana", quoted
        assert official_record_normalize(quoted) != "ljubljana", quoted
    assert normalize_answer("Ljubljana – Maribor — Celje", "sl") == "ljubljana maribor celje"


def test_superglue_metrics_are_higher_is_better():
    assert all(METRIC_DIRECTION[m] == "higher" for m in (*GROUPED_ANSWER_METRICS, *CLOZE_METRICS))
