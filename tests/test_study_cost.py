"""The cost table in the BERTić study's units: s, MB, exact counts, and P/R/F1 never blank where a
task type has them (binary for a task that sets it, entity-level for tagging, macro otherwise)."""

from __future__ import annotations

import math

from peftbench.collect.formats import to_markdown
from peftbench.collect.study_cost import study_cost_table


def test_units_exact_counts_and_the_averaging_each_row_used(synthetic):
    _frame, best, selection = synthetic
    best = best.copy()
    binary = (best["task"] == "movie_sentiment") & (best["method"] == "full")
    best.loc[binary, ["test_precision_binary", "test_recall_binary", "test_f1_binary"]] = [0.78, 0.81, 0.79]
    tagging = (best["task"] == "cola") & (best["method"] == "bitfit")  # as a tagging task reports them
    best.loc[tagging, ["test_precision_macro", "test_recall_macro", "test_f1_macro"]] = math.nan
    best.loc[tagging, ["test_entity_precision", "test_entity_recall", "test_entity_f1"]] = [0.5, 0.4, 0.44]
    table = study_cost_table(best, selection)
    keys = [c.key for c in table.columns]
    rows = [dict(zip(keys, r, strict=True)) for r in table.rows]
    assert len(rows) == len(best) and all(r["precision"] is not None and r["f1"] is not None for r in rows)
    full = next(
        r
        for r in rows
        if r["task"] == "movie_sentiment" and r["model"] == "minilm-l6" and r["method"] == "full"
    )
    assert (full["precision"], full["recall"], full["f1"], full["averaging"]) == (0.78, 0.81, 0.79, "binary")
    assert full["peak_rss_mb"] == 3000.0 and full["trainable_params"] == 22_713_216
    assert {r["averaging"] for r in rows if r["task"] == "cola" and r["method"] == "bitfit"} == {"entity"}
    assert {r["averaging"] for r in rows if r["method"] == "lora"} == {"macro"}
    text = to_markdown(table)
    assert "| 22,713,216 |" in text and "| time (s) | RAM (MB) | parameters |" in text
