"""Many result.json files become one frame; per cell, the best hyper-parameter point chosen on validation.

A cell is (model, method, task). Its point (method params + training settings) is the one with the
best MEAN VALIDATION metric over its seeds, in the direction the metric says is better
(`core.directions.METRIC_DIRECTION`: direction is data). Test numbers are looked at only after that choice,
for the chosen point: their mean, a confidence interval over its seeds (t, or bootstrap when asked)
and n. A test-set outlier can therefore never pick a point.

Files that cannot be read are counted and named; run folders with a spec but no result are listed
as unfinished (pending, running, or lost); a run found in several sweeps counts once.

This is the bottom of `collect` (above only stats, chance and collapse): it reads and chooses, and
writes nothing; `outputs` writes what it merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from peftbench.collect.chance import real_best
from peftbench.collect.collapse import collapsed_seeds
from peftbench.collect.judged import judged_columns, not_judged_reason
from peftbench.collect.stats import IntervalMethod, interval, overlap
from peftbench.core.directions import higher_is_better
from peftbench.core.judge_settings import JudgeSettings
from peftbench.core.paths import RunPaths
from peftbench.core.results import RunResult, UnreadableResult, read_result
from peftbench.core.search import halt_reason
from peftbench.core.spec import DataSource

CELL_COLUMNS = ("model", "method", "task")


POINT_COLUMNS = ("params", "training")


COST_MEANS = (
    "judge_tokens_sent",
    "judge_tokens_received",
    "trainable_params",
    "total_params",
    "train_seconds",
    "wall_seconds",
    "gpu_hours",
    "epochs_done",
    "energy_wh",
)


COST_PEAKS = ("peak_rss_bytes", "peak_gpu_bytes")


@dataclass
class Collection:
    """The merged runs of one or more sweep folders, and what could not be counted."""

    frame: pd.DataFrame  # one row per run (a run id seen in several sweeps counts once)
    unreadable: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)  # run folders with spec.json, no result.json


def result_files(sweep_dirs: list[Path]) -> list[Path]:
    return sorted(p for d in sweep_dirs for p in Path(d).glob("*/result.json"))


def unfinished_run_dirs(sweep_dirs: list[Path]) -> list[Path]:
    """Run folders that have a spec.json but no result.json: still pending or running, or lost. A run
    that became its cell's winner (`winner.json`, core/search.py) has its result in that run's folder."""
    specs = (p for d in sweep_dirs for p in Path(d).glob("*/spec.json"))
    ended = ("result.json", RunPaths(Path()).winner.name)
    return sorted(p.parent for p in specs if not any(p.with_name(name).exists() for name in ended))


def collect(sweep_dirs: list[Path], judge: JudgeSettings | None = None) -> Collection:
    """Read every result.json under the sweep folders; a run id seen twice counts once.

    Of two records of the same run (the same run_id in two sweeps), a success wins over a failure,
    then the later one. Instruction runs get their judge's scores (`collect.judged`): the sweep's
    judge, or `judge`.
    """
    rows: dict[str, dict[str, Any]] = {}
    unreadable = []
    for path in result_files(sweep_dirs):
        try:
            result = read_result(path)
        except UnreadableResult as err:
            unreadable.append(str(err))
            continue
        row = {**flatten(result), "run_dir": str(path.parent)}
        row |= judged_columns(path.parent, result.spec, judge) if result.status == "success" else {}
        kept = rows.get(result.run_id)
        if kept is None or _precedence(row) > _precedence(kept):
            rows[result.run_id] = row
    unfinished = [str(d) for d in unfinished_run_dirs(sweep_dirs) if d.name not in rows]
    return Collection(pd.DataFrame(list(rows.values())), unreadable, unfinished)


def _precedence(row: dict[str, Any]) -> tuple[bool, str]:
    return row["status"] == "success", row["finished_at"]


def flatten(result: RunResult) -> dict[str, Any]:
    """One table row: identity, point (as JSON text), metrics by split, cost, provenance (JSON text)."""
    spec = result.spec
    row: dict[str, Any] = {
        "run_id": result.run_id,
        "sweep": spec.sweep,
        "status": result.status,
        "model": spec.model.name,
        "task": spec.task.name,
        "task_metric": spec.task.metric,
        "eval_set": _eval_set(spec.task.test_source),
        "method": method_name(spec.label, spec.training.engine),
        "method_family": spec.method,
        "params": json.dumps(spec.params, sort_keys=True),
        "training": json.dumps(spec.training.model_dump(mode="json"), sort_keys=True),
        "learning_rate": spec.training.learning_rate,
        "seed": spec.seed,
        "searched": spec.search is not None,  # ran under successive halving (core/search.py)
        "search": json.dumps(spec.search.model_dump(mode="json"), sort_keys=True) if spec.search else None,
        "epochs_done": result.epochs_done,
        "finished_at": result.finished_at,
        "error_summary": halt_reason(result.error) if result.status == "halted" else _last_line(result.error),
        "provenance": json.dumps(result.provenance.model_dump(mode="json"), sort_keys=True)
        if result.provenance is not None
        else None,
    }
    for split, metrics in (("validation", result.validation), ("test", result.test)):
        row.update({f"{split}_{name}": value for name, value in metrics.items()})
    if result.cost is not None:
        row.update(result.cost.model_dump())
    return row


def _eval_set(source: DataSource | None) -> str | None:
    """The task's own evaluation set (`test_source`) as JSON text, or None: it tests on its own data."""
    return (
        None
        if source is None
        else json.dumps(source.model_dump(mode="json", exclude_none=True), sort_keys=True)
    )


