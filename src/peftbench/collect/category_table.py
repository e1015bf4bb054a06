"""The judge's score per category, as the appendix of the BELLE study prints it.

One row per model × method × task (the task is the training set: BELLE's data scales), one column
per category the judge averaged (`test_judge/<category>`, the categories in the order the results
name them) and the macro average over them (`test_judge`), all at the point chosen on validation,
mean over seeds. None when no cell was judged.

Where a shipped published study gives per-category figures for one of our cells (BELLE's
Appendix A, `collect/published/belle-instruct.yaml`), the study's row follows ours, labelled in a
`from` column; its average is the study's headline score (Table 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.collect.published import figures, read_published, shipped_studies
from peftbench.collect.table_model import (
    MISSING,
    CellKey,
    Column,
    Table,
    count,
    fixed,
    skipped_notes,
    text_column,
)

if TYPE_CHECKING:
    import pandas as pd

    from peftbench.collect.merge import Selection

PREFIX = "test_judge/"
JUDGE = "judge"
PAPER = "paper"

DATA_SCALES_NOTE = (
    "BELLE's data scales as files: 0.6M = the first 600,000 rows of train_2M_CN (so 0.6M ⊂ 2M), 2M = "
    "train_2M_CN, 4M = all of train_3.5M_CN (about 3.6M rows), math 0.25M = school_math_0.25M; the last "
    "1,000 rows of each select."
)


def published_categories() -> dict[CellKey, dict[str, float | None]]:
    """Per cell of the shipped studies, their judge figures: {"judge": average, "judge/<category>": ...}.

    Matched on our cell (model, method, task), which the chosen cells carry; they carry no sweep."""
    found: dict[CellKey, dict[str, float | None]] = {}
    for study in (read_published(path) for path in shipped_studies()):
        for f in figures(study):
            if f.metric == JUDGE or f.metric.startswith(JUDGE + "/"):
                found.setdefault((f.model, f.method, f.task), {})[f.metric] = f.paper
    return found


def category_table(best: pd.DataFrame, selection: Selection | None) -> Table | None:
    """Per-category judge scores and their macro average, or None without judged cells."""
    categories = [c.removeprefix(PREFIX) for c in best.columns if c.startswith(PREFIX)]
    if not categories or "test_judge" not in best:
        return None
    judged = best[best["test_judge"].notna()]
    paper = _study_rows(judged)
    categories = list(dict.fromkeys([*categories, *_paper_categories(paper)]))
    columns = [text_column("model", "model"), text_column("method", "method"), text_column("data", "task")]
    columns += [text_column("from", "source")] if paper else []
    columns += [Column(c, f"judge/{c}", fixed(3)) for c in categories]
    columns += [Column("average", "judge", fixed(3)), text_column("judge", "judge_name")]
    caption = "Judge score per category (0-1), by model, method and training set"
    return Table(
        "category", caption, columns, _rows(judged, categories, paper), _notes(judged, paper, selection)
    )


def _study_rows(judged: pd.DataFrame) -> dict[CellKey, dict[str, float | None]]:
    """The study's per-category figures for our judged cells (cells with an average only are left out)."""
    ours = set(zip(judged["model"], judged["method"], judged["task"], strict=True))
    return {k: v for k, v in published_categories().items() if k in ours and set(v) - {JUDGE}}


def _notes(
    judged: pd.DataFrame, paper: dict[CellKey, dict[str, float | None]], selection: Selection | None
) -> list[str]:
    notes = [
        "The judge's 0-1 score on test, averaged per category; average: the macro average over the "
        f"categories (each counts once, whatever its size). {MISSING}: no test prompt of that category. "
        "At the point chosen on validation, mean over seeds. judge: who scored (model @ server, prompt "
        "hash); cells not yet judged are listed below, not shown as zero."
    ]
    if any(str(t).startswith("belle_") for t in judged["task"]):
        notes.append(DATA_SCALES_NOTE)
    if paper:
        notes.append(
            f"from {PAPER}: the study's own figures for the cell (BELLE: Appendix A per category, Table "
            "4's score as the average), judged by gpt-3.5-turbo of April 2023."
        )
    return notes + skipped_notes(selection)


def _paper_categories(paper: dict[CellKey, dict[str, float | None]]) -> list[str]:
    """The categories the study gives figures for, in its column order."""
    return [m.removeprefix(JUDGE + "/") for figures_of in paper.values() for m in figures_of if m != JUDGE]


def _rows(
    judged: pd.DataFrame, categories: list[str], paper: dict[CellKey, dict[str, float | None]]
) -> list[list[Any]]:
    """Our row per cell, the study's right after it where it has one (`from`: ours / paper)."""
    rows: list[list[Any]] = []
    for _, cell in judged.sort_values(["model", "method", "task"], kind="stable").iterrows():
        key = (cell["model"], cell["method"], cell["task"])
        source = ["ours"] if paper else []
        scores = [*(cell.get(PREFIX + c) for c in categories), cell["test_judge"]]
        rows.append([*key, *source, *scores, cell.get("judge") or "–"])
        if key in paper:
            study = paper[key]
            scores = [*(study.get(f"{JUDGE}/{c}") for c in categories), study.get(JUDGE)]
            rows.append([*key, PAPER, *scores, "gpt-3.5-turbo (April 2023)"])
    return rows


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
