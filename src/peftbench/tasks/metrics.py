"""Task metrics: the scores each task type reports (their names, and which way is better: core.directions).

Classification metrics come from scikit-learn; text metrics from rouge-score (ROUGE) and sacrebleu
(BLEU, chrF), METEOR from nltk (tasks.meteor). Scales are the libraries' own: ROUGE F-measures and
METEOR in [0, 1], BLEU and chrF in [0, 100].
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from peftbench.core.directions import LIKELIHOOD_SCORES
from peftbench.tasks.meteor import meteor
from peftbench.tasks.unicode_words import UnicodeWordTokenizer

if TYPE_CHECKING:
    from peftbench.core.spec import Averaging


def classification_metrics(
    predictions: Sequence[int], labels: Sequence[int], averaging: Averaging = "macro"
) -> dict[str, float]:
    """Accuracy, MCC and macro precision/recall/F1; classes absent from both count as zero, not NaN.

    With another `averaging` (scikit-learn's `average`: binary, micro, weighted) its precision, recall
    and F1 come too, as `precision_<averaging>`, ...; binary scores class 1 (the task's second label)
    as the positive class.
    """
    from sklearn.metrics import accuracy_score, matthews_corrcoef

    metrics = {
        "accuracy": float(accuracy_score(labels, predictions)),
        "mcc": float(matthews_corrcoef(labels, predictions)),
        **averaged_scores(predictions, labels, "macro"),
    }
    if averaging != "macro":
        metrics |= averaged_scores(predictions, labels, averaging)
    return metrics


def averaged_scores(
    predictions: Sequence[int], labels: Sequence[int], averaging: Averaging
) -> dict[str, float]:
    """`f1_<averaging>`, `precision_<averaging>`, `recall_<averaging>` from scikit-learn."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, average=averaging, zero_division=0
    )
    return {
        f"f1_{averaging}": float(f1),
        f"precision_{averaging}": float(precision),
        f"recall_{averaging}": float(recall),
    }


def majority_rate(labels: Sequence[int]) -> float:
    """Share of the most frequent gold label: the accuracy of always answering it, i.e. chance.

    Recorded beside a classification run's metrics (`majority_rate`) so that tables can show chance
    and never call a score at chance a best (collect.chance)."""
    labels = list(labels)
    return max(labels.count(label) for label in set(labels)) / len(labels) if labels else float("nan")


def choice_metrics(scores: Any, gold: Sequence[int]) -> dict[str, float]:
    """Accuracy (and MCC) of picking each example's highest-scored choice.

    `scores` is [examples, choices] (a head's logits: accuracy only) or [examples, choices, 3]
    (log-likelihood: summed, per character, per UTF-8 byte), which gives accuracy, acc_norm and
    acc_bytes as lm-evaluation-harness defines them: argmax of the sum, of the sum divided by the
    choice's length in characters (Python `len`), and in bytes.
    """
    import numpy as np
    from sklearn.metrics import matthews_corrcoef

    scores, gold = np.asarray(scores), np.asarray(gold)
    chosen = scores.argmax(1) if scores.ndim == 2 else scores[..., 0].argmax(1)
    # MCC of the chosen index against the gold one (HuLU reports it for HuCoPA)
    mcc = {"mcc": float(matthews_corrcoef(gold, chosen))}
    if scores.ndim == 2:
        return {"accuracy": float(np.mean(chosen == gold)), **mcc}
    hits = scores.argmax(1) == gold[:, None]
    return {name: float(hits[:, i].mean()) for i, name in enumerate(LIKELIHOOD_SCORES)} | mcc


def answer_group_metrics(
    predictions: Sequence[int], labels: Sequence[int], groups: Sequence[Any] | None = None
) -> dict[str, float]:
    """SuperGLUE's MultiRC metrics over rows that each label one answer option (1: right, 0: wrong).

    `f1a`: F1 of the positive class over all answer options of all questions together. `em`: a
    question counts as right only when every one of its answer options is labelled right; the mean
    over questions (`groups` gives each row's question; without it, only f1a). As defined in Wang et
    al. 2019 (SuperGLUE, Table 1 and Appendix) and computed by the SuperGLUE/jiant scorer (jiant's
    MultiRC task: F1 over all answer options, exact match grouped by question).
    """
    from sklearn.metrics import f1_score

    scores = {"f1a": float(f1_score(labels, predictions, pos_label=1, average="binary", zero_division=0))}
    if groups is not None:
        right: dict[Any, bool] = {}
        for group, p, g in zip(groups, predictions, labels, strict=True):
            right[group] = right.get(group, True) and p == g
        scores["em"] = sum(right.values()) / len(right) if right else 0.0
    return scores


ENGLISH_ARTICLES = re.compile(r"\b(a|an|the)\b")
# The official ReCoRD scorer's punctuation: Python's `string.punctuation` (ASCII), read in
# huggingface/evaluate metrics/super_glue/record_evaluation.py ("Official evaluation script for
# ReCoRD v1.0"), at commit 9cf3b6022e3e78c242fc172e896a5ce7a5de2004, its `remove_punc`.
ASCII_PUNCTUATION = frozenset(string.punctuation)


def is_answer_punctuation(character: str) -> bool:
    """What normalization removes: the official scorer's ASCII punctuation (the symbols $ + < = > ^ |
    ~ and the backtick among it, which Unicode does not call punctuation), and on top every Unicode
    punctuation character (category P*): the scorer keeps „ “ ” ‚ ‘ ’ « » ‹ › – — …, and Slovene
    text quotes and dashes with them."""
    return character in ASCII_PUNCTUATION or unicodedata.category(character).startswith("P")


def normalize_answer(text: str, language: str | None = None) -> str:
    """The official ReCoRD scorer's answer normalization (SQuAD's): lowercase, punctuation removed,
    the English articles a/an/the removed, whitespace collapsed; in that order. Two departures, both
    for text that is not English ASCII: punctuation is `is_answer_punctuation` (the scorer's ASCII
    set and Unicode's), and articles go only for English (or an unset language): Slovene has none,
    and other languages' are not ours to guess. On ASCII English text it equals the scorer's."""
    text = "".join(c for c in text.lower() if not is_answer_punctuation(c))
    if target_language(language) in (None, "en"):
        text = ENGLISH_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str, language: str | None = None) -> float:
    """SQuAD's token F1 of two answers after `normalize_answer` (tokens: whitespace-separated)."""
    from collections import Counter

    predicted, expected = (
        normalize_answer(prediction, language).split(),
        normalize_answer(gold, language).split(),
    )
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def cloze_scores(prediction: str, golds: Sequence[str], language: str | None = None) -> tuple[float, float]:
    """(exact match, token F1) of one prediction: the maximum over the gold answers, as SuperGLUE's
    ReCoRD scorer takes it (`metric_max_over_ground_truths`); (0, 0) without a gold answer."""
    if not golds:
        return 0.0, 0.0
    wanted = normalize_answer(prediction, language)
    exact = max(float(wanted == normalize_answer(g, language)) for g in golds)
    return exact, max(token_f1(prediction, g, language) for g in golds)


