"""Plots drawn from the synthetic results set: every figure, as PNG and SVG, and the CPU fallbacks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from peftbench.collect.plots import (
    Style,
    hours_axis,
    lora_rank_cells,
    make_plots,
    memory_axis,
    params_figure,
    pareto_figure,
    rank_figure,
    task_bars_figure,
    zero_hides_differences,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_figure_is_drawn_as_png_and_svg(synthetic, tmp_path: Path):
    frame, best, selection = synthetic
    plots = make_plots(frame, best, selection, tmp_path)
    assert [p.name for p in plots] == [
        "params",
        "pareto_gpu_hours",
        "pareto_memory",
        "task_bars",
        "lora_rank",
    ]
    for plot in plots:
        assert plot.png.read_bytes()[:8] == PNG_MAGIC and plot.png.stat().st_size > 10_000
        svg = ET.parse(plot.svg).getroot()
        assert svg.tag.endswith("svg")
        text = plot.svg.read_text()
        assert "movie_sentiment" in text and "cola" in text  # one panel per task
    svgs = {p.name: p.svg.read_text() for p in plots}
    assert "GPU-hours" in svgs["pareto_gpu_hours"] and "peak GPU memory" in svgs["pareto_memory"]
    assert "LoRA rank" in svgs["lora_rank"] and "(log)" in svgs["params"]
    assert not list(tmp_path.glob(".*.tmp"))  # each figure written to a temp file, then renamed


def test_cpu_runs_fall_back_to_wall_hours_and_host_memory(synthetic):
    _frame, best, _selection = synthetic
    assert hours_axis(best).name == "GPU-hours" and memory_axis(best).name == "peak GPU memory"
    cpu = best.assign(gpu_hours=0.0, peak_gpu_bytes=float("nan"))
    hours, memory = hours_axis(cpu), memory_axis(cpu)
    assert "wall-clock hours" in hours.label and (hours.values == cpu["wall_seconds"] / 3600).all()
    assert "host RSS" in memory.label and (memory.values == 3.0).all()


def test_rank_points_are_chosen_on_validation_per_rank_and_need_two_ranks(synthetic):
    frame, _best, selection = synthetic
    per_rank = lora_rank_cells(frame, selection)
    assert sorted(per_rank["rank"].unique()) == [4, 8, 16] and set(per_rank["method"]) == {"lora"}
    assert len(per_rank) == 2 * 2 * 3  # models × tasks × ranks
    one_rank = frame[~frame["params"].str.contains('"r": 4') & ~frame["params"].str.contains('"r": 8')]
    assert lora_rank_cells(one_rank, selection) is None


def test_the_rank_plot_takes_the_runs_with_a_rank_whatever_their_method_is_called(synthetic):
    """A run is on the rank plot by its params' `r`, never by its method's name: LoRA's runs renamed
    (a QLoRA family, another label) are all there; the same runs without an `r` give no plot."""
    frame, _best, selection = synthetic
    renamed = frame.assign(
        method_family=frame["method_family"].replace("lora", "qlora"),
        method=frame["method"].replace("lora", "my adapter"),
    )
    per_rank = lora_rank_cells(renamed, selection)
    assert per_rank is not None and set(per_rank["method"]) == {"my adapter"}
    assert sorted(per_rank["rank"].unique()) == [4, 8, 16] and len(per_rank) == 2 * 2 * 3
    without_rank = frame.assign(params=frame["params"].str.replace('"r":', '"alpha_of_nothing":'))
    assert lora_rank_cells(without_rank, selection) is None


def test_no_results_no_plots(tmp_path: Path):
    assert make_plots(None, None, None, tmp_path) == []


def _one_seed(best):
    return best.assign(n_seeds=1, ci_low=float("nan"), ci_high=float("nan"))


def _panels(figure) -> list:
    return [ax for ax in figure.axes if ax.get_visible()]


def test_bars_start_at_zero(synthetic):
    _frame, best, _selection = synthetic
    figure, _title, caption = task_bars_figure(
        best, Style(sorted(set(best["method"])), sorted(set(best["model"])))
    )
    for ax in _panels(figure):
        assert ax.get_ylim()[0] == 0.0 and len(ax.patches) == 8, ax.get_title()
    assert "Bars start at 0" in caption and "dots" not in caption


def test_a_panel_whose_scores_bars_would_flatten_shows_dots_off_zero(synthetic):
    _frame, best, _selection = synthetic
    close = best.copy()
    sentiment = close["task"] == "movie_sentiment"
    close.loc[sentiment, "test"] = [0.90 + 0.002 * i for i in range(int(sentiment.sum()))]
    close.loc[sentiment, ["ci_low", "ci_high"]] = float("nan")
    assert zero_hides_differences(close.loc[sentiment, "test"])
    assert not zero_hides_differences(close.loc[~sentiment, "test"]) and not zero_hides_differences([0.5])
    figure, _title, caption = task_bars_figure(
        close, Style(sorted(set(best["method"])), sorted(set(best["model"])))
    )
    dots, bars = _panels(figure)
    assert "dots" in dots.get_title() and not dots.patches and dots.get_ylim()[0] > 0.85
    assert len(bars.patches) == 8 and bars.get_ylim()[0] == 0.0
    assert "movie_sentiment: the means differ by less than 5%" in caption


def test_no_interval_is_drawn_where_a_cell_has_one_seed(synthetic):
    """One seed, no interval: no error bar and no caps in any figure (caps are Line2D markers '_')."""
    frame, best, selection = synthetic
    style = Style(sorted(set(best["method"])), sorted(set(best["model"])))
    single = _one_seed(best)
    figures = [
        params_figure(single, style)[0],
        pareto_figure(single, style, hours_axis(single))[0],
        task_bars_figure(single, style)[0],
        rank_figure(_one_seed(lora_rank_cells(frame, selection)), style)[0],
    ]
    for figure in figures:
        for ax in _panels(figure):
            assert not ax.collections or all(len(c.get_segments()) == 0 for c in ax.collections), (
                ax.get_title()
            )
            assert not [line for line in ax.lines if line.get_marker() == "_"], ax.get_title()
    with_seeds = task_bars_figure(best, style)[0]
    assert all(ax.collections for ax in _panels(with_seeds))  # the check above can fail


def _label_boxes(figure) -> list[tuple]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(figure).get_renderer()
    boxes = []
    for ax in _panels(figure):
        frame = ax.get_window_extent(renderer)
        for label in ax.texts:
            label.update_positions(renderer)
            boxes.append((ax, frame, Text.get_window_extent(label, renderer), label.get_text()))
    return boxes


@pytest.mark.parametrize("crowded", [False, True], ids=["synthetic", "every-point-at-one-place"])
def test_pareto_labels_never_overlap_and_stay_in_their_panel(synthetic, crowded: bool):
    _frame, best, _selection = synthetic
    cells = best
    if crowded:  # 40 cells per panel on one spot: more labels than free places around it
        import pandas as pd

        one_spot = best.assign(gpu_hours=1.0, test=0.5, ci_low=0.4, ci_high=0.6)
        copies = [one_spot.assign(method=one_spot["method"] + f"-{k}") for k in range(5)]
        cells = pd.concat(copies, ignore_index=True)
    style = Style(sorted(set(cells["method"])), sorted(set(cells["model"])))
    figure, _title, caption = pareto_figure(cells, style, hours_axis(cells))
    boxes = _label_boxes(figure)
    for i, (ax, frame, box, text) in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text
        for other_ax, _f, other, other_text in boxes[i + 1 :]:
            assert other_ax is not ax or not box.overlaps(other), (text, other_text)
    if crowded:
        assert len(boxes) < len(cells) and "left out where they would overlap" in caption
    else:
        assert len(boxes) == len(cells) and "left out" not in caption


def test_a_cell_that_predicts_one_class_is_flagged_on_the_bars(synthetic):
    _frame, best, _selection = synthetic
    flagged = best.assign(collapsed_seeds=[1] + [0] * (len(best) - 1))
    style = Style(sorted(set(best["method"])), sorted(set(best["model"])))
    figure, _title, caption = task_bars_figure(flagged, style)
    assert [t.get_text() for ax in _panels(figure) for t in ax.texts] == ["one class"]
    assert "'one class': some seed predicted a single class" in caption


def test_energy_has_its_pareto_figure_only_when_every_cell_has_it(synthetic):
    from peftbench.collect.plots import Style, energy_axis, has_energy, pareto_figure

    _frame, best, _selection = synthetic
    assert not has_energy(best) and not has_energy(best.assign(energy_wh=[1.0] + [None] * (len(best) - 1)))
    measured = best.assign(energy_wh=best["train_seconds"] / 60)  # as if measured: any positive Wh
    style = Style(sorted(best["method"].unique()), sorted(best["model"].unique()))
    _figure, title, _caption = pareto_figure(measured, style, energy_axis(measured))
    assert has_energy(measured) and title == "Pareto front: test metric vs GPU energy"
