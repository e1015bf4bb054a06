"""The cost table in the BERTić study's own style: time in seconds, RAM in MB, exact parameter counts,
then accuracy, precision, recall and F1, one row per task × model × method.

`tables.cost_table` rounds for reading (minutes, GB, "1.2M"); this one keeps the units and the exact
counts the study printed, so a row reads against the study's Table 2 digit by digit. Precision, recall
and F1 come in the task's averaging (`tables.precision_recall_f1`), named in the last column, and are
never blank for a task type that has them (entity-level for tagging). A published-figures file asks
for it with `cost_table: true` (collect/published/slovene-bertic.yaml).
"""

from __future__ import annotations

from typing import Any

from peftbench.collect.tables import (
    ONE_CLASS_MARK,
    Column,
    Table,
    _collapsed,
    _one_class_note,
    _skipped_notes,
    _task_columns,
    _text,
    fixed,
    precision_recall_f1,
)


def exact(value: Any) -> str:
    return f"{float(value):,.0f}"


def study_cost_table(best: Any, selection: Any) -> Table:
    """Per task × model × method at the point chosen on validation: s, MB, exact params, A/P/R/F1."""
    columns = [
        _text("task", "task"),
        _text("model", "model"),
        _text("method", "method"),
        Column("time (s)", "train_seconds", fixed(2)),
        Column("RAM (MB)", "peak_rss_mb", fixed(2)),
        Column("parameters", "trainable_params", exact),
        Column("accuracy", "accuracy", fixed(2)),
        Column("precision", "precision", fixed(2)),
        Column("recall", "recall", fixed(2)),
        Column("F1", "f1", fixed(2)),
        _text("P/R/F1 averaging", "averaging"),
    ]
    order = {task: i for i, (task, _m) in enumerate(_task_columns(best))}
    ordered = best.assign(_order=best["task"].map(order)).sort_values(
        ["_order", "model", "method"], kind="stable"
    )
    rows = []
    for _, cell in ordered.iterrows():
        averaging, prf = precision_recall_f1(cell)
        rows.append(
            [
                cell["task"],
                cell["model"],
                cell["method"] + (f" {ONE_CLASS_MARK}" if _collapsed(cell) else ""),
                cell["train_seconds"],
                cell["peak_rss_bytes"] / 1e6,
                cell["trainable_params"],
                cell.get("test_accuracy"),
                *prf,
                averaging,
            ]
        )
    notes = [
        "In the BERTić study's units: time inside Trainer.train() in seconds and trainable parameters, "
        "exact, as means over the chosen point's seeds; RAM: the peak resident memory of the run's process "
        "in MB (10⁶ bytes), the maximum over seeds; accuracy, precision, recall and F1 on test, means over "
        "seeds, P/R/F1 in the averaging named in the last column (binary: of the positive class).",
        *_one_class_note(best),
        *_skipped_notes(selection),
    ]
    return Table("cost_study", "Cost and quality in the study's units", columns, rows, notes)
