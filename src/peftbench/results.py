"""Results in a notebook: the public Python API over what `peftbench collect` computes.

```python
from peftbench import results

df = results.load("runs/demo", "runs/demo-lr")  # one row per run: the columns of results.parquet
df = df[df.task == "movie_sentiment"]            # filter with pandas as usual
print(results.table(df))                         # the summary table (markdown), chosen on validation
results.table(df, "cost", format="latex")        # the cost table, as LaTeX
results.pareto(df)                               # the Pareto plot: test metric vs GPU-hours
```

Everything here reuses `collect` (merge, tables, formats, plots): a notebook's table is the one
`collect` and `report` write. The example notebook is docs/results.ipynb.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from peftbench.collect.merge import Selection

TableKind = Literal["summary", "main", "cost", "scale"]
TableFormat = Literal["markdown", "latex", "csv", "html"]
CostName = Literal["gpu_hours", "memory", "energy"]
Interval = Literal["t", "bootstrap"]


def load(*sweep_dirs: str | os.PathLike[str]) -> pd.DataFrame:
    """Every run of the sweep folders as one DataFrame, one row per run (a run id found in several
    folders counts once, its success first): the columns of `collect`'s results.parquet: identity
    (run_id, sweep, model, task, method, seed, status), the point (`params`, `training` as JSON text),
    `validation_<metric>` and `test_<metric>`, every cost field (wall_seconds, gpu_hours,
    peak_gpu_bytes, trainable_params, energy_wh, ...), `provenance` (JSON text) and `run_dir`.

    `df.attrs["unreadable"]` names the result files that could not be read (a warning says how
    many) and `df.attrs["unfinished"]` the run folders with no result yet. A folder that does not
    exist raises FileNotFoundError naming it.
    """
    from peftbench.collect.merge import collect

    folders = [Path(d) for d in sweep_dirs]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise FileNotFoundError(f"no such sweep folder: {', '.join(missing)}")
    collection = collect(folders)
    if collection.unreadable:
        warnings.warn(f"{len(collection.unreadable)} result file(s) unreadable: see df.attrs['unreadable']",
                      stacklevel=2)  # fmt: skip
    frame = collection.frame
    frame.attrs |= {"unreadable": collection.unreadable, "unfinished": collection.unfinished}
    return frame


def cells(df: pd.DataFrame, interval: Interval = "t", confidence: float = 0.95) -> pd.DataFrame:
    """One row per cell (model × method × task): its point chosen on mean validation, its test mean
    and confidence interval over seeds, cost means, and the marks the tables bold (`best_in_task`,
    `overlaps_best`). The successful runs of `df` are read; the others are left out."""
    from peftbench.collect.merge import mark_best_per_task

    return mark_best_per_task(_selection(df, interval, confidence).best)


def table(
    df: pd.DataFrame,
    kind: TableKind = "summary",
    format: TableFormat = "markdown",
    interval: Interval = "t",
    confidence: float = 0.95,
) -> str:
    """The paper table of `df`'s runs as text: `kind` summary (score and cost per cell), main (score
    per task), cost or scale; `format` markdown, latex, csv or html. The same tables as `collect`
    and `report`, each cell's point chosen on validation."""
    from peftbench.collect import formats, tables
    from peftbench.collect.merge import mark_best_per_task

    makers = {"summary": tables.summary_table, "main": tables.main_table,
              "cost": tables.cost_table, "scale": tables.scale_table}  # fmt: skip
    writers = {"markdown": formats.to_markdown, "latex": formats.to_latex,
               "csv": formats.to_csv, "html": formats.to_html}  # fmt: skip
    _check("kind", kind, makers)
    _check("format", format, writers)
    selection = _selection(df, interval, confidence)
    return writers[format](makers[kind](mark_best_per_task(selection.best), selection))


def pareto(df: pd.DataFrame, cost: CostName = "gpu_hours") -> Figure:
    """The Pareto plot of `df`'s cells: test metric against `cost` (gpu_hours, wall-clock hours where
    no run used a GPU; memory: peak GPU memory, else host; energy: NVML GPU energy), one panel per
    task, the front dashed. Returns the matplotlib Figure (a notebook shows it)."""
    from peftbench.collect import plots

    axes = {"gpu_hours": plots.hours_axis, "memory": plots.memory_axis, "energy": plots.energy_axis}
    _check("cost", cost, axes)
    best = cells(df)
    if cost == "energy" and not plots.has_energy(best):
        raise ValueError("cost 'energy': not every cell has a GPU energy figure (energy_wh)")
    style = plots.Style(sorted(best["method"].unique()), sorted(best["model"].unique()))
    figure, _title, _caption = plots.pareto_figure(best, style, axes[cost](best))
    return figure


def _selection(df: pd.DataFrame, interval: Interval, confidence: float) -> Selection:
    from peftbench.collect.merge import select_cells, successful

    if not len(df) or not len(successful(df)):
        raise ValueError("no successful run in the frame: nothing to choose a cell's point from")
    return select_cells(df, interval, confidence)


def _check(name: str, value: str, allowed: dict[str, object]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} {value!r}: allowed are {', '.join(allowed)}")
