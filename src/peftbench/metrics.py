"""Task metrics (from scikit-learn) and which direction of each metric is better."""

from __future__ import annotations

from collections.abc import Sequence

METRIC_DIRECTION: dict[str, str] = {
    "accuracy": "higher",
    "mcc": "higher",
    "f1_macro": "higher",
    "precision_macro": "higher",
    "recall_macro": "higher",
    "loss": "lower",
    "train_seconds": "lower",
    "peak_rss_bytes": "lower",
    "peak_gpu_bytes": "lower",
    "gpu_hours": "lower",
    "trainable_params": "lower",
}

CLASSIFICATION_METRICS = ("accuracy", "mcc", "f1_macro", "precision_macro", "recall_macro")


def classification_metrics(predictions: Sequence[int], labels: Sequence[int]) -> dict[str, float]:
    """Accuracy, MCC and macro precision/recall/F1; classes absent from both count as zero, not NaN."""
    from sklearn.metrics import accuracy_score, matthews_corrcoef, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "mcc": float(matthews_corrcoef(labels, predictions)),
        "f1_macro": float(f1),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
    }


def is_better(metric: str, a: float, b: float) -> bool:
    """Whether value `a` beats `b` for this metric."""
    return a < b if METRIC_DIRECTION.get(metric, "higher") == "lower" else a > b
