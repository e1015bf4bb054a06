"""The paper tables, as `table_model.Table`s; `formats` renders them (Markdown, LaTeX booktabs, CSV, HTML).

- `main_table`: like the HuLU tables. Rows model × method, one column per task with the task's own
  metric (MCC for CoLA-like tasks, accuracy for most others) on test, at the point chosen on
  validation: mean ± 95% interval over seeds; the column's best in bold, † where a cell's interval
  overlaps the best's.
- `cost_table`: like the BERTić table. Per task × model × method: trainable parameters, train time,
  GPU-hours, GPU energy (when measured), peak GPU memory, host RAM, and test accuracy / precision /
  recall / F1 (in the task's averaging: macro unless it sets one; entity-level for tagging tasks).
- `scale_table`: like the BELLE table. Per model × method: the score averaged over tasks, the
  parameters the method adds, and training hours per epoch (summed over tasks); when every task is
  tested on one common evaluation set (`test_source`, BELLE's), one row per model × method × task:
  the tasks are then the data-scale axis. `collect.category_table` adds the judge's per-category table.
- `summary_table`: main plus three cost columns; what `collect` prints and writes to table.md.

All take the output of `merge.mark_best_per_task(merge.select_cells(...).best)`; `paper_tables` is
the set a report prints from the chosen cells alone.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from peftbench.collect.category_table import (
    JUDGE_TOKEN_COLUMNS,
    category_table,
    has_judge_tokens,
    judge_notes,
    judge_token_cells,
)
from peftbench.collect.chance import CHANCE_METHOD, MAJORITY_COLUMN, chance_score
from peftbench.collect.leaderboard_scores import leaderboard_tables
from peftbench.collect.table_model import (
    MISSING,
    Column,
    Score,
    Table,
    count,
    fixed,
    flagged_method,
    gigabytes,
    in_task_order,
    one_class_note,
    precision_recall_f1,
    score_of,
    significant,
    skipped_notes,
    task_columns,
    text_column,
)

if TYPE_CHECKING:
    import pandas as pd

    from peftbench.collect.merge import Selection


def _seed_range(cells: pd.DataFrame) -> str:
    low, high = int(cells["n_seeds"].min()), int(cells["n_seeds"].max())
    return str(low) if low == high else f"{low}–{high}"


def _interval_note(selection: Selection) -> str:
    percent = f"{100 * selection.confidence:g}%"
    if selection.interval == "bootstrap":
        how = f"[low, high]: {percent} percentile bootstrap interval of the mean (10,000 resamples, seed 0)"
    else:
        how = f"mean ± half-width of the {percent} Student t-interval"
    return (
        f"Test metric at the hyper-parameter point with the best mean validation metric (never chosen on "
        f"test); {how} over seeds; seeds: n per cell."
    )


def _mark_notes(best: pd.DataFrame) -> list[str]:
    notes = []
    if "best_in_task" in best and best["best_in_task"].any():
        text = "Bold: the one best mean of the column, above chance and `none` (a tie: no bold)."
        if (best["overlaps_best"] == True).any():  # noqa: E712 - the column holds True/False/None
            text += " †: interval overlaps the best's, so these seeds do not separate the two."
        notes.append(text)
    if (best["n_seeds"] < 2).any():
        notes.append("No interval where a cell has a single seed.")
    return notes


def _chance_rows(best: pd.DataFrame, tasks: list[tuple[str, str]], width: int) -> list[list[Any]]:
    """The 'majority class' row (chance per task, `chance.chance_score`), padded to `width`; [] if unknown."""
    if MAJORITY_COLUMN not in best or best[MAJORITY_COLUMN].isna().all():
        return []  # results from before runs recorded it, or no classification task
    scores = [chance_score(best[best["task"] == task], metric) for task, metric in tasks]
    cells = [None if s is None else Score(s, math.nan, math.nan, 0) for s in scores]
    row = ["", CHANCE_METHOD, MISSING, *cells]
    return [row + [None] * (width - len(row))]


def _chance_note(rows: list[list[Any]]) -> list[str]:
    if not any(row[1] == CHANCE_METHOD for row in rows):
        return []
    return [
        f"{CHANCE_METHOD}: what always answering the test set's most frequent label scores (accuracy: "
        "its share; MCC: 0): chance, the floor every method has to clear."
    ]


def main_table(best: pd.DataFrame, selection: Selection, chance: bool = True) -> Table:
    """Method × task with each task's own metric (the HuLU table), and a chance row where it is known."""
    tasks = task_columns(best)
    columns = [text_column("model", "model"), text_column("method", "method"), Column("seeds", "seeds")]
    columns += [Column(f"{task} ({metric})", task) for task, metric in tasks]
    rows = []
    for (model, method), cells in best.groupby(["model", "method"], sort=True):
        by_task = {cell["task"]: cell for _, cell in cells.iterrows()}
        scores = [score_of(by_task[t]) if t in by_task else None for t, _ in tasks]
        rows.append([model, method, _seed_range(cells), *scores])
    if chance:
        rows += _chance_rows(best, tasks, len(columns))
    notes = [
        _interval_note(selection),
        *_mark_notes(best),
        *_chance_note(rows),
        *one_class_note(best),
        *judge_notes(best),
        *skipped_notes(selection),
    ]
    return Table("main", "Test metric per task, by model and method", columns, rows, notes)


