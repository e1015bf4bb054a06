"""Our numbers beside the study's own: the "paper" tables of a report.

For every published figure of the studies that match the results' sweeps (`collect.published`):
our value for the same model × method × task (the point chosen on validation), the paper's, and
the difference, so a reader sees at a glance where a reproduction stands. Scores (`paper`) are
fractions, the study's percent converted; ours − paper in the same unit. Costs (`paper_cost`:
parameters, time, memory) are printed in the study's unit, with ours / paper. Where the study
chose its figures as the best over its grid, our grid maximum (`collect.protocols`) is printed
too, labelled, and the two protocols' table side by side (`protocols`). A figure illegible in the
source, or a cell we have no result for, prints "–".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.collect.merge import successful
from peftbench.collect.protocols import GRID_LABEL, VALIDATION_LABEL, protocols_table, select_best_over_grid
from peftbench.collect.published import Figure, PublishedStudy, figures, our_value, published_for
from peftbench.collect.study_cost import study_cost_table
from peftbench.collect.table_model import CellKey, Column, Table, cells_by_key, fixed, is_missing, text_column

if TYPE_CHECKING:
    import pandas as pd

    from peftbench.collect.merge import Selection


def signed(digits: int) -> Callable[[Any], str]:
    return lambda v: f"{float(v):+.{digits}f}"


def ratio(value: Any) -> str:
    return f"×{float(value):.3g}"


def figure_count(value: Any) -> str:
    """Costs as the studies print them: exact integers for counts, three significant digits else."""
    v = float(value)
    return f"{v:,.0f}" if v.is_integer() and abs(v) >= 1000 else f"{v:.4g}"


def comparison_tables(
    frame: pd.DataFrame,
    best: pd.DataFrame | None,
    selection: Selection | None,
    extra: list[Path] | tuple[Path, ...] = (),
) -> list[Table]:
    """The paper tables for the studies of these results' sweeps (none when no study matches)."""
    studies = published_for(_sweeps(frame), extra)
    if not studies or best is None or selection is None:
        return []
    grid = _grid_best(frame, selection, studies)
    scores, costs = _published_figures(studies)
    tables = [paper_table(scores, best, grid, studies), paper_cost_table(costs, best)]
    if grid is not None:
        tables.append(protocols_table(best, grid))
    if any(s.cost_table for s in studies):
        tables.append(study_cost_table(best, selection))
    return [t for t in tables if t.rows]


def _published_figures(
    studies: list[PublishedStudy],
) -> tuple[list[Figure], list[tuple[PublishedStudy, Figure]]]:
    """The studies' figures: (scores, (study, cost) pairs), in the studies' order."""
    found = [(study, f) for study in studies for f in figures(study)]
    return [f for _, f in found if not f.is_cost], [(s, f) for s, f in found if f.is_cost]


def _sweeps(frame: pd.DataFrame) -> set[str]:
    return set(frame["sweep"]) if len(frame) and "sweep" in frame else set()


def _grid_best(
    frame: pd.DataFrame, selection: Selection, studies: list[PublishedStudy]
) -> pd.DataFrame | None:
    """Our best-over-grid cells, only when some study chose its figures so (and there are successes)."""
    if not any(s.selection == "best_over_grid" for s in studies) or not len(successful(frame)):
        return None
    return select_best_over_grid(frame, selection.interval, selection.confidence).best


def _difference(ours: float | None, paper: float | None) -> float | None:
    return None if ours is None or paper is None else ours - paper


def paper_table(
    found: list[Figure], best: pd.DataFrame, grid: pd.DataFrame | None, studies: list[PublishedStudy]
) -> Table:
    """Per published score: ours (chosen on validation), the paper's, ours − paper; with the grid maximum
    and its difference beside them where the study chose that way."""
    with_grid = grid is not None and any(f.selection == "best_over_grid" for f in found)
    columns = [
        text_column("model", "model"),
        text_column("method", "method"),
        text_column("task", "task"),
        text_column("metric", "metric"),
        Column(f"ours ({VALIDATION_LABEL})", "ours", fixed(3)),
        Column("paper", "paper", fixed(3)),
        Column("ours − paper", "difference", signed(3)),
    ]
    if with_grid:
        columns += [
            Column(f"ours ({GRID_LABEL})", "ours_grid", fixed(3)),
            Column("grid − paper", "grid_difference", signed(3)),
        ]
    cells, grid_cells = cells_by_key(best), cells_by_key(grid)
    rows = []
    for f in found:
        ours = _ours(cells, f)
        row = [f.model, f.method, f.task, f.metric, ours, f.paper, _difference(ours, f.paper)]
        if with_grid:
            grid_ours = _ours(grid_cells, f) if f.selection == "best_over_grid" else None
            row += [grid_ours, _difference(grid_ours, f.paper)]
        rows.append(row)
    notes = [*_study_notes(studies, "score"), _MISSING_NOTE]
    if with_grid:
        notes.append(
            f"ours ({GRID_LABEL}): the best mean test score over the cell's hyper-parameter grid, the "
            "study's own protocol, printed only for studies that chose so; it is chosen on the reported "
            "split and reads high."
        )
    caption = "Ours beside the studies' published scores"
    return Table("paper", caption, columns, rows, notes)


def paper_cost_table(found: list[tuple[PublishedStudy, Figure]], best: pd.DataFrame) -> Table:
    """Per published cost (parameters, seconds, MB, hours per epoch): ours in the study's unit, the
    paper's, ours / paper."""
    columns = [
        text_column("model", "model"),
        text_column("method", "method"),
        text_column("task", "task"),
        text_column("figure", "figure"),
        Column("ours", "ours", figure_count),
        Column("paper", "paper", figure_count),
        Column("ours / paper", "ratio", ratio),
    ]
    cells = cells_by_key(best)
    rows = []
    for study, f in found:
        factor = study.columns[f.column].factor or 1.0
        ours = _ours(cells, f)
        ours_shown = None if ours is None else ours / factor
        paper_shown = None if f.paper is None else f.paper / factor
        share = None if is_missing(ours) or not f.paper else ours / f.paper
        rows.append([f.model, f.method, f.task, f"{f.column} ({f.metric})", ours_shown, paper_shown, share])
    notes = [
        *_study_notes(list({s.study: s for s, _ in found}.values()), "cost"),
        "Each figure in the study's own unit (MB = 10⁶ bytes); ours: the mean over the chosen point's seeds "
        "(peak memory: the maximum), host RAM as the peak resident memory of the run's process.",
        _MISSING_NOTE,
    ]
    return Table("paper_cost", "Ours beside the studies' published costs", columns, rows, notes)


_MISSING_NOTE = (
    "– under paper: the figure is illegible in the source; – under ours: no successful run of that "
    "model × method × task in these results."
)


def _ours(cells: dict[CellKey, pd.Series], f: Figure) -> float | None:
    cell = cells.get((f.model, f.method, f.task))
    return None if cell is None else our_value(cell, f.metric)


def _study_notes(studies: Iterable[PublishedStudy], kind: str) -> list[str]:
    notes = []
    for s in studies:
        scale = (
            " (printed in percent; shown as fractions)" if s.scale == "percent" and kind == "score" else ""
        )
        chose = (
            "the best over its hyper-parameter sets on the reported split"
            if s.selection == "best_over_grid"
            else "on validation"
        )
        notes.append(f"Paper: {s.study}, {s.source}{scale}; it chose {chose}. Figures: {Path(s.file).name}.")
    return notes
