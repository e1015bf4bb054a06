"""The figures of a report, as PNG and SVG: quality against what it cost.

- `params`: test metric against trainable parameters (log x), one panel per task.
- `pareto_gpu_hours`, `pareto_memory`: test metric against GPU-hours and against peak memory, with
  the Pareto front (the cells nothing beats on both); CPU-only results fall back to wall-clock hours
  and host RSS, and the axis says so.
- `pareto_energy`: test metric against GPU energy (Wh, NVML), only when every cell has it (runs on
  GPUs with an energy counter; a packed run's share is an estimate, see docs/packing.md).
- `task_bars`: one bar per model × method per task, from zero, with the confidence interval as error
  bars; a panel whose scores differ by less than `DOTS_BELOW` of their size shows dots on a zoomed
  axis instead (bars from zero would hide the differences; bars on a cut axis would exaggerate them).

No figure draws an interval where there is none (one seed: a bare marker, no error bar, no caps).
Point labels never overlap (`label_placement`); a cell whose test predictions collapsed to one class
is flagged where it is drawn.
- `lora_rank`: test metric against LoRA rank, only when a sweep tried more than one rank. A run is on it
  when its method's params have a rank `r` (LoRA, DoRA, QLoRA: the hyper-parameter plotted, whatever
  the method is called). At each rank the point (e.g. learning rate) is chosen on validation, as
  everywhere else.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend state), so this
works on headless nodes and inside tests.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from peftbench.collect.label_placement import freeze_layout, place_labels
from peftbench.collect.merge import Selection, select_cells, successful
from peftbench.collect.pareto import pareto_front
from peftbench.collect.table_model import collapsed_count, task_columns
from peftbench.core.files import write_path_atomic

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Drawn = tuple["Figure", str, str]  # a figure, its title, its caption
Panel = tuple[str, str, "pd.DataFrame", "Axes"]  # task, metric, its cells, its axes

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


PANEL_WIDTH, PANEL_HEIGHT = 4.4, 3.4


DOTS_BELOW = 0.05  # spread of a panel's means, as a share of the largest |mean|, under which bars hide it


ONE_CLASS = "one class"  # the flag drawn on a cell whose predictions collapsed


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    caption: str
    png: Path
    svg: Path


def make_plots(
    frame: pd.DataFrame, best: pd.DataFrame | None, selection: Selection, folder: Path
) -> list[Plot]:
    """Draw every figure that the results support into `folder` (<name>.png and <name>.svg)."""
    from matplotlib import rc_context

    folder.mkdir(parents=True, exist_ok=True)
    if best is None or best.empty:
        return []
    style = Style(sorted(best["method"].unique()), sorted(best["model"].unique()))
    drawn = [
        ("params", *params_figure(best, style)),
        ("pareto_gpu_hours", *pareto_figure(best, style, hours_axis(best))),
        ("pareto_memory", *pareto_figure(best, style, memory_axis(best))),
        ("task_bars", *task_bars_figure(best, style)),
    ]
    if has_energy(best):
        drawn.insert(3, ("pareto_energy", *pareto_figure(best, style, energy_axis(best))))
    per_rank = lora_rank_cells(frame, selection)
    if per_rank is not None:
        drawn.append(("lora_rank", *rank_figure(per_rank, style)))
    plots = []
    for name, figure, title, caption in drawn:
        png, svg = folder / f"{name}.png", folder / f"{name}.svg"
        write_path_atomic(
            png,
            lambda tmp, f=figure: f.savefig(tmp, format="png", dpi=110, metadata={"Software": None}),
            False,
        )
        with rc_context({"svg.fonttype": "none"}):  # text stays text: editable, searchable
            write_path_atomic(
                svg, lambda tmp, f=figure: f.savefig(tmp, format="svg", metadata={"Date": None}), False
            )
        plots.append(Plot(name, title, caption, png, svg))
    return plots


class Style:
    """One colour per method and one marker per model, the same in every figure."""

    def __init__(self, methods: list[str], models: list[str]):
        from matplotlib import colormaps

        palette = colormaps["tab10"]
        self.color = {m: palette(i % 10) for i, m in enumerate(methods)}
        self.marker = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(models)}

    def legend(self, figure: Figure) -> None:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=c, marker="o", linestyle="", label=m) for m, c in self.color.items()]
        if len(self.marker) > 1:
            handles += [
                Line2D([], [], color="0.3", marker=k, linestyle="", label=m) for m, k in self.marker.items()
            ]
        figure.legend(handles=handles, loc="outside right center", frameon=False, fontsize=8)


def _panels(best: pd.DataFrame, title: str) -> tuple[Figure, list[Panel]]:
    """A figure with one panel per task: (figure, [(task, metric, cells, axes), ...])."""
    from matplotlib.figure import Figure

    tasks = task_columns(best)
    columns = min(3, len(tasks))
    rows = math.ceil(len(tasks) / columns)
    figure = Figure(figsize=(PANEL_WIDTH * columns + 1.6, PANEL_HEIGHT * rows + 0.6), layout="constrained")
    figure.suptitle(title, fontsize=11)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for extra in axes[len(tasks) :]:
        extra.set_visible(False)
    panels = []
    for (task, metric), ax in zip(tasks, axes, strict=False):
        ax.set_title(task, fontsize=10)
        ax.set_ylabel(f"test {metric}")
        ax.grid(True, alpha=0.3)
        panels.append((task, metric, best[best["task"] == task], ax))
    return figure, panels


def _yerr(cell: pd.Series) -> list[list[float]] | None:
    """The error bar of a cell, or None where there is no interval (one seed): nothing is drawn then."""
    if math.isnan(cell["ci_low"]) or math.isnan(cell["ci_high"]):
        return None
    return [[cell["test"] - cell["ci_low"]], [cell["ci_high"] - cell["test"]]]


def collapsed(cell: pd.Series) -> bool:
    """Whether some seed of the cell predicted a single class on test (see collect.collapse)."""
    return collapsed_count(cell) > 0


def _point(ax: Axes, x: float, cell: pd.Series, style: Style) -> None:
    ax.errorbar(
        [x],
        [cell["test"]],
        yerr=_yerr(cell),
        fmt=style.marker[cell["model"]],
        color=style.color[cell["method"]],
        capsize=3,
        markersize=6,
    )


def params_figure(best: pd.DataFrame, style: Style) -> Drawn:
    title = "Test metric vs trainable parameters"
    figure, panels = _panels(best, title)
    for _task, _metric, cells, ax in panels:
        for _, cell in cells.iterrows():
            _point(ax, float(cell["trainable_params"]), cell, style)
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters (log)")
    style.legend(figure)
    caption = "Each point: a model × method at the point chosen on validation; bars: the interval over seeds."
    return figure, title, caption


@dataclass(frozen=True)
class CostAxis:
    """The cost a Pareto plot puts on x: values per cell, the axis label, a short name."""

    values: pd.Series  # aligned with best
    label: str
    name: str


def hours_axis(best: pd.DataFrame) -> CostAxis:
    """GPU-hours; wall-clock hours when no run used a GPU (gpu_hours is 0 on CPU)."""
    if (best["gpu_hours"].fillna(0) > 0).any():
        return CostAxis(best["gpu_hours"], "GPU-hours", "GPU-hours")
    return CostAxis(best["wall_seconds"] / 3600, "wall-clock hours (no GPU used)", "wall-clock hours")


def memory_axis(best: pd.DataFrame) -> CostAxis:
    """Peak GPU memory; the peak host RSS when no run used a GPU."""
    if best["peak_gpu_bytes"].notna().any():
        return CostAxis(best["peak_gpu_bytes"] / 1e9, "peak GPU memory (GB)", "peak GPU memory")
    return CostAxis(best["peak_rss_bytes"] / 1e9, "peak host RSS (GB, no GPU used)", "peak host memory")


def has_energy(best: pd.DataFrame) -> bool:
    """Every cell has a GPU energy figure (a front over cells with and without one would mislead)."""
    return "energy_wh" in best and bool(best["energy_wh"].notna().all())


def energy_axis(best: pd.DataFrame) -> CostAxis:
    """GPU energy from NVML's counter, mean over seeds (packed runs: their estimated share)."""
    return CostAxis(best["energy_wh"], "GPU energy (Wh, NVML)", "GPU energy")


