"""Runs whose test predictions collapsed to one class: the model predicts the same label for everything.

Such a run scores the majority-class rate on accuracy, MCC 0 and macro recall 1/k (k classes). Its
number looks like a result and is not one, so the tables and plots flag every cell that has one.

The run's `test_predictions.jsonl` decides when it is there (every label the same). Without it, the
metrics that only a one-class prediction gives are the sign: MCC exactly 0 together with a macro recall
of exactly 1/k for a whole number k ≥ 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.core.predictions import UnreadablePredictions, predictions_path, read_predictions

if TYPE_CHECKING:
    import pandas as pd


def predicts_one_class(run: pd.Series) -> bool:
    """Whether this run (a row of the collected frame) predicted a single class for the whole test set."""
    run_dir = run.get("run_dir")
    if isinstance(run_dir, str) and predictions_path(Path(run_dir)).is_file():
        try:
            labels = {p.label for p in read_predictions(predictions_path(Path(run_dir)))}
        except UnreadablePredictions:
            labels = set()
        if labels and None not in labels:
            return len(labels) == 1
    return _metrics_say_one_class(run.get("test_mcc"), run.get("test_recall_macro"))


def _metrics_say_one_class(mcc: Any, recall: Any) -> bool:
    if not _number(mcc) or not _number(recall) or mcc != 0.0 or not 0.0 < recall <= 0.5:
        return False
    classes = 1.0 / recall
    return math.isclose(classes, round(classes), abs_tol=1e-6)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def collapsed_seeds(seeds: pd.DataFrame) -> int:
    """How many of a point's runs (rows of the collected frame) predicted a single class on test."""
    return sum(predicts_one_class(run) for _, run in seeds.iterrows())
