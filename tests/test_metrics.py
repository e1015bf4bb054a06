"""Text metrics (ROUGE, BLEU, chrF) against values computed by hand."""

from __future__ import annotations

import pytest

from peftbench.metrics import METRIC_DIRECTION, TEXT_METRICS, UnicodeWordTokenizer, text_metrics


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


def test_unicode_tokenizer_splits_words_and_cjk_characters():
    tokens = UnicodeWordTokenizer().tokenize("Železniška postaja, abc你好 x_y 3.5")
    assert tokens == ["železniška", "postaja", "abc", "你", "好", "x", "y", "3", "5"]


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
