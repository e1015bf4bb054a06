"""Plots drawn from the synthetic results set: every figure, as PNG and SVG, and the CPU fallbacks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from peftbench.collect.plots import hours_axis, lora_rank_cells, make_plots, memory_axis

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


def test_no_results_no_plots(tmp_path: Path):
    assert make_plots(None, None, None, tmp_path) == []
