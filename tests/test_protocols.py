"""The studies' "best over the grid" protocol beside our choice on validation, on the synthetic set."""

from __future__ import annotations

import json

import pytest

from peftbench.collect.formats import to_markdown
from peftbench.collect.merge import select_cells
from peftbench.collect.protocols import protocols_table, select_best_over_grid


def rank(cell) -> int:
    return json.loads(cell["params"])["r"]


def test_best_over_grid_takes_the_top_test_point_where_validation_takes_another(synthetic):
    frame, _best, _selection = synthetic
    frame = frame.copy()
    low_rank = (frame["method"] == "lora") & frame["params"].map(lambda p: json.loads(p).get("r") == 4)
    frame.loc[low_rank, "test_mcc"] += 0.2  # rank 4 is now best on test; validation still prefers 16
    frame.loc[low_rank, "test_accuracy"] += 0.1
    on_validation = select_cells(frame).best
    on_test = select_best_over_grid(frame).best

    def lora(best, task="cola"):
        return best[
            (best["model"] == "xlmr-base") & (best["method"] == "lora") & (best["task"] == task)
        ].iloc[0]

    assert rank(lora(on_validation)) == 16 and rank(lora(on_test)) == 4
    assert lora(on_test)["test"] == pytest.approx(lora(on_validation)["test"] - 0.005 * 2 + 0.2)
    # one point per cell (full, bitfit, ...): both protocols agree
    full = on_validation[on_validation["method"] == "full"].set_index(["model", "task"])["test"]
    assert full.equals(on_test[on_test["method"] == "full"].set_index(["model", "task"])["test"])

    table = protocols_table(on_validation, on_test)
    headers = [c.header for c in table.columns]
    assert headers[2:4] == [
        "movie_sentiment (accuracy) chosen on validation",
        "movie_sentiment (accuracy) best over grid",
    ]
    row = next(r for r in table.rows if r[:2] == ["xlmr-base", "lora"])
    cola = headers.index("cola (mcc) best over grid")
    assert row[cola].mean == pytest.approx(lora(on_test)["test"]) and row[cola - 1].mean < row[cola].mean
    assert "reads high" in to_markdown(table)
