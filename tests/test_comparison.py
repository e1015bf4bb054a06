"""The paper column: the study's published figure beside ours, with the difference, per cell, on the
synthetic results set (tests/synthetic_results.py) and a published-figures file written for it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from peftbench.collect.comparison import comparison_tables
from peftbench.collect.formats import to_markdown
from peftbench.collect.merge import collect
from peftbench.collect.outputs import save_collection

STUDY = {
    "study": "A synthetic study, Table 3",
    "source": "Table 3, dev",
    "sweeps": ["synth"],
    "selection": "best_over_grid",
    "scale": "percent",
    "models": {"MiniLM-L6": "minilm-l6", "XLM-R base": "xlmr-base"},
    "methods": {"FT": "full", "LoRA": "lora"},
    "columns": {
        "sentiment": {"task": "movie_sentiment", "metric": "accuracy"},
        "CoLA": {"task": "cola", "metric": "mcc"},
        "params": {"task": "movie_sentiment", "metric": "trainable_params"},
        "RAM MB": {"task": "movie_sentiment", "metric": "peak_rss_bytes", "factor": 1e6},
    },
    "rows": [
        {
            "model": "MiniLM-L6",
            "method": "FT",
            "sentiment": 85.0,
            "CoLA": None,
            "params": 22713216,
            "RAM MB": 1500,
        },
        {"model": "XLM-R base", "method": "LoRA", "sentiment": 90.0, "CoLA": 50.0},
    ],
}


@pytest.fixture
def published(tmp_path: Path) -> Path:
    path = tmp_path / "synthetic-study.yaml"
    path.write_text(yaml.safe_dump(STUDY, sort_keys=False), encoding="utf-8")
    return path


def cell(best, model: str, method: str, task: str):
    return best[(best["model"] == model) & (best["method"] == method) & (best["task"] == task)].iloc[0]


def test_each_published_score_sits_beside_ours_with_the_difference(synthetic, published: Path):
    frame, best, selection = synthetic
    paper, cost, protocols = comparison_tables(frame, best, selection, [published])
    assert protocols.name == "protocols"  # the study chose over its grid: both protocols side by side
    keys = [c.key for c in paper.columns]
    rows = {(r[0], r[1], r[2]): dict(zip(keys, r, strict=True)) for r in paper.rows}
    ours = float(cell(best, "minilm-l6", "full", "movie_sentiment")["test_accuracy"])
    full = rows[("minilm-l6", "full", "movie_sentiment")]
    assert full["ours"] == pytest.approx(ours) and full["paper"] == pytest.approx(0.85)
    assert full["difference"] == pytest.approx(ours - 0.85)
    unknown = rows[("minilm-l6", "full", "cola")]  # null in the study: no paper figure, no difference
    assert unknown["paper"] is None and unknown["difference"] is None and unknown["ours"] is not None
    lora = rows[("xlmr-base", "lora", "cola")]
    assert lora["ours"] == pytest.approx(float(cell(best, "xlmr-base", "lora", "cola")["test_mcc"]))
    # the study chose its figures as the best over its grid: our grid maximum is printed beside it
    assert lora["ours_grid"] >= lora["ours"] and lora["grid_difference"] == pytest.approx(
        lora["ours_grid"] - 0.5
    )
    text = to_markdown(paper)
    assert "| ours − paper |" in text and f"{ours - 0.85:+.3f}" in text and "printed in percent" in text
    params, ram = cost.rows  # each cost in the study's unit; ours / paper beside it
    assert params[3:] == ["params (trainable_params)", 22713216, 22713216, 1.0]
    assert ram[3:] == ["RAM MB (peak_rss_bytes)", 3000.0, 1500.0, 2.0]  # ours: 3e9 bytes = 3,000 MB
    assert "| 22,713,216 | 22,713,216 | ×1 |" in to_markdown(cost)


def test_a_study_without_published_figures_has_no_paper_column(synthetic, tmp_path: Path):
    frame, best, selection = synthetic  # sweep "synth": no shipped study names it
    assert comparison_tables(frame, best, selection) == []
    saved = save_collection(collect([Path(frame["run_dir"].iloc[0]).parent]), selection, tmp_path)
    assert "ours − paper" not in saved.table