def _summary_costs(cells: pd.DataFrame, gpu: bool) -> list[float]:
    """A summary row's cost cells: trainable % and train s (means over its tasks), peak memory (maximum)."""
    share = cells["trainable_params"] / cells["total_params"].where(cells["total_params"] > 0)
    costs = [
        float(100 * share.mean()),
        float(cells["train_seconds"].mean()),
        gigabytes(cells["peak_rss_bytes"].max()),
    ]
    return costs + ([gigabytes(cells["peak_gpu_bytes"].max())] if gpu else [])


def summary_table(best: pd.DataFrame, selection: Selection) -> Table:
    """The main table plus trainable %, train seconds and peak memory: what `collect` prints."""
    table = main_table(best, selection, chance=False)
    gpu = best["peak_gpu_bytes"].notna().any()
    table.columns += [
        Column("trainable %", "trainable_percent", significant(3)),
        Column("train s", "train_seconds", fixed(1)),
        Column("peak RSS GB", "peak_rss_gb", fixed(2)),
    ] + ([Column("peak GPU GB", "peak_gpu_gb", fixed(2))] if gpu else [])
    for row, (_key, cells) in zip(table.rows, best.groupby(["model", "method"], sort=True), strict=True):
        row += _summary_costs(cells, gpu)
    table.rows += _chance_rows(best, task_columns(best), len(table.columns))
    table.notes[1:1] = _chance_note(table.rows)
    table.notes.insert(
        1,
        "Cost columns, over a row's tasks (each task at its chosen point): trainable % and train s (inside "
        "Trainer.train(), mean over seeds) are means over the tasks; peak RSS GB"
        + (" and peak GPU GB are" if gpu else " is")
        + " the maximum over tasks and seeds.",
    )
    table.name, table.caption = "summary", "Test metric per task, and cost, by model and method"
    return table


def _has_energy(best: pd.DataFrame) -> bool:
    """Some cell has GPU energy from NVML's counter."""
    return "energy_wh" in best and bool(best["energy_wh"].notna().any())


def _energy_note(best: pd.DataFrame) -> list[str]:
    if not _has_energy(best):
        return []
    return [
        "Energy Wh: GPU energy from NVML's total-energy counter, summed over the run's GPUs, mean over "
        "seeds; for runs packed several to a GPU, each run's share of the GPU's energy by the time-weighted "
        "GPU utilisation of its process (an estimate). – where no counter was read (CPU, no NVML)."
    ]


COST_COLUMNS = [
    text_column("task", "task"),
    text_column("model", "model"),
    text_column("method", "method"),
    Column("trainable params", "trainable_params", count),
    Column("trainable %", "trainable_percent", significant(3)),
    Column("train min", "train_minutes", significant(3)),
    Column("GPU-h", "gpu_hours", significant(3)),
    Column("peak GPU GB", "peak_gpu_gb", fixed(2)),
    Column("host RAM GB", "peak_rss_gb", fixed(2)),
    Column("accuracy", "accuracy", fixed(3)),
    Column("precision", "precision", fixed(3)),
    Column("recall", "recall", fixed(3)),
    Column("F1", "f1", fixed(3)),
]


ENERGY_COLUMN = Column("energy Wh", "energy_wh", significant(3))


ENERGY_AT = 7  # the energy column sits after GPU-h


def _cost_row(cell: pd.Series, energy: bool) -> list[Any]:
    row = [
        cell["task"],
        cell["model"],
        flagged_method(cell),
        cell["trainable_params"],
        100 * cell["trainable_params"] / cell["total_params"] if cell["total_params"] else None,
        cell["train_seconds"] / 60,
        cell["gpu_hours"],
        gigabytes(cell["peak_gpu_bytes"]),
        gigabytes(cell["peak_rss_bytes"]),
        cell.get("test_accuracy"),
        *precision_recall_f1(cell)[1],
    ]
    if energy:
        row.insert(ENERGY_AT, cell["energy_wh"] if cell["energy_wh"] == cell["energy_wh"] else None)
    return row


