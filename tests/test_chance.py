"""Chance in the tables: the majority-class row, and bold only for a real best (collect.chance)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd

from peftbench.collect.formats import to_csv, to_markdown
from peftbench.collect.merge import mark_best_per_task
from peftbench.collect.tables import main_table, summary_table
from peftbench.tasks.metrics import majority_rate

SELECTION = SimpleNamespace(interval="t", confidence=0.95, skipped=[])


def cells(task: str, scores: dict[str, float], majority: float | None = 0.652, **extra) -> list[dict]:
    """One task's best cells (one seed each), as select_cells gives them."""
    return [
        {
            "model": "minilm-l6",
            "method": method,
            "method_family": method,
            "task": task,
            "metric": "accuracy",
            "higher_is_better": True,
            "test": score,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "n_seeds": 1,
            "collapsed_seeds": extra.get("collapsed", {}).get(method, 0),
            "test_majority_rate": math.nan if majority is None else majority,
            "trainable_params": 100,
            "total_params": 1000,
            "train_seconds": 1.0,
            "peak_rss_bytes": 1e9,
            "peak_gpu_bytes": math.nan,
        }
        for method, score in scores.items()
    ]


def winners(rows: list[dict]) -> dict[str, list[str]]:
    marked = mark_best_per_task(pd.DataFrame(rows))
    return {t: sorted(c.loc[c["best_in_task"], "method"]) for t, c in marked.groupby("task")}


def test_majority_rate_is_the_share_of_the_most_frequent_label():
    assert majority_rate([1, 1, 0, 1]) == 0.75 and majority_rate([2, 0, 1]) == 1 / 3


def test_a_tie_at_chance_is_no_winner_and_the_chance_row_shows_it():
    at_chance = dict.fromkeys(["full", "lora", "bitfit", "prompt_tuning"], 0.652)
    rows = cells("epistemic_nli", at_chance) + cells("movie_sentiment", {"full": 0.81, "lora": 0.79}, 0.502)
    assert winners(rows) == {"epistemic_nli": [], "movie_sentiment": ["full"]}
    text = to_markdown(main_table(mark_best_per_task(pd.DataFrame(rows)), SELECTION))
    assert "**0.652**" not in text and "**0.810**" in text
    assert "|  | majority class | – | 0.652 | 0.502 |" in text
    assert "majority class: what always answering the test set's most frequent label scores" in text
    summary = to_markdown(summary_table(mark_best_per_task(pd.DataFrame(rows)), SELECTION))
    assert "|  | majority class | – | 0.652 | 0.502 | – | – | – |" in summary
    assert to_csv(main_table(mark_best_per_task(pd.DataFrame(rows)), SELECTION)).count("majority class") == 1


def test_a_best_must_clear_chance_and_the_untrained_none_row():
    below = cells("a", {"full": 0.60, "lora": 0.55})  # all below the majority rate 0.652
    under_none = cells("b", {"none": 0.74, "full": 0.72, "lora": 0.70})
    above_none = cells("c", {"none": 0.74, "full": 0.80, "lora": 0.70})
    tie_above = cells("d", {"full": 0.80, "lora": 0.80, "bitfit": 0.70})
    assert winners(below + under_none + above_none + tie_above) == {
        "a": [],
        "b": [],
        "c": ["full"],
        "d": [],
    }


def test_a_collapsed_cell_never_wins_and_old_results_keep_their_marks():
    collapsed = cells("a", {"full": 0.70, "lora": 0.66}, collapsed={"full": 1})
    assert winners(collapsed) == {"a": ["lora"]}
    old = cells("b", {"full": 0.61, "lora": 0.58}, majority=None)  # results without majority_rate
    assert winners(old) == {"b": ["full"]}
    assert "majority class" not in to_markdown(main_table(mark_best_per_task(pd.DataFrame(old)), SELECTION))
