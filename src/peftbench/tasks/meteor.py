"""METEOR (Banerjee & Lavie, 2005) as nltk implements it, without its WordNet stage.

Each hypothesis is aligned to its reference in nltk's stages, exact matches first, then Porter-stem
matches (English targets only); the score is the harmonic mean F = P·R / (α·P + (1 − α)·R) times
the fragmentation penalty 1 − γ·(chunks / matches)^β, with nltk's (and the 2005 paper's)
parameters α = 0.9, β = 3, γ = 0.5. nltk's third stage matches WordNet synonyms; WordNet is a corpus
download, not a package, and a run never reaches the network, so that stage is left out: scores
can be lower than with synonyms, never different otherwise. The split's METEOR is the mean over its
sentences, in [0, 1].

Tokens: English (or no language) lowercased words and punctuation marks; other target languages
as ROUGE's (unicode_words.UnicodeWordTokenizer: Unicode words, each CJK character one token), not stemmed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from peftbench.tasks.unicode_words import UnicodeWordTokenizer

_ENGLISH_TOKEN = re.compile(r"\w+|[^\w\s]")


class NoSynonyms:
    """A stand-in for nltk's WordNet reader whose words have no synsets: no synonym matches."""

    def synsets(self, word: str) -> list[Any]:
        return []


class SameWord:
    """A stemmer that keeps each word as it is (targets other than English)."""

    def stem(self, word: str) -> str:
        return word


def meteor(predictions: Sequence[str], references: Sequence[str], lang: str | None) -> float:
    """Mean sentence METEOR of `predictions` against one reference each; see the module docstring."""
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.meteor_score import single_meteor_score

    english = lang in (None, "en")
    tokenize = (lambda t: _ENGLISH_TOKEN.findall(t.lower())) if english else UnicodeWordTokenizer().tokenize
    stemmer = PorterStemmer() if english else SameWord()
    total = 0.0
    for prediction, reference in zip(predictions, references, strict=True):
        total += single_meteor_score(
            tokenize(reference), tokenize(prediction), stemmer=stemmer, wordnet=NoSynonyms()
        )
    return total / len(predictions)
