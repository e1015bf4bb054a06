"""The cost table in the BERTić study's own style: time in seconds, RAM in MB, exact parameter counts,
then accuracy, precision, recall and F1, one row per task × model × method.

`tables.cost_table` rounds for reading (minutes, GB, "1.2M"); this one keeps the units and the exact
counts the study printed, so a row reads against the study's Table 2 digit by digit. Precision, recall
and F1 come in the task's averaging (`table_model.precision_recall_f1`), named in the last column, and are
never blank for a task type that has them (entity-level for tagging). A published-figures file asks
for it with `cost_table: true` (collect/published/slovene-bertic.yaml).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.collect.table_model import (
    Column,
    Table,
    fixed,
    flagged_method,
    in_task_order,
    one_class_note,
    precision_recall_f1,
    skipped_notes,
    text_column,
)

if TYPE_CHECKING:
    import pandas as pd

    from peftbench.collect.merge import Selection


def exact(value: Any) -> str:
    return f"{float(value):,.0f}"


def study_cost_table(best: pd.DataFrame, selection: Selection | None) -> Table:
    """Per task × model × method at the point chosen on validation: s, MB, exact params, A/P/R/F1."""
    columns = [
        text_column("task", "task"),
        text_column("model", "model"),
        text_column("method", "method"),
        Column("time (s)", "train_seconds", fixed(2)),
        Column("RAM (MB)", "peak_rss_mb", fixed(2)),
        Column("parameters", "trainable_params", exact),
        Column("accuracy", "accuracy", fixed(2)),
        Column("precision", "precision", fixed(2)),
        Column("recall", "recall", fixed(2)),
        Column("F1", "f1", fixed(2)),
        text_column("P/R/F1 averaging", "averaging"),
    ]
    rows = [_row(cell) for _, cell in in_task_order(best).iterrows()]
    notes = [
        "In the BERTić study's units: time inside Trainer.train() in seconds and trainable parameters, "
        "exact, as means over the chosen point's seeds; RAM: the peak resident memory of the run's process "
        "in MB (10⁶ bytes), the maximum over seeds; accuracy, precision, recall and F1 on test, means over "
        "seeds, P/R/F1 in the averaging named in the last column (binary: of the positive class).",
        *one_class_note(best),
        *skipped_notes(selection),
    ]
    return Table("cost_study", "Cost and quality in the study's units", columns, rows, notes)


def _row(cell: pd.Series) -> list[Any]:
    averaging, prf = precision_recall_f1(cell)
    return [
        cell["task"],
        cell["model"],
        flagged_method(cell),
        cell["train_seconds"],
        cell["peak_rss_bytes"] / 1e6,
        cell["trainable_params"],
        cell.get("test_accuracy"),
        *prf,
        averaging,
    ]
