"""Many result.json files become one table: merge, pick the best point per cell on validation.

Cells are chosen on VALIDATION, never on test: for each (model, method, task) the hyper-parameter
point with the best mean validation metric over its seeds wins, and its mean TEST metric is shown.
Files that cannot be read are counted and named; the rest are merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftbench.metrics import METRIC_DIRECTION
from peftbench.results import RunResult, UnreadableResult, read_result, write_json_atomic

POINT_COLUMNS = ("model", "task", "method", "params", "training")


@dataclass
class Collection:
    """The merged runs of one or more sweep folders, and what could not be read."""

    frame: Any  # pandas.DataFrame, one row per readable result
    unreadable: list[str] = field(default_factory=list)


def result_files(sweep_dirs: list[Path]) -> list[Path]:
    return sorted(p for d in sweep_dirs for p in Path(d).glob("*/result.json"))


def collect(sweep_dirs: list[Path]) -> Collection:
    """Read every result.json under the sweep folders; a run id seen twice counts once."""
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    unreadable = []
    for path in result_files(sweep_dirs):
        try:
            result = read_result(path)
        except UnreadableResult as err:
            unreadable.append(str(err))
            continue
        rows.setdefault(result.run_id, flatten(result))
    return Collection(pd.DataFrame(list(rows.values())), unreadable)


def flatten(result: RunResult) -> dict[str, Any]:
    """One table row: identity, point (as JSON text), metrics by split, cost."""
    spec = result.spec
    row: dict[str, Any] = {
        "run_id": result.run_id,
        "sweep": spec.sweep,
        "status": result.status,
        "model": spec.model.name,
        "task": spec.task.name,
        "task_metric": spec.task.metric,
        "method": spec.label,
        "method_family": spec.method,
        "params": json.dumps(spec.params, sort_keys=True),
        "training": json.dumps(spec.training.model_dump(mode="json"), sort_keys=True),
        "learning_rate": spec.training.learning_rate,
        "seed": spec.seed,
        "epochs_done": result.epochs_done,
        "finished_at": result.finished_at,
    }
    for split, metrics in (("validation", result.validation), ("test", result.test)):
        row.update({f"{split}_{name}": value for name, value in metrics.items()})
    if result.cost is not None:
        row.update(result.cost.model_dump())
    return row


def select_best(frame: Any) -> Any:
    """Per (model, method, task): the point with the best mean validation metric; its test mean.

    Returns one row per cell with `test`, `validation`, `n_seeds` and the chosen point's cost means.
    """
    import pandas as pd

    ok = frame[frame["status"] == "success"] if len(frame) else frame
    cells = []
    for (model, method, task), runs in ok.groupby(["model", "method", "task"], sort=False):
        metric = runs["task_metric"].iloc[0]
        points = runs.groupby(["params", "training"], sort=False)
        summary = points.agg(
            validation=(f"validation_{metric}", "mean"),
            test=(f"test_{metric}", "mean"),
            test_std=(f"test_{metric}", "std"),
            n_seeds=("seed", "nunique"),
            trainable_params=("trainable_params", "mean"),
            total_params=("total_params", "mean"),
            train_seconds=("train_seconds", "mean"),
            peak_rss_bytes=("peak_rss_bytes", "max"),
            peak_gpu_bytes=("peak_gpu_bytes", "max"),
        ).reset_index()
        ascending = METRIC_DIRECTION.get(metric, "higher") == "lower"
        best = summary.sort_values("validation", ascending=ascending, kind="stable").iloc[0]
        cells.append(
            {
                "model": model,
                "method": method,
                "task": task,
                "metric": metric,
                "n_points": len(summary),
                **best.to_dict(),
            }
        )
    return pd.DataFrame(cells)


def markdown_table(best: Any) -> str:
    """Paper style: rows model × method (sorted), one column per task (its own metric), then cost."""
    if best.empty:
        return "_No successful runs yet._\n"
    tasks = list(dict.fromkeys(best["task"]))
    metric_of = dict(zip(best["task"], best["metric"], strict=False))
    header = [
        "model",
        "method",
        *(f"{t} ({metric_of[t]})" for t in tasks),
        "trainable %",
        "train s",
        "peak RSS GB",
    ]
    if best["peak_gpu_bytes"].notna().any():
        header.append("peak GPU GB")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|",
    ]
    for (model, method), cells in best.groupby(["model", "method"], sort=True):
        by_task = {row.task: row for row in cells.itertuples()}
        scores = [_score(by_task[t]) if t in by_task else "–" for t in tasks]
        trainable = 100 * (cells["trainable_params"] / cells["total_params"]).mean()
        cost = [
            f"{trainable:.3g}",
            f"{cells['train_seconds'].mean():.1f}",
            f"{cells['peak_rss_bytes'].max() / 1e9:.2f}",
        ]
        if "peak GPU GB" in header:
            cost.append(f"{cells['peak_gpu_bytes'].max() / 1e9:.2f}")
        lines.append("| " + " | ".join([model, method, *scores, *cost]) + " |")
    return "\n".join(lines) + "\n"


def _score(cell: Any) -> str:
    text = f"{cell.test:.3f}"
    if cell.n_seeds > 1 and cell.test_std == cell.test_std:  # not NaN
        text += f" ± {cell.test_std:.3f}"
    return text


@dataclass
class CollectReport:
    table: str
    n_results: int
    n_success: int
    unreadable: list[str]
    outputs: list[Path]


def write_collection(sweep_dirs: list[Path], out_dir: Path) -> CollectReport:
    """Merge the sweeps, write results.parquet, results.csv and table.md into `out_dir` atomically."""
    collection = collect(sweep_dirs)
    frame = collection.frame
    best = select_best(frame) if len(frame) else None
    table = markdown_table(best) if best is not None else "_No results yet._\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = [out_dir / "results.parquet", out_dir / "results.csv", out_dir / "table.md"]
    _atomic(outputs[0], lambda tmp: frame.to_parquet(tmp, index=False))
    _atomic(outputs[1], lambda tmp: frame.to_csv(tmp, index=False))
    _atomic(outputs[2], lambda tmp: Path(tmp).write_text(table, encoding="utf-8"))
    write_json_atomic(out_dir / "unreadable.json", collection.unreadable)
    n_success = int((frame["status"] == "success").sum()) if len(frame) else 0
    return CollectReport(table, len(frame), n_success, collection.unreadable, outputs)


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)
