"""The judge's score per category, as the appendix of the BELLE study prints it.

One row per model × method × task (the task is the training set: BELLE's data scales), one column
per category the judge averaged (`test_judge/<category>`, the categories in the order the results
name them) and the macro average over them (`test_judge`), all at the point chosen on validation,
mean over seeds. None when no cell was judged.
"""

from __future__ import annotations

from typing import Any

from peftbench.collect.tables import MISSING, Column, Table, fixed

PREFIX = "test_judge/"


def category_table(best: Any, selection: Any) -> Table | None:
    """Per-category judge scores and their macro average, or None without judged cells."""
    categories = [c.removeprefix(PREFIX) for c in best.columns if c.startswith(PREFIX)]
    if not categories or "test_judge" not in best:
        return None
    judged = best[best["test_judge"].notna()]
    columns = [Column("model", "model", str, "l"), Column("method", "method", str, "l")]
    columns += [Column("data", "task", str, "l")]
    columns += [Column(c, f"judge/{c}", fixed(3)) for c in categories]
    columns += [Column("average", "judge", fixed(3))]
    rows = [
        [
            cell["model"],
            cell["method"],
            cell["task"],
            *(cell.get(PREFIX + c) for c in categories),
            cell["test_judge"],
        ]
        for _, cell in judged.sort_values(["model", "method", "task"], kind="stable").iterrows()
    ]
    notes = [
        "The judge's 0-1 score on test, averaged per category; average: the macro average over the "
        f"categories (each counts once, whatever its size). {MISSING}: no test prompt of that category. "
        "At the point chosen on validation, mean over seeds."
    ]
    notes += [f"Left out: {s}." for s in getattr(selection, "skipped", [])]
    return Table(
        "category", "Judge score per category (0-1), by model, method and training set", columns, rows, notes
    )
