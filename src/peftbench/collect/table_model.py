"""The table model every table of `collect` is built from, and `formats` renders: cells, columns, rows.

A `Table` is data: columns (header, CSV key, how a value becomes text, alignment), rows of plain
values or `Score`s (a test mean with its interval and its marks in the column), and notes. The
specific tables (`tables`, `comparison`, `protocols`, `study_cost`, ...) read the chosen cells of
`merge.select_cells` through the few functions here, so each rule (how a score is read from a cell,
how a one-class cell is flagged, which precision/recall/F1 a cell reports) has one home.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

from peftbench.core.spec import Averaging

if TYPE_CHECKING:
    import pandas as pd

    from peftbench.collect.merge import Selection

MISSING = "–"


ONE_CLASS_MARK = "⚠"


SCORE_DIGITS = 3


CellKey = tuple[str, str, str]  # (model, method, task)


@dataclass(frozen=True)
class Score:
    """A cell's test metric: mean, interval bounds (NaN with one seed), n, and its mark in the column."""

    mean: float
    low: float
    high: float
    n: int
    best: bool = False
    overlaps_best: bool | None = None
    collapsed: int = 0  # seeds whose test predictions were all one class (collect.collapse)

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def symmetric(self) -> bool:
        return self.defined and math.isclose(self.high - self.mean, self.mean - self.low, abs_tol=1e-9)

    def texts(self, digits: int = SCORE_DIGITS) -> tuple[str, str]:
        """(the mean, the interval after it: ' ± h' for a t-interval, ' [lo, hi]' when asymmetric, or '')."""
        mean = f"{self.mean:.{digits}f}"
        if not self.defined:
            return mean, ""
        if self.symmetric:
            return mean, f" ± {self.high - self.mean:.{digits}f}"
        return mean, f" [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def unmarked(self) -> Score:
        """The score without best/† marks: they belong to one column, not to a copy shown elsewhere."""
        return Score(self.mean, self.low, self.high, self.n, collapsed=self.collapsed)


@dataclass(frozen=True)
class Column:
    """A column: its header for people, its key for CSV, how a value becomes text, its alignment."""

    header: str
    key: str
    fmt: Callable[[Any], str] = str
    align: str = "r"  # "l" or "r"


@dataclass
class Table:
    name: str  # file stem: main, cost, scale, summary, ...
    caption: str
    columns: list[Column]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)


def text_column(header: str, key: str) -> Column:
    """A left-aligned column of names (model, method, task)."""
    return Column(header, key, str, "l")


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fixed(digits: int) -> Callable[[Any], str]:
    return lambda v: f"{float(v):.{digits}f}"


def significant(digits: int = 3) -> Callable[[Any], str]:
    return lambda v: f"{float(v):.{digits}g}"


def count(value: Any) -> str:
    """Parameter counts as people write them: 950, 12.3k, 4.5M, 7.0B."""
    v = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= limit:
            return f"{v / limit:.1f}{suffix}"
    return f"{v:.0f}"


def gigabytes(value: Any) -> float:
    """Bytes as GB (1e9), the unit of every memory column."""
    return float(value) / 1e9


def task_columns(best: pd.DataFrame) -> list[tuple[str, str]]:
    """(task, its metric) in first-seen order: the order of every per-task column and row."""
    return list(dict.fromkeys(zip(best["task"], best["metric"], strict=True)))


def in_task_order(best: pd.DataFrame) -> pd.DataFrame:
    """The cells by task (first-seen order), then model and method: the rows of a per-cell table."""
    order = {task: i for i, (task, _metric) in enumerate(task_columns(best))}
    ordered = best.assign(_order=best["task"].map(order))
    return ordered.sort_values(["_order", "model", "method"], kind="stable")


def cells_by_key(best: pd.DataFrame | None) -> dict[CellKey, pd.Series]:
    """The chosen cells by (model, method, task); {} without cells."""
    if best is None or not len(best):
        return {}
    return {(c["model"], c["method"], c["task"]): c for _, c in best.iterrows()}


def collapsed_count(cell: pd.Series) -> int:
    """How many of the cell's seeds predicted one class on test (0 when not recorded)."""
    value = cell.get("collapsed_seeds", 0)
    return 0 if is_missing(value) else int(value)


def score_of(cell: pd.Series) -> Score:
    return Score(
        float(cell["test"]),
        float(cell["ci_low"]),
        float(cell["ci_high"]),
        int(cell["n_seeds"]),
        bool(cell.get("best_in_task", False)),
        cell.get("overlaps_best"),
        collapsed_count(cell),
    )


def flagged_method(cell: pd.Series) -> str:
    """The cell's method, with the one-class mark when some seed collapsed (a row label, not a score)."""
    return cell["method"] + (f" {ONE_CLASS_MARK}" if collapsed_count(cell) else "")


def one_class_note(best: pd.DataFrame) -> list[str]:
    """The note naming every cell whose predictions collapsed to one class; [] when none did."""
    if "collapsed_seeds" not in best or not (best["collapsed_seeds"].fillna(0) > 0).any():
        return []
    flagged = best[best["collapsed_seeds"].fillna(0) > 0]
    cells = [
        f"{c['model']} · {c['method']} · {c['task']} "
        f"({int(c['collapsed_seeds'])} of {int(c['n_seeds'])} seeds)"
        for _, c in flagged.iterrows()
    ]
    return [
        f"{ONE_CLASS_MARK}: predictions collapsed to one class — the model predicted the same label for "
        "every test example (MCC 0, macro recall 1/k), so the score is the majority-class rate, not "
        f"something learned: {'; '.join(cells)}."
    ]


def skipped_notes(selection: Selection | None) -> list[str]:
    """A note per cell that could not be chosen (`Selection.skipped`)."""
    return [f"Left out: {s}." for s in getattr(selection, "skipped", [])]


AVERAGINGS: tuple[str, ...] = get_args(Averaging)


ALWAYS_RECORDED: Averaging = "macro"  # every classification run records macro P/R/F1, whatever it sets


def _prf_keys(averaging: str) -> tuple[str, str, str]:
    return f"test_precision_{averaging}", f"test_recall_{averaging}", f"test_f1_{averaging}"


# Where a cell's precision, recall and F1 are, in order of preference: the task's own averaging
# (core.spec.Averaging: binary, micro, weighted), else macro, else entity-level (token classification).
PRF_SOURCES: tuple[tuple[str, tuple[str, str, str]], ...] = (
    *((a, _prf_keys(a)) for a in AVERAGINGS if a != ALWAYS_RECORDED),
    (ALWAYS_RECORDED, _prf_keys(ALWAYS_RECORDED)),
    ("entity", ("test_entity_precision", "test_entity_recall", "test_entity_f1")),
)


def precision_recall_f1(cell: pd.Series) -> tuple[str | None, list[Any]]:
    """(which averaging, [precision, recall, F1]) of a cell; (None, blanks) for a task type without them."""
    for averaging, keys in PRF_SOURCES:
        values = [cell.get(k) for k in keys]
        if not any(is_missing(v) for v in values):
            return averaging, values
    return None, [None, None, None]