def method_name(label: str, backend: str) -> str:
    """The method as tables show it: the sweep's label, and the engine when there is one.

    DeepSpeed keeps fp32 master weights where FSDP may not, so memory and loss differ by engine;
    naming it keeps runs of two engines out of one cell.
    """
    return label if backend == "none" else f"{label} ({backend})"


def _last_line(text: str | None) -> str | None:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def successful(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "success"] if len(frame) else frame


@dataclass
class Selection:
    """One row per cell (`best`), the cells that could not be chosen and why, and how intervals were made."""

    best: pd.DataFrame
    skipped: list[str]
    interval: str
    confidence: float


def select_cells(
    frame: pd.DataFrame,
    interval_method: IntervalMethod = "t",
    confidence: float = 0.95,
    choose_on: Literal["validation", "test"] = "validation",
) -> Selection:
    """Per (model, method, task): the point with the best mean validation metric; then its test interval.

    `choose_on="test"` is the studies' "best over the hyper-parameter grid" protocol, only for the
    labelled variant table (`collect.protocols`): the point with the best mean test metric.

    Each row has `validation` (mean), `test` (mean), `ci_low`/`ci_high` (NaN with one seed),
    `test_std`, `n_seeds`, the chosen point's `params`/`training`, the mean of every test metric
    (`test_<name>`), cost means (peaks: max), the chosen point's `run_ids`, `selected_run_id`: its seed
    best on validation (what a leaderboard submission uses), and `collapsed_seeds`: how many of its
    seeds predicted one class on test (`collect.collapse`).
    """
    import pandas as pd

    cells, skipped = [], []
    for (model, method_label, task), runs in successful(frame).groupby(list(CELL_COLUMNS), sort=False):
        metric = runs["task_metric"].iloc[0]
        chosen, n_points = _best_point(runs, f"{choose_on}_{metric}", higher_is_better(metric))
        if chosen is None:
            why = not_judged_reason(runs) or f"no run has a {choose_on} {metric}"
            skipped.append(f"{model} · {method_label} · {task}: {why}")
            continue
        cell = {"model": model, "method": method_label, "task": task, "metric": metric, "n_points": n_points}
        cells.append(cell | _summarize_point(chosen, metric, interval_method, confidence))
    return Selection(pd.DataFrame(cells), skipped, interval_method, confidence)


def select_best(
    frame: pd.DataFrame, interval_method: IntervalMethod = "t", confidence: float = 0.95
) -> pd.DataFrame:
    """`select_cells(...).best`: one row per cell."""
    return select_cells(frame, interval_method, confidence).best