def pareto_figure(best: pd.DataFrame, style: Style, cost: CostAxis) -> Drawn:
    title = f"Pareto front: test metric vs {cost.name}"
    figure, panels = _panels(best, title)
    labels = []
    for _task, _metric, cells, ax in panels:
        xs = cost.values.loc[cells.index].astype(float)
        points = []
        for (_, cell), x in zip(cells.iterrows(), xs, strict=True):
            _point(ax, x, cell, style)
            flag = f" ({ONE_CLASS})" if collapsed(cell) else ""
            points.append((x, float(cell["test"]), f"{cell['model']}/{cell['method']}{flag}"))
        labels.append((ax, points))
        front = pareto_front(list(xs), list(cells["test"]), bool(cells["higher_is_better"].iloc[0]))
        if front:
            ax.step(
                xs.iloc[front],
                cells["test"].iloc[front],
                where="post",
                color="0.2",
                linewidth=1,
                linestyle="--",
                label="Pareto front",
            )
        if (xs > 0).all() and xs.max() > 10 * xs.min():
            ax.set_xscale("log")
        ax.margins(x=0.12, y=0.1)  # room for the labels of the points at the edges
        ax.set_xlabel(cost.label)
    style.legend(figure)
    renderer = freeze_layout(figure)
    left_out = sum(place_labels(ax, points, renderer) for ax, points in labels)
    caption = (
        f"Dashed: the Pareto front — cells that no other cell beats on both test metric and {cost.name}."
    )
    if left_out:
        caption += (
            f" {left_out} label(s) left out where they would overlap; colour and marker name every point."
        )
    return figure, title, caption


