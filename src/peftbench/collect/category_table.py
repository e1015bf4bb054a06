"""The judge's score per category, as the appendix of the BELLE study prints it.

One row per model × method × task (the task is the training set: BELLE's data scales), one column
per category the judge averaged (`test_judge/<category>`, the categories in the order the results
name them) and the macro average over them (`test_judge`), all at the point chosen on validation,
mean over seeds. None when no cell was judged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peftbench.collect.table_model import MISSING, Column, Table, count, fixed, skipped_notes, text_column

if TYPE_CHECKING:
    import pandas as pd

    from peftbench.collect.merge import Selection

PREFIX = "test_judge/"


def category_table(best: pd.DataFrame, selection: Selection | None) -> Table | None:
    """Per-category judge scores and their macro average, or None without judged cells."""
    categories = [c.removeprefix(PREFIX) for c in best.columns if c.startswith(PREFIX)]
    if not categories or "test_judge" not in best:
        return None
    judged = best[best["test_judge"].notna()]
    columns = [text_column("model", "model"), text_column("method", "method"), text_column("data", "task")]
    columns += [Column(c, f"judge/{c}", fixed(3)) for c in categories]
    columns += [Column("average", "judge", fixed(3)), text_column("judge", "judge_name")]
    rows = [
        [
            cell["model"],
            cell["method"],
            cell["task"],
            *(cell.get(PREFIX + c) for c in categories),
            cell["test_judge"],
            cell.get("judge") or "–",
        ]
        for _, cell in judged.sort_values(["model", "method", "task"], kind="stable").iterrows()
    ]
    notes = [
        "The judge's 0-1 score on test, averaged per category; average: the macro average over the "
        f"categories (each counts once, whatever its size). {MISSING}: no test prompt of that category. "
        "At the point chosen on validation, mean over seeds. judge: who scored (model @ server, prompt "
        "hash); cells not yet judged are listed below, not shown as zero."
    ]
    notes += skipped_notes(selection)
    return Table(
        "category", "Judge score per category (0-1), by model, method and training set", columns, rows, notes
    )


JUDGE_TOKEN_COLUMNS = [
    Column("judge tokens sent", "judge_tokens_sent", count),
    Column("judge tokens received", "judge_tokens_received", count),
]


def has_judge_tokens(best: pd.DataFrame) -> bool:
    """Some cell was judged apart, its tokens counted (a hosted judge is paid per token)."""
    return "judge_tokens_sent" in best and bool(best["judge_tokens_sent"].notna().any())


def judge_token_cells(cell: pd.Series) -> list[object]:
    return [cell.get("judge_tokens_sent"), cell.get("judge_tokens_received")]


def judge_notes(best: pd.DataFrame) -> list[str]:
    """Which judge the judge figures come from: model @ server, prompt hash (collect.judged)."""
    if "judge" not in best:
        return []
    judges = sorted(str(j) for j in best["judge"].dropna().unique())
    if not judges:
        return []
    tokens = (
        " Judge tokens: sent and received over every validation and test answer of the cell's seeds (mean)."
        if has_judge_tokens(best)
        else ""
    )
    return [f"Judge scores by {'; '.join(judges)} (model @ server, prompt hash).{tokens}"]
