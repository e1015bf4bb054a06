"""`halving`: each searched cell's successive halving as a picture (core/search.py runs it).

One panel per cell (model × method × task): the validation metric against the share of the
training budget, one line per run of the searching seeds, through its rung scores (the records in
`<sweep>/.rungs/`) to its final validation; a halted run's line ends in a cross at the rung where
it stopped. Drawn on matplotlib's Agg canvas, as every report figure (collect/plots.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.collect.plots import PANEL_HEIGHT, PANEL_WIDTH, Plot
from peftbench.core.files import write_path_atomic
from peftbench.core.search import all_rung_records

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

TITLE = "Successive halving per cell"
CAPTION = (
    "Validation metric against the share of the training budget, one line per grid point of the searching "
    "seeds: its score at each rung, then at the end; × marks a run halted at that rung."
)


def halving_plots(frame: pd.DataFrame, sweep_dirs: list[Path], folder: Path) -> list[Plot]:
    """The figure `halving` in `folder` (.png, .svg), or nothing when no run was searched."""
    if not len(frame) or "searched" not in frame:
        return []
    runs = frame[frame["searched"].fillna(False).astype(bool)]
    if runs.empty:
        return []
    records: dict[str, list[dict[str, Any]]] = {}
    for sweep_dir in sweep_dirs:
        for record in all_rung_records(Path(sweep_dir)):
            records.setdefault(str(record["run_id"]), []).append(record)
    figure = _figure(runs, records)
    folder.mkdir(parents=True, exist_ok=True)
    png, svg = folder / "halving.png", folder / "halving.svg"
    write_path_atomic(
        png, lambda tmp: figure.savefig(tmp, format="png", dpi=110, metadata={"Software": None}), False
    )
    write_path_atomic(svg, lambda tmp: figure.savefig(tmp, format="svg", metadata={"Date": None}), False)
    return [Plot("halving", TITLE, CAPTION, png, svg)]


def _figure(runs: pd.DataFrame, records: dict[str, list[dict[str, Any]]]) -> Any:
    from matplotlib.figure import Figure

    cells = list(runs.groupby(["model", "method", "task"], sort=False))
    columns = min(3, len(cells))
    rows = math.ceil(len(cells) / columns)
    figure = Figure(figsize=(PANEL_WIDTH * columns, PANEL_HEIGHT * rows), layout="constrained")
    figure.suptitle(TITLE, fontsize=11)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for extra in axes[len(cells) :]:
        extra.set_visible(False)
    for ((model, method, task), cell), ax in zip(cells, axes, strict=False):
        _panel(ax, cell, records)
        ax.set_title(f"{model} · {method} · {task}", fontsize=9)
    return figure


def _panel(ax: Axes, cell: pd.DataFrame, records: dict[str, list[dict[str, Any]]]) -> None:
    metric = str(cell["task_metric"].iloc[0])
    for _, run in cell.sort_values("learning_rate").iterrows():
        budget, score = _line(run, records.get(str(run["run_id"]), []), metric)
        (line,) = ax.plot(
            budget, score, marker="o", markersize=3, linewidth=1, label=f"lr {run['learning_rate']:g}"
        )
        if run["status"] == "halted" and budget:
            ax.plot(budget[-1:], score[-1:], marker="x", markersize=9, color=line.get_color(), linestyle="")
    ax.set_xlabel("share of the training budget", fontsize=8)
    ax.set_ylabel(f"validation {metric}", fontsize=8)
    ax.set_xlim(0, 1.05)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)


def _line(run: pd.Series, rungs: list[dict[str, Any]], metric: str) -> tuple[list[float], list[float]]:
    """(budget shares, validation scores) of one run: its rungs, then its end if it trained it all."""
    kept = sorted((r for r in rungs if "budget" in r), key=lambda r: r["rung"])
    budget, score = [float(r["budget"]) for r in kept], [float(r["score"]) for r in kept]
    final = run.get(f"validation_{metric}")
    if run["status"] == "success" and final is not None and not math.isnan(final):
        budget, score = [*budget, 1.0], [*score, float(final)]
    return budget, score
