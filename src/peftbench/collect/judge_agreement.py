"""How far two judges agree over the same answers: Pearson and Spearman, over all and per category.

Where a second judge scored the answers a first one scored (`peftbench judge --judge OTHER`: a
newer model, another prompt, a local model beside a hosted one), each pair of judges gets a row
over every answer both scored, and one per category. Spearman is Pearson over the ranks (ties
share their mean rank). A correlation needs at least 3 answers and some spread in both judges'
scores; otherwise it is left empty.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

from peftbench.collect.table_model import Column, Table, fixed, text_column
from peftbench.core.judging import judges_of, read_scores

if TYPE_CHECKING:
    import pandas as pd

ALL = "all"


def paired_scores(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per (answer, judge) over these runs: run, split, index, category, judge label, score."""
    import pandas as pd

    rows = []
    for run_dir in run_dirs:
        for identity in judges_of(run_dir):
            for (split, index), s in read_scores(run_dir, identity).items():
                rows.append((run_dir.name, split, index, s.category, identity.label, s.score))
    return pd.DataFrame(rows, columns=["run", "split", "index", "category", "judge", "score"])


def agreement_rows(scores: pd.DataFrame) -> list[list[object]]:
    """[judge A, judge B, category, answers, Pearson, Spearman] for each pair, over all and per category."""
    if not len(scores):
        return []
    wide = scores.pivot_table(index=["run", "split", "index", "category"], columns="judge", values="score")
    rows: list[list[object]] = []
    for first, second in combinations(sorted(wide.columns), 2):
        both = wide[[first, second]].dropna().reset_index()
        if not len(both):
            continue
        groups = [(ALL, both), *sorted(both.groupby("category", sort=True), key=lambda g: str(g[0]))]
        for category, part in groups:
            pearson, spearman = _correlations(part[first], part[second])
            rows.append([first, second, category or "–", len(part), pearson, spearman])
    return rows


def _correlations(a: pd.Series, b: pd.Series) -> tuple[float | None, float | None]:
    if len(a) < 3 or a.nunique() < 2 or b.nunique() < 2:
        return None, None
    return float(a.corr(b)), float(a.rank().corr(b.rank()))


def agreement_table(frame: pd.DataFrame) -> Table | None:
    """The agreement of every two judges that scored the same answers of these runs, or None."""
    if "run_dir" not in frame or "judge" not in frame:
        return None
    rows = agreement_rows(paired_scores([Path(d) for d in frame["run_dir"].dropna().unique()]))
    if not rows:
        return None
    columns = [
        text_column("judge A", "judge_a"),
        text_column("judge B", "judge_b"),
        text_column("category", "category"),
        Column("answers", "answers"),
        Column("Pearson", "pearson", fixed(3)),
        Column("Spearman", "spearman", fixed(3)),
    ]
    notes = [
        "Over every validation and test answer both judges scored (all runs); per category below "
        f"'{ALL}'. Spearman: Pearson over ranks. Empty: fewer than 3 answers, or no spread in a judge's "
        "scores."
    ]
    return Table("judge_agreement", "Agreement of judges over the same answers", columns, rows, notes)