def task_bars_figure(best: pd.DataFrame, style: Style) -> Drawn:
    title = "Test metric per task, with intervals over seeds"
    figure, panels = _panels(best, title)
    dotted = [task for task, _metric, cells, ax in panels if _task_bars_panel(ax, task, cells, style)]
    style.legend(figure)
    return figure, title, _task_bars_caption(best, dotted)


def _task_bars_panel(ax: Axes, task: str, cells: pd.DataFrame, style: Style) -> bool:
    """One task's bars (or dots, when bars from zero would hide the differences); True when dots."""
    ordered = cells.sort_values(["model", "method"], kind="stable")
    as_dots = zero_hides_differences(ordered["test"])
    for i, (_, cell) in enumerate(ordered.iterrows()):
        (_dot if as_dots else _bar)(ax, i, cell, style)
    ax.set_xticks(range(len(ordered)))
    ax.set_xticklabels(
        [f"{m}\n{k}" for m, k in zip(ordered["model"], ordered["method"], strict=True)],
        fontsize=6,
        rotation=60,
        ha="right",
    )
    if as_dots:
        ax.set_title(f"{task} (dots: axis not from 0)", fontsize=10)
    else:
        ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set_ylim(*_value_limits(ordered, as_dots))
    ax.set_xlim(-0.6, len(ordered) - 0.4)
    return as_dots


def _value_limits(cells: pd.DataFrame, as_dots: bool) -> tuple[float, float]:
    """The y range: every interval, and zero for bars; padded above (and below, for dots or negatives)."""
    low = cells["ci_low"].fillna(cells["test"]).min()
    high = cells["ci_high"].fillna(cells["test"]).max()
    if not as_dots:
        low, high = min(low, 0.0), max(high, 0.0)
    pad = max(0.08 * (high - low), 0.01)
    return low - (pad if low < 0 or as_dots else 0), high + pad


def _task_bars_caption(best: pd.DataFrame, dotted: list[str]) -> str:
    caption = (
        "Bars start at 0. Outlined: the best mean of each task. Hatched: the second model (and every other "
        "after it). Error bars: the interval over seeds (none with one seed)."
    )
    if dotted:
        caption += (
            f" {', '.join(dotted)}: the means differ by less than {DOTS_BELOW:.0%} of their size, which "
            "bars from 0 would hide; dots on an axis that does not start at 0 instead."
        )
    if best.apply(collapsed, axis=1).any():
        caption += f" '{ONE_CLASS}': some seed predicted a single class on test (the model learned nothing)."
    return caption