def _best_point(runs: pd.DataFrame, validation_column: str, higher: bool) -> tuple[pd.DataFrame | None, int]:
    """(the seeds of the point with the best mean validation metric, how many points the cell has).

    Ties go to the point with more seeds, then to the first in sweep order. Only validation is read.
    In a cell searched by halving, points are ranked on the seeds that searched (the seeds that
    trained the winner only join its row), and only runs that trained their full budget are here:
    a halted run has no success result.
    """
    points = list(runs.groupby(list(POINT_COLUMNS), sort=False))
    searched = bool(runs["searched"].fillna(False).astype(bool).any()) if "searched" in runs else False
    ranked = []
    for order, (_key, seeds) in enumerate(points):
        ranking = seeds[seeds["searched"].fillna(False).astype(bool)] if searched else seeds
        if validation_column not in ranking or ranking[validation_column].isna().all():
            continue
        mean = float(ranking[validation_column].mean())
        ranked.append(((mean if higher else -mean, len(seeds), -order), seeds))
    if not ranked:
        return None, len(points)
    return max(ranked, key=lambda r: r[0])[1], len(points)


def _summarize_point(
    seeds: pd.DataFrame, metric: str, interval_method: IntervalMethod, confidence: float
) -> dict[str, Any]:
    higher = higher_is_better(metric)
    validation = seeds[f"validation_{metric}"]
    test_column = f"test_{metric}"
    ci = interval(seeds.get(test_column, []), interval_method, confidence)
    selected = seeds.loc[validation.idxmax() if higher else validation.idxmin()]
    first = seeds.iloc[0]
    summary = {
        "method_family": first["method_family"],
        "eval_set": first.get("eval_set"),
        "higher_is_better": higher,
        "params": first["params"],
        "training": first["training"],
        "learning_rate": first["learning_rate"],
        "validation": float(validation.mean()),
        "test": ci.mean,
        "ci_low": ci.low,
        "ci_high": ci.high,
        "test_std": ci.std,
        "n_seeds": int(seeds["seed"].nunique()),
        "run_ids": ",".join(seeds["run_id"]),
        "selected_run_id": selected["run_id"],
        "selected_run_dir": selected.get("run_dir"),
        "collapsed_seeds": collapsed_seeds(seeds),
        **{c: first[c] for c in ("judge", "judged") if c in seeds},
    }
    summary.update({c: float(seeds[c].mean()) for c in seeds.columns if c.startswith("test_")})
    summary.update({c: _mean(seeds, c) for c in COST_MEANS})
    summary.update({c: _peak(seeds, c) for c in COST_PEAKS})
    return summary


def _mean(seeds: pd.DataFrame, column: str) -> float:
    return float(seeds[column].astype(float).mean()) if column in seeds else float("nan")


def _peak(seeds: pd.DataFrame, column: str) -> float:
    return float(seeds[column].astype(float).max()) if column in seeds else float("nan")


def mark_best_per_task(best: pd.DataFrame) -> pd.DataFrame:
    """Add `best_in_task` and `overlaps_best` (True/False, None without intervals) to each cell.

    Per task, the one real best (`chance.real_best`: the single best test mean, above chance and
    the untrained `none` cells) is marked; every other cell is marked when its interval overlaps
    the best's, i.e. these seeds do not separate the two. A tie, a best at chance, and tasks with
    one cell get no marks.
    """
    marked = best.copy()
    marked["best_in_task"] = False
    marked["overlaps_best"] = None
    for _task, cells in marked.groupby("task", sort=False):
        if len(cells) < 2:
            continue
        winner = real_best(cells)
        if winner is None:
            continue
        leader = marked.loc[winner]
        marked.loc[winner, "best_in_task"] = True
        for index in cells.index.difference([winner]):
            row = marked.loc[index]
            marked.at[index, "overlaps_best"] = overlap(
                row["ci_low"], row["ci_high"], leader["ci_low"], leader["ci_high"]
            )
    return marked


def selection_of(
    frame: pd.DataFrame, interval_method: IntervalMethod = "t", confidence: float = 0.95
) -> Selection | None:
    """`select_cells` of a frame that holds some results; None for an empty one (nothing to choose from)."""
    return select_cells(frame, interval_method, confidence) if len(frame) else None


def marked_best(selection: Selection | None) -> pd.DataFrame | None:
    """The chosen cells with their best/overlap marks (`mark_best_per_task`); None without any cell."""
    if selection is None or not len(selection.best):
        return None
    return mark_best_per_task(selection.best)
