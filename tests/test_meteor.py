"""METEOR against published values: the examples of Wikipedia's METEOR article, which nltk's own
doctest (nltk/test/meteor.doctest) checks, and nltk issue #2751's case; plus one worked by hand
from Banerjee & Lavie (2005)'s formulas. None of them needs a WordNet synonym, so the scores are
METEOR's own, with or without that stage."""

from __future__ import annotations

import pytest

from peftbench.core.directions import TEXT_METRICS
from peftbench.tasks.meteor import meteor
from peftbench.tasks.metrics import text_metrics

REFERENCE = "The cat sat on the mat"


@pytest.mark.parametrize(
    ("hypothesis", "reference", "score"),
    [
        (REFERENCE, REFERENCE, 0.9977),  # 6 matches in 1 chunk: penalty 0.5 · (1/6)^3
        ("on the mat sat the cat", REFERENCE, 0.5),  # 6 chunks of 1: penalty 0.5, F 1
        ("The cat was sat on the mat", REFERENCE, 0.9654),
        # nltk issue #2751 (a score above 1 before its fix): stem matches create/creates, update/updates
        ("creates or updates a virtual machine scale set", "create or update a vm set", 0.7806),
    ],
)
def test_meteor_matches_the_published_examples(hypothesis: str, reference: str, score: float):
    assert meteor([hypothesis], [reference], "en") == pytest.approx(score, abs=5e-5)


def test_meteor_by_hand_from_the_definition():
    # 6 unigrams of the hypothesis match 6 of the reference's 7: P = 1, R = 6/7,
    # F = P·R / (0.9·P + 0.1·R) = 60/69; 2 chunks ("the president", "spoke to the audience"):
    # penalty 0.5 · (2/6)^3 = 1/54; METEOR = 60/69 · (1 - 1/54) = 0.853462.
    score = meteor(
        ["the president spoke to the audience"], ["the president then spoke to the audience"], "en"
    )
    assert score == pytest.approx(60 / 69 * (1 - 1 / 54), abs=1e-9)


def test_meteor_beside_bleu_and_chrf_for_every_generation_task():
    assert "meteor" in TEXT_METRICS
    metrics = text_metrics(["on the mat sat the cat", REFERENCE], [REFERENCE, REFERENCE], "sl-en")
    assert {"bleu", "chrf", "meteor"} <= set(metrics)
    assert metrics["meteor"] == pytest.approx((0.5 + 0.9977) / 2, abs=5e-5)  # the mean over sentences


def test_meteor_outside_english_matches_words_without_stemming():
    # Slovene: "mačke" and "mačka" are one lemma, but no English stemmer may join them.
    assert meteor(["mačke spijo"], ["mačka spi"], "sl") == 0.0
    # Chinese: characters are tokens; 我 喜 欢 喝 match 4 of 5 and 4 of 6 in one chunk.
    p, r = 4 / 5, 4 / 6
    assert meteor(["我喜欢喝茶"], ["我喜欢喝咖啡"], "zh") == pytest.approx(
        p * r / (0.9 * p + 0.1 * r) * (1 - 0.5 * (1 / 4) ** 3)
    )