def cost_table(best: pd.DataFrame, selection: Selection) -> Table:
    """Per task × model × method: what it cost and how it scored (the BERTić table)."""
    energy = _has_energy(best)  # GPU runs with NVML's energy counter
    tokens = has_judge_tokens(best)
    columns = list(COST_COLUMNS) + (JUDGE_TOKEN_COLUMNS if tokens else [])
    if energy:
        columns.insert(ENERGY_AT, ENERGY_COLUMN)
    rows = [
        _cost_row(cell, energy) + (judge_token_cells(cell) if tokens else [])
        for _, cell in in_task_order(best).iterrows()
    ]
    notes = [
        *_energy_note(best),
        *judge_notes(best),
        "Per task, at the point chosen on validation: trainable params, train min, GPU-h and the test "
        "metrics are means over its seeds (precision, recall and F1 in the task's averaging, macro unless it "
        "sets one; entity-level for tagging tasks); peak GPU "
        "GB and host RAM GB are the maximum over its seeds. Train time is inside Trainer.train(); host RAM "
        "is the peak resident memory of the run's process; peak GPU memory is "
        "torch.cuda.max_memory_allocated (– on CPU).",
        *one_class_note(best),
        *skipped_notes(selection),
    ]
    return Table("cost", "Cost and quality per task, model and method", columns, rows, notes)


def shares_one_eval_set(best: pd.DataFrame) -> bool:
    """Whether every cell is tested on the same evaluation set of its own (`test_source`): the tasks
    then differ only in their training data, a data-scale axis (BELLE's 0.6M, 2M, 4M)."""
    return "eval_set" in best and bool(best["eval_set"].notna().all()) and best["eval_set"].nunique() == 1


def added_params(cells: pd.DataFrame) -> float:
    """Parameters the method trains on top of the frozen model, mean over the cells; 0 where every
    weight trains (trainable = total: full fine-tuning adds nothing, it trains all)."""
    trains_all = (cells["trainable_params"] >= cells["total_params"]) & (cells["total_params"] > 0)
    return 0 if trains_all.all() else float(cells["trainable_params"].mean())


def _scale_columns(by_data: bool) -> list[Column]:
    return [
        text_column("model", "model"),
        text_column("method", "method"),
        *([text_column("data", "task")] if by_data else []),
        Column("score", "score", fixed(3)),
        *([] if by_data else [Column("tasks", "tasks")]),
        Column("added params", "added_params", count),
        Column("train h / epoch", "train_hours_per_epoch", significant(3)),
    ]


def _scale_row(key: tuple[str, ...], cells: pd.DataFrame, tasks: str | None) -> list[Any]:
    """A scale row; `tasks`: the 'n/N' column (None when rows are per training set)."""
    per_epoch = cells["train_seconds"] / cells["epochs_done"].where(cells["epochs_done"] > 0) / 3600
    return [
        *key,
        float(cells["test"].mean()),
        *([] if tasks is None else [tasks]),
        added_params(cells),
        float(per_epoch.sum(min_count=1)),
    ]


SCALE_BY_DATA_NOTE = (
    "One row per model × method × training set (data): every row is tested on one common "
    "evaluation set, so rows compare across data scales, as in BELLE's Table 4."
)


def scale_table(best: pd.DataFrame, selection: Selection) -> Table:
    """Per model × method (× training set, on a common test set): average score, parameters added,
    train hours per epoch (the BELLE table)."""
    n_tasks = best["task"].nunique()
    by_data = shares_one_eval_set(best)
    keys = ["model", "method", "task"] if by_data else ["model", "method"]
    rows = [
        _scale_row(key, cells, None if by_data else f"{len(cells)}/{n_tasks}")
        for key, cells in best.groupby(keys, sort=True)
    ]
    notes = [
        *([SCALE_BY_DATA_NOTE] if by_data else []),
        "Score: the mean over tasks of each task's own test metric (as GLUE averages); compare rows only "
        "over the same tasks. Added params: parameters the method trains on top of the frozen model, task "
        "head included (full fine-tuning adds none; it trains all), mean over tasks. Train h / epoch: hours "
        "inside Trainer.train() per epoch (mean over seeds), summed over tasks.",
        *skipped_notes(selection),
    ]
    caption = "Score, added parameters and training time per epoch"
    return Table("scale", caption, _scale_columns(by_data), rows, notes)


def paper_tables(best: pd.DataFrame, selection: Selection) -> list[Table]:
    """Every table of a report that needs only the chosen cells: main, cost, scale, the judge's
    categories (when judged) and the leaderboards that hold a task of ours."""
    tables = [main_table(best, selection), cost_table(best, selection), scale_table(best, selection)]
    return tables + [t for t in [category_table(best, selection)] if t is not None] + leaderboard_tables(best)