def bio_entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """The entities (type, first, last position) of one BIO-tagged sequence, chunked as conlleval does.

    An entity starts at B-X, or at an I-X that does not continue an entity of type X (after O or
    after another type); it ends before the next O, B- or start of another entity.
    """
    entities: set[tuple[str, int, int]] = set()
    kind, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, tag_type = tag.partition("-")
        begins = prefix == "B" or (prefix == "I" and tag_type != kind)
        if kind is not None and (prefix == "O" or begins):
            entities.add((kind, start, i - 1))
            kind = None
        if begins:
            kind, start = tag_type, i
    return entities


def entity_metrics(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level micro precision/recall/F1 (an entity counts when type and span match exactly, as in
    seqeval's default mode and conlleval) and per-tag accuracy, over sentences of BIO tags."""
    found = correct = expected = tags = right_tags = 0
    for p, g in zip(predicted, gold, strict=True):
        p_entities, g_entities = bio_entities(p), bio_entities(g)
        found += len(p_entities)
        expected += len(g_entities)
        correct += len(p_entities & g_entities)
        tags += len(g)
        right_tags += sum(a == b for a, b in zip(p, g, strict=True))
    precision = correct / found if found else 0.0
    recall = correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "entity_f1": f1,
        "entity_precision": precision,
        "entity_recall": recall,
        "accuracy": right_tags / tags if tags else 0.0,
    }


def target_language(language: str | None) -> str | None:
    """The language of the reference texts: 'sl-en' (a translation pair) -> 'en', 'zh' -> 'zh'."""
    return language.rsplit("-", 1)[-1].lower() if language else None


def text_metrics(
    predictions: Sequence[str], references: Sequence[str], language: str | None = None
) -> dict[str, float]:
    """ROUGE-1/2/L (mean F-measure over examples), corpus BLEU, corpus chrF and METEOR (mean over
    examples, without WordNet synonyms: tasks.meteor) of generated texts.

    `language` is the task's (for a pair such as 'sl-en', the target side counts). English or unset:
    rouge-score's own tokenizer (lowercased ASCII letters and digits) with the Porter stemmer, as in
    the XSum papers and the Hugging Face summarization example. Other languages: Unicode words, each
    CJK character a token of its own, no stemming (rouge-score's tokenizer would drop every non-ASCII
    letter). BLEU uses sacrebleu's `zh` tokenizer for Chinese, `char` for Japanese, else `13a`.
    """
    import sacrebleu

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("No texts to score: the split is empty.")
    lang = target_language(language)
    bleu_tokenizer = {"zh": "zh", "ja": "char"}.get(lang or "", "13a")
    refs = [list(references)]
    return {
        **rouge_scores(predictions, references, lang),
        "bleu": float(sacrebleu.corpus_bleu(list(predictions), refs, tokenize=bleu_tokenizer).score),
        "chrf": float(sacrebleu.corpus_chrf(list(predictions), refs).score),
        "meteor": meteor(predictions, references, lang),
    }


def rouge_scores(predictions: Sequence[str], references: Sequence[str], lang: str | None) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure; see `text_metrics` for the tokenization by language."""
    from rouge_score import rouge_scorer

    english = lang in (None, "en")
    scorer = rouge_scorer.RougeScorer(
        ["rouge1", "rouge2", "rougeL"],
        use_stemmer=english,
        tokenizer=None if english else UnicodeWordTokenizer(),
    )
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)
        for name in totals:
            totals[name] += scores[name].fmeasure
    return {name: total / len(predictions) for name, total in totals.items()}
