"""BELLE's tables from synthetic results: the scale table keeps the data-scale axis when every task is
tested on one common set, and the category table prints the judge's per-category scores."""

from __future__ import annotations

import pandas as pd
import pytest

from peftbench.collect.category_table import category_table
from peftbench.collect.formats import to_markdown
from peftbench.collect.merge import flatten, mark_best_per_task, select_cells
from peftbench.collect.tables import paper_tables, scale_table
from peftbench.core.results import RunResult
from peftbench.tasks import TASK_CATALOG
from tests.synthetic_results import result_for

# (model, method, data) -> the judge's test score per category (rewrite, others); macro = their mean.
SCORES = {
    ("minilm-l6", "full", "belle_0.6m"): (0.70, 0.40),
    ("minilm-l6", "full", "belle_2m"): (0.80, 0.50),
    ("minilm-l6", "lora", "belle_0.6m"): (0.60, 0.30),
    ("minilm-l6", "lora", "belle_2m"): (0.70, 0.36),
    ("minilm-l6", "lora", "belle_4m"): (0.75, 0.40),
}


def judged(model: str, method: str, task: str, seed: int) -> RunResult:
    base = result_for(model, "movie_sentiment", method, seed)
    rewrite, others = SCORES[(model, method, task)]
    spec = base.spec.model_copy(update={"task": TASK_CATALOG[task].model_copy(update={"metric": "judge"})})
    test = {"judge": (rewrite + others) / 2, "judge/others": others, "judge/rewrite": rewrite}
    return base.model_copy(
        update={"spec": spec, "run_id": spec.run_id, "validation": {"judge": 0.5 + seed / 100}, "test": test}
    )


@pytest.fixture(scope="module")
def belle():
    frame = pd.DataFrame([flatten(judged(*key, seed)) for key in SCORES for seed in (0, 1)])
    selection = select_cells(frame)
    return mark_best_per_task(selection.best), selection


def test_scale_table_has_one_row_per_model_method_and_data_scale(belle):
    best, selection = belle
    table = scale_table(best, selection)
    assert [c.header for c in table.columns][:4] == ["model", "method", "data", "score"]
    assert "tasks" not in [c.header for c in table.columns]
    assert [(r[1], r[2], round(r[3], 3)) for r in table.rows] == [
        ("full", "belle_0.6m", 0.55),
        ("full", "belle_2m", 0.65),
        ("lora", "belle_0.6m", 0.45),
        ("lora", "belle_2m", 0.53),
        ("lora", "belle_4m", 0.575),
    ]
    assert "tested on one common evaluation set" in to_markdown(table)


def test_without_a_common_test_set_the_scale_table_averages_over_tasks(belle):
    best, selection = belle
    own = best.assign(eval_set=None)
    table = scale_table(own, selection)
    assert [c.header for c in table.columns][:4] == ["model", "method", "score", "tasks"]
    assert [(r[1], round(r[2], 3), r[3]) for r in table.rows] == [
        ("full", 0.6, "2/3"),
        ("lora", 0.518, "3/3"),
    ]


def test_category_table_prints_each_category_and_the_macro_average(belle):
    best, selection = belle
    table = category_table(best, selection)
    assert table is not None and table.name == "category"
    markdown = to_markdown(table)
    assert "| model | method | data | others | rewrite | average |" in markdown
    assert "| minilm-l6 | lora | belle_4m | 0.400 | 0.750 | 0.575 |" in markdown
    assert [t.name for t in paper_tables(best, selection)] == ["main", "cost", "scale", "category"]


def test_no_category_table_without_a_judge(synthetic):
    _frame, best, selection = synthetic
    assert category_table(best, selection) is None
    assert [t.name for t in paper_tables(best, selection)] == ["main", "cost", "scale"]
