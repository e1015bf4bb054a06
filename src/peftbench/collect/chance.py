"""What a task scores by chance, and which cell of a task is a real best.

A classification run records `majority_rate` among its test metrics (tasks.metrics.majority_rate):
the accuracy of always answering the test split's most frequent label (the best any constant
answer can do). Collected, it is the column `test_majority_rate`. On accuracy that rate is
chance; on MCC chance is 0.

A cell is the best of its task only when it is a winner a reader can trust:
- it has the single best test mean (a tie has no winner);
- it is above chance: strictly above the majority-class rate (accuracy) or 0 (MCC), and above
  every untrained `none` cell of the task (the model as it is, only its head trained);
- its predictions did not collapse to one class (such a score is the majority rate, not learned).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MAJORITY = "majority_rate"
MAJORITY_COLUMN = f"test_{MAJORITY}"
CHANCE_METHOD = "majority class"  # the method name of the chance row of a table
REFERENCE_FAMILY = "none"  # the untrained method: a floor, never a winner


def chance_score(cells: pd.DataFrame, metric: str) -> float | None:
    """The score of a constant answer on this task's test set, in `metric`; None when not known."""
    if metric == "mcc":
        return 0.0
    if metric != "accuracy" or MAJORITY_COLUMN not in cells:
        return None
    rates = cells[MAJORITY_COLUMN].dropna()
    return float(rates.max()) if len(rates) else None


def floor_of(cells: pd.DataFrame) -> float | None:
    """The score a winner of this task (its cells) must beat: chance, and every `none` cell."""
    higher = bool(cells["higher_is_better"].iloc[0])
    floors = [chance_score(cells, str(cells["metric"].iloc[0]))] if "metric" in cells else []
    if "method_family" in cells:
        floors += [float(v) for v in cells.loc[cells["method_family"] == REFERENCE_FAMILY, "test"]]
    floors = [f for f in floors if f is not None and not math.isnan(f)]
    if not floors:
        return None
    return max(floors) if higher else min(floors)


def real_best(cells: pd.DataFrame) -> Any | None:
    """The index of the task's one real best cell (see the module's rules), or None."""
    higher = bool(cells["higher_is_better"].iloc[0])
    candidates = cells
    if "method_family" in cells:
        candidates = candidates[candidates["method_family"] != REFERENCE_FAMILY]
    if "collapsed_seeds" in candidates:
        candidates = candidates[~(candidates["collapsed_seeds"].fillna(0) > 0)]
    scores = candidates["test"].dropna()
    if scores.empty:
        return None
    top = scores.max() if higher else scores.min()
    if (cells["test"] == top).sum() > 1:  # a tie, with any cell of the task: no winner
        return None
    floor = floor_of(cells)
    if floor is not None and not (top > floor if higher else top < floor):
        return None
    return scores.index[scores == top][0]