def zero_hides_differences(means: pd.Series) -> bool:
    """Whether bars from zero would make these means look the same (their spread is under DOTS_BELOW of
    the largest |mean|); a single mean, or all equal, has nothing to hide."""
    values = [float(v) for v in means if not math.isnan(float(v))]
    if len(values) < 2 or max(values) == min(values):
        return False
    return (max(values) - min(values)) < DOTS_BELOW * max(abs(v) for v in values)


def _bar(ax: Axes, i: int, cell: pd.Series, style: Style) -> None:
    ax.bar(
        i,
        cell["test"],
        yerr=_yerr(cell),
        color=style.color[cell["method"]],
        edgecolor="black" if cell.get("best_in_task", False) else "none",
        linewidth=1.5,
        capsize=3,
        hatch="//" if list(style.marker).index(cell["model"]) % 2 else None,
    )
    _flag_if_collapsed(ax, i, cell)


def _dot(ax: Axes, i: int, cell: pd.Series, style: Style) -> None:
    best = bool(cell.get("best_in_task", False))
    ax.errorbar(
        [i],
        [cell["test"]],
        yerr=_yerr(cell),
        fmt=style.marker[cell["model"]],
        color=style.color[cell["method"]],
        markeredgecolor="black" if best else style.color[cell["method"]],
        markeredgewidth=1.5,
        capsize=3,
        markersize=8,
    )
    _flag_if_collapsed(ax, i, cell)


def _flag_if_collapsed(ax: Axes, i: int, cell: pd.Series) -> None:
    if collapsed(cell):
        ax.annotate(
            ONE_CLASS,
            (i, cell["test"]),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            va="bottom",
            rotation=90,
            fontsize=7,
            color="#b00020",
            fontweight="bold",
        )


def lora_rank_cells(frame: pd.DataFrame, selection: Selection) -> pd.DataFrame | None:
    """One row per (model, method, task, rank) of the runs whose params have a rank `r`: the point chosen
    on validation among that rank's points, with its test interval (`rank` column). None unless some
    cell tried two ranks or more."""
    runs = successful(frame)
    if not len(runs) or "params" not in runs:
        return None
    ranked = runs.assign(rank=[json.loads(p).get("r") for p in runs["params"]])
    ranked = ranked[ranked["rank"].notna()]
    if ranked.empty or ranked.groupby(["model", "method", "task"])["rank"].nunique().max() < 2:
        return None
    ranked["method"] = [f"{m}\x00{int(r)}" for m, r in zip(ranked["method"], ranked["rank"], strict=True)]
    per_rank = select_cells(ranked, selection.interval, selection.confidence).best
    per_rank[["method", "rank"]] = per_rank["method"].str.split("\x00", expand=True)
    per_rank["rank"] = per_rank["rank"].astype(int)
    return per_rank


def rank_figure(per_rank: pd.DataFrame, style: Style) -> Drawn:
    title = "LoRA: test metric vs rank"
    figure, panels = _panels(per_rank, title)
    for _task, _metric, cells, ax in panels:
        for (model, method), line in cells.groupby(["model", "method"], sort=True):
            line = line.sort_values("rank")
            colour = style.color.get(method, "C0")
            ax.plot(
                line["rank"],
                line["test"],
                marker=style.marker.get(model, "o"),
                color=colour,
                label=f"{model}/{method}",
            )
            spread = line[line["ci_low"].notna() & line["ci_high"].notna()]  # no bars where one seed
            ax.errorbar(
                spread["rank"],
                spread["test"],
                yerr=[spread["test"] - spread["ci_low"], spread["ci_high"] - spread["test"]],
                fmt="none",
                ecolor=colour,
                capsize=3,
            )
        ranks = sorted(cells["rank"].unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(ranks, [str(r) for r in ranks])
        ax.set_xlabel("LoRA rank r")
        ax.legend(fontsize=7, frameon=False, loc="best")
    caption = (
        "At each rank, the other hyper-parameters are chosen on validation; bars: the interval over seeds."
    )
    return figure, title, caption
