"""The paper tables, as data; table_formats.py renders them (Markdown, LaTeX booktabs, CSV, HTML).

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

All take the output of `collect.mark_best_per_task(select_cells(...).best)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peftbench.collect.chance import CHANCE_METHOD, MAJORITY_COLUMN, chance_score

MISSING = "–"


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


@dataclass(frozen=True)
class Column:
    """A column: its header for people, its key for CSV, how a value becomes text, its alignment."""

    header: str
    key: str
    fmt: Callable[[Any], str] = str
    align: str = "r"  # "l" or "r"


@dataclass
class Table:
    name: str  # file stem: main, cost, scale, summary
    caption: str
    columns: list[Column]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)


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


def _text(label: str, key: str) -> Column:
    return Column(label, key, str, "l")


def _task_columns(best: Any) -> list[tuple[str, str]]:
    """(task, its metric) in first-seen order."""
    return list(dict.fromkeys(zip(best["task"], best["metric"], strict=True)))


def score_of(cell: Any) -> Score:
    return Score(
        float(cell["test"]),
        float(cell["ci_low"]),
        float(cell["ci_high"]),
        int(cell["n_seeds"]),
        bool(cell.get("best_in_task", False)),
        cell.get("overlaps_best"),
        _collapsed(cell),
    )


def _collapsed(cell: Any) -> int:
    value = cell.get("collapsed_seeds", 0)
    return 0 if is_missing(value) else int(value)


ONE_CLASS_MARK = "⚠"


def _one_class_note(best: Any) -> list[str]:
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


def _seed_range(cells: Any) -> str:
    low, high = int(cells["n_seeds"].min()), int(cells["n_seeds"].max())
    return str(low) if low == high else f"{low}–{high}"


def _interval_note(selection: Any) -> str:
    percent = f"{100 * selection.confidence:g}%"
    if selection.interval == "bootstrap":
        how = f"[low, high]: {percent} percentile bootstrap interval of the mean (10,000 resamples, seed 0)"
    else:
        how = f"mean ± half-width of the {percent} Student t-interval"
    return (
        f"Test metric at the hyper-parameter point with the best mean validation metric (never chosen on "
        f"test); {how} over seeds; seeds: n per cell."
    )


def _mark_notes(best: Any) -> list[str]:
    notes = []
    if "best_in_task" in best and best["best_in_task"].any():
        text = "Bold: the one best mean of the column, above chance and `none` (a tie: no bold)."
        if (best["overlaps_best"] == True).any():  # noqa: E712 - the column holds True/False/None
            text += " †: interval overlaps the best's, so these seeds do not separate the two."
        notes.append(text)
    if (best["n_seeds"] < 2).any():
        notes.append("No interval where a cell has a single seed.")
    return notes


def _chance_rows(best: Any, tasks: list[tuple[str, str]], width: int) -> list[list[Any]]:
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


def main_table(best: Any, selection: Any, chance: bool = True) -> Table:
    """Method × task with each task's own metric (the HuLU table), and a chance row where it is known."""
    tasks = _task_columns(best)
    columns = [_text("model", "model"), _text("method", "method"), Column("seeds", "seeds")]
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
        *_one_class_note(best),
        *_skipped_notes(selection),
    ]
    return Table("main", "Test metric per task, by model and method", columns, rows, notes)


def summary_table(best: Any, selection: Any) -> Table:
    """The main table plus trainable %, train seconds and peak memory: what `collect` prints."""
    table = main_table(best, selection, chance=False)
    gpu = best["peak_gpu_bytes"].notna().any()
    table.columns += [
        Column("trainable %", "trainable_percent", significant(3)),
        Column("train s", "train_seconds", fixed(1)),
        Column("peak RSS GB", "peak_rss_gb", fixed(2)),
    ] + ([Column("peak GPU GB", "peak_gpu_gb", fixed(2))] if gpu else [])
    for row, (_key, cells) in zip(table.rows, best.groupby(["model", "method"], sort=True), strict=True):
        row += [
            float(
                100
                * (cells["trainable_params"] / cells["total_params"].where(cells["total_params"] > 0)).mean()
            ),
            float(cells["train_seconds"].mean()),
            gigabytes(cells["peak_rss_bytes"].max()),
        ] + ([gigabytes(cells["peak_gpu_bytes"].max())] if gpu else [])
    table.rows += _chance_rows(best, _task_columns(best), len(table.columns))
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


def _energy_note(best: Any) -> list[str]:
    if "energy_wh" not in best or not best["energy_wh"].notna().any():
        return []
    return [
        "Energy Wh: GPU energy from NVML's total-energy counter, summed over the run's GPUs, mean over "
        "seeds; for runs packed several to a GPU, each run's share of the GPU's energy by the time-weighted "
        "GPU utilisation of its process (an estimate). – where no counter was read (CPU, no NVML)."
    ]


