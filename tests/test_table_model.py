"""The table model: how a score prints with its interval, how a cell is read, which P/R/F1 a cell reports."""

from __future__ import annotations

import math
from typing import get_args

import pandas as pd

from peftbench.collect.table_model import (
    PRF_SOURCES,
    Score,
    cells_by_key,
    collapsed_count,
    flagged_method,
    in_task_order,
    precision_recall_f1,
    score_of,
)
from peftbench.core.spec import Averaging


def test_a_score_prints_its_interval_as_the_interval_is():
    assert Score(0.8123, 0.8, 0.8246, 3).texts() == ("0.812", " ± 0.012")
    assert Score(0.8123, 0.79, 0.82, 3).texts() == ("0.812", " [0.790, 0.820]")
    assert Score(0.8123, math.nan, math.nan, 1).texts() == ("0.812", "")


def test_an_unmarked_score_keeps_its_numbers_and_one_class_flag_not_its_column_marks():
    marked = Score(0.9, 0.8, 1.0, 3, best=True, overlaps_best=True, collapsed=2)
    assert marked.unmarked() == Score(0.9, 0.8, 1.0, 3, collapsed=2)


def test_a_cell_is_read_once_for_every_table():
    cell = pd.Series(
        {
            "model": "m",
            "method": "lora",
            "task": "t",
            "test": 0.5,
            "ci_low": 0.4,
            "ci_high": 0.6,
            "n_seeds": 3,
        }
    )
    assert score_of(cell) == Score(0.5, 0.4, 0.6, 3)
    assert collapsed_count(cell) == 0 and flagged_method(cell) == "lora"
    flagged = cell.copy()
    flagged["collapsed_seeds"] = 2.0
    assert collapsed_count(flagged) == 2 and flagged_method(flagged) == "lora ⚠"
    assert score_of(flagged).collapsed == 2
    assert list(cells_by_key(pd.DataFrame([cell]))) == [("m", "lora", "t")] and cells_by_key(None) == {}


def test_cells_go_by_task_in_first_seen_order_then_model_and_method():
    best = pd.DataFrame(
        {
            "task": ["b", "a", "b", "a"],
            "metric": ["mcc"] * 4,
            "model": ["y", "x", "x", "x"],
            "method": ["lora", "lora", "full", "bitfit"],
        }
    )
    ordered = in_task_order(best)
    assert list(zip(ordered["task"], ordered["model"], ordered["method"], strict=True)) == [
        ("b", "x", "full"),
        ("b", "y", "lora"),
        ("a", "x", "bitfit"),
        ("a", "x", "lora"),
    ]


def test_the_averagings_are_core_specs_with_macro_after_a_tasks_own_choice():
    averagings = [a for a, _keys in PRF_SOURCES]
    assert sorted(averagings[:-1]) == sorted(get_args(Averaging)) and averagings[-1] == "entity"
    assert averagings.index("macro") == len(averagings) - 2
    assert dict(PRF_SOURCES)["weighted"] == (
        "test_precision_weighted",
        "test_recall_weighted",
        "test_f1_weighted",
    )


def test_a_cell_reports_its_tasks_averaging_then_macro_then_entity_level():
    macro = {"test_precision_macro": 0.5, "test_recall_macro": 0.6, "test_f1_macro": 0.55}
    binary = {"test_precision_binary": 0.7, "test_recall_binary": 0.8, "test_f1_binary": 0.75}
    assert precision_recall_f1(pd.Series(macro | binary)) == ("binary", [0.7, 0.8, 0.75])
    assert precision_recall_f1(pd.Series(macro | {"test_f1_binary": math.nan})) == ("macro", [0.5, 0.6, 0.55])
    entity = {"test_entity_precision": 0.9, "test_entity_recall": 0.8, "test_entity_f1": 0.85}
    assert precision_recall_f1(pd.Series(entity)) == ("entity", [0.9, 0.8, 0.85])
    assert precision_recall_f1(pd.Series({"test_accuracy": 0.9})) == (None, [None, None, None])
