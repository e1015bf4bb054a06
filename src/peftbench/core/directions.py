"""Metric direction as data: which metrics are better higher, which lower."""

from __future__ import annotations

METRIC_DIRECTION: dict[str, str] = {
    "accuracy": "higher",
    "mcc": "higher",
    "f1_macro": "higher",
    "precision_macro": "higher",
    "recall_macro": "higher",
    **{f"{m}_{a}": "higher" for a in ("binary", "micro", "weighted") for m in ("f1", "precision", "recall")},
    "f1a": "higher",
    "em": "higher",
    "f1": "higher",
    "acc_norm": "higher",
    "acc_bytes": "higher",
    "entity_f1": "higher",
    "entity_precision": "higher",
    "entity_recall": "higher",
    **{
        f"{m}_{part}": "higher"
        for m in ("conll", "muc", "b3", "ceafe")
        for part in ("f1", "precision", "recall")
    },
    "rouge1": "higher",
    "rouge2": "higher",
    "rougeL": "higher",
    "bleu": "higher",
    "chrf": "higher",
    "meteor": "higher",
    "judge": "higher",
    "loss": "lower",
    "train_seconds": "lower",
    "peak_rss_bytes": "lower",
    "peak_gpu_bytes": "lower",
    "gpu_hours": "lower",
    "trainable_params": "lower",
}


def higher_is_better(metric: str) -> bool:
    """From METRIC_DIRECTION; a metric it does not list counts as higher-is-better."""
    return METRIC_DIRECTION.get(metric, "higher") == "higher"
