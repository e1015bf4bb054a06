"""Metric names and their direction, as data: every metric a task type reports, once.

Each task type declares its metrics by naming a group here (tasks/); `METRIC_DIRECTION` is built
from the same groups, so a metric a task can report always has a direction, and a name outside them
(a typo, an unlisted metric) raises `UnknownMetric` instead of silently counting as higher-is-better.
"""

from __future__ import annotations

from peftbench.core.errors import UnknownMetric
from peftbench.core.spec import AVERAGINGS

PRECISION_RECALL_F1 = ("f1", "precision", "recall")

CLASSIFICATION_METRICS = ("accuracy", "mcc", "f1_macro", "precision_macro", "recall_macro")
AVERAGED_METRICS = tuple(f"{m}_{a}" for a in AVERAGINGS if a != "macro" for m in PRECISION_RECALL_F1)
"""Precision, recall and F1 in a task's own averaging, beside the macro ones every classification has."""
GROUPED_ANSWER_METRICS = ("f1a", "em")  # SuperGLUE's MultiRC metrics (tasks.metrics.answer_group_metrics)
CLOZE_METRICS = ("em", "f1")  # SuperGLUE's ReCoRD metrics (tasks.metrics.cloze_scores)
LIKELIHOOD_SCORES = ("accuracy", "acc_norm", "acc_bytes")  # the three columns of log-likelihood scores
MULTIPLE_CHOICE_METRICS = (*LIKELIHOOD_SCORES, "mcc")
TOKEN_CLASSIFICATION_METRICS = ("entity_f1", "entity_precision", "entity_recall", "accuracy")
COREF_METRICS = tuple(
    f"{metric}_{part}" for metric in ("conll", "muc", "b3", "ceafe") for part in PRECISION_RECALL_F1
)
"""What a coreference run reports: each metric's F1, precision and recall; `conll_f1` first."""
TEXT_METRICS = ("rouge1", "rouge2", "rougeL", "bleu", "chrf", "meteor")
JUDGE = "judge"
"""An LLM judge's mean score; `judge/<category>` is its mean over one category of prompts."""
INSTRUCTION_METRICS = (*TEXT_METRICS, JUDGE)
LOSS = "loss"  # what a generation run selects checkpoints on during training (TaskType.selection_metric)
COST_METRICS = ("train_seconds", "peak_rss_bytes", "peak_gpu_bytes", "gpu_hours", "trainable_params")

SCORE_GROUPS = (
    CLASSIFICATION_METRICS,
    AVERAGED_METRICS,
    GROUPED_ANSWER_METRICS,
    CLOZE_METRICS,
    MULTIPLE_CHOICE_METRICS,
    TOKEN_CLASSIFICATION_METRICS,
    COREF_METRICS,
    INSTRUCTION_METRICS,
)

METRIC_DIRECTION: dict[str, str] = {
    **{name: "higher" for group in SCORE_GROUPS for name in group},
    LOSS: "lower",
    **{name: "lower" for name in COST_METRICS},
}

SPLIT_PREFIXES = ("eval_", "validation_", "test_")  # the Trainer's keys and the collected columns
PER_CATEGORY = f"{JUDGE}/"  # `judge/<category>` has the judge's direction


def metric_name(name: str) -> str:
    """The listed metric a key or column names: `eval_loss` -> `loss`, `test_judge/math` -> `judge`."""
    if name in METRIC_DIRECTION:
        return name
    for prefix in SPLIT_PREFIXES:
        if name.startswith(prefix) and name.removeprefix(prefix):
            name = name.removeprefix(prefix)
            break
    return JUDGE if name.startswith(PER_CATEGORY) and name != PER_CATEGORY else name


def direction(metric: str) -> str:
    """ "higher" or "lower"; a name that is no listed metric raises UnknownMetric (with a near match)."""
    try:
        return METRIC_DIRECTION[metric_name(metric)]
    except KeyError:
        raise UnknownMetric(metric, METRIC_DIRECTION) from None


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of `metric` is better; an unknown metric raises UnknownMetric."""
    return direction(metric) == "higher"