def cost_table(best: Any, selection: Any) -> Table:
    """Per task × model × method: what it cost and how it scored (the BERTić table)."""
    columns = [
        _text("task", "task"),
        _text("model", "model"),
        _text("method", "method"),
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
    order = {task: i for i, (task, _m) in enumerate(_task_columns(best))}
    ordered = best.assign(_order=best["task"].map(order))
    ordered = ordered.sort_values(["_order", "model", "method"], kind="stable")
    rows = [
        [
            cell["task"],
            cell["model"],
            cell["method"] + (f" {ONE_CLASS_MARK}" if _collapsed(cell) else ""),
            cell["trainable_params"],
            100 * cell["trainable_params"] / cell["total_params"] if cell["total_params"] else None,
            cell["train_seconds"] / 60,
            cell["gpu_hours"],
            gigabytes(cell["peak_gpu_bytes"]),
            gigabytes(cell["peak_rss_bytes"]),
            cell.get("test_accuracy"),
            *precision_recall_f1(cell)[1],
        ]
        for _, cell in ordered.iterrows()
    ]
    if "energy_wh" in best and best["energy_wh"].notna().any():  # GPU runs with NVML's energy counter
        columns.insert(7, Column("energy Wh", "energy_wh", significant(3)))
        for row, (_, cell) in zip(rows, ordered.iterrows(), strict=True):
            row.insert(7, cell["energy_wh"] if cell["energy_wh"] == cell["energy_wh"] else None)
    notes = [
        *_energy_note(best),
        "Per task, at the point chosen on validation: trainable params, train min, GPU-h and the test "
        "metrics are means over its seeds (precision, recall and F1 in the task's averaging, macro unless it "
        "sets one; entity-level for tagging tasks); peak GPU "
        "GB and host RAM GB are the maximum over its seeds. Train time is inside Trainer.train(); host RAM "
        "is the peak resident memory of the run's process; peak GPU memory is "
        "torch.cuda.max_memory_allocated (– on CPU).",
        *_one_class_note(best),
        *_skipped_notes(selection),
    ]
    return Table("cost", "Cost and quality per task, model and method", columns, rows, notes)


# Where a cell's precision, recall and F1 are, in order of preference: the task's own averaging
# (binary, micro, weighted; docs/tasks.md), else macro, else entity-level (token classification).
PRF_SOURCES = (
    *(
        (a, tuple(f"test_{m}_{a}" for m in ("precision", "recall", "f1")))
        for a in ("binary", "micro", "weighted")
    ),
    ("macro", ("test_precision_macro", "test_recall_macro", "test_f1_macro")),
    ("entity", ("test_entity_precision", "test_entity_recall", "test_entity_f1")),
)


def precision_recall_f1(cell: Any) -> tuple[str | None, list[Any]]:
    """(which averaging, [precision, recall, F1]) of a cell; (None, blanks) for a task type without them."""
    for averaging, keys in PRF_SOURCES:
        values = [cell.get(k) for k in keys]
        if not any(is_missing(v) for v in values):
            return averaging, values
    return None, [None, None, None]


def shares_one_eval_set(best: Any) -> bool:
    """Whether every cell is tested on the same evaluation set of its own (`test_source`): the tasks
    then differ only in their training data, a data-scale axis (BELLE's 0.6M, 2M, 4M)."""
    return "eval_set" in best and bool(best["eval_set"].notna().all()) and best["eval_set"].nunique() == 1


def scale_table(best: Any, selection: Any) -> Table:
    """Per model × method (× training set, on a common test set): average score, parameters added,
    train hours per epoch (the BELLE table)."""
    n_tasks = best["task"].nunique()
    by_data = shares_one_eval_set(best)
    keys = ["model", "method", "task"] if by_data else ["model", "method"]
    columns = [
        _text("model", "model"),
        _text("method", "method"),
        *([_text("data", "task")] if by_data else []),
        Column("score", "score", fixed(3)),
        *([] if by_data else [Column("tasks", "tasks")]),
        Column("added params", "added_params", count),
        Column("train h / epoch", "train_hours_per_epoch", significant(3)),
    ]
    rows = []
    for key, cells in best.groupby(keys, sort=True):
        full = (cells["method_family"] == "full").all()
        per_epoch = cells["train_seconds"] / cells["epochs_done"].where(cells["epochs_done"] > 0) / 3600
        rows.append(
            [
                *key,
                float(cells["test"].mean()),
                *([] if by_data else [f"{len(cells)}/{n_tasks}"]),
                0 if full else float(cells["trainable_params"].mean()),
                float(per_epoch.sum(min_count=1)),
            ]
        )
    notes = [
        *(
            [
                "One row per model × method × training set (data): every row is tested on one common "
                "evaluation set, so rows compare across data scales, as in BELLE's Table 4."
            ]
            if by_data
            else []
        ),
        "Score: the mean over tasks of each task's own test metric (as GLUE averages); compare rows only "
        "over the same tasks. Added params: parameters the method trains on top of the frozen model, task "
        "head included (full fine-tuning adds none; it trains all), mean over tasks. Train h / epoch: hours "
        "inside Trainer.train() per epoch (mean over seeds), summed over tasks.",
        *_skipped_notes(selection),
    ]
    return Table("scale", "Score, added parameters and training time per epoch", columns, rows, notes)


def _skipped_notes(selection: Any) -> list[str]:
    return [f"Left out: {s}." for s in getattr(selection, "skipped", [])]


def paper_tables(best: Any, selection: Any) -> list[Table]:
    # Imported here: both build on this module's Table.
    from peftbench.collect.category_table import category_table
    from peftbench.collect.leaderboard_scores import leaderboard_tables

    tables = [main_table(best, selection), cost_table(best, selection), scale_table(best, selection)]
    return tables + [t for t in [category_table(best, selection)] if t is not None] + leaderboard_tables(best)
