"""Two ways to pick a cell's hyper-parameter point, printed side by side.

Our default chooses each cell's point on validation and reports test: a test number never picks
anything. Some studies reported instead the best score reached over their hyper-parameter sets on
the split they report (the PULI/HuLU study: "best value reached over several hyper-parameter
sets"). `select_best_over_grid` reproduces that protocol so a reproduction can be read against the
study on its own terms; `protocols_table` puts both choices beside each other, each labelled, so
the optimism of the grid maximum is visible (it is never below the validation-chosen mean when
the grid has one seed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.collect.merge import Selection, select_cells
from peftbench.collect.stats import IntervalMethod
from peftbench.collect.table_model import (
    Column,
    Score,
    Table,
    cells_by_key,
    score_of,
    task_columns,
    text_column,
)

if TYPE_CHECKING:
    import pandas as pd

VALIDATION_LABEL = "chosen on validation"
GRID_LABEL = "best over grid"


def select_best_over_grid(
    frame: pd.DataFrame, interval_method: IntervalMethod = "t", confidence: float = 0.95
) -> Selection:
    """Per cell, the point with the best mean TEST metric over the grid: the studies' protocol, optimistic."""
    return select_cells(frame, interval_method, confidence, choose_on="test")


def protocols_table(validation_best: pd.DataFrame, grid_best: pd.DataFrame) -> Table:
    """Rows model × method; per task, its test metric at the point chosen on validation, then the
    best over the grid (both means over seeds, with their interval)."""
    tasks = task_columns(validation_best)
    columns = [text_column("model", "model"), text_column("method", "method")]
    for task, metric in tasks:
        columns += [
            Column(f"{task} ({metric}) {VALIDATION_LABEL}", f"{task}_validation_chosen"),
            Column(f"{task} ({metric}) {GRID_LABEL}", f"{task}_best_over_grid"),
        ]
    grid = cells_by_key(grid_best)
    rows = []
    for (model, method), cells in validation_best.groupby(["model", "method"], sort=True):
        by_task = {cell["task"]: cell for _, cell in cells.iterrows()}
        row: list[Any] = [model, method]
        for task, _metric in tasks:
            chosen, best = by_task.get(task), grid.get((model, method, task))
            row += [_plain_score(chosen), _plain_score(best)]
        rows.append(row)
    notes = [
        f"{VALIDATION_LABEL}: the point with the best mean validation metric, test reported (our default). "
        f"{GRID_LABEL}: the point with the best mean test metric over the cell's hyper-parameter grid, as "
        "studies that report 'the best value reached over several hyper-parameter sets' did; it is chosen "
        "on the reported split and so reads high. Means over seeds ± the 95% t-interval half-width.",
    ]
    return Table("protocols", "Two selection protocols side by side", columns, rows, notes)


def _plain_score(cell: pd.Series | None) -> Score | None:
    """The cell's score without best/† marks (they belong to one protocol's column), or None."""
    return None if cell is None else score_of(cell).unmarked()
