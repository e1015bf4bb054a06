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
from peftbench.core.spec import ModelRef
from peftbench.tasks import TASK_CATALOG
from tests.synthetic_results import result_for, spec_for

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


def test_belles_appendix_a_follows_our_row_in_the_category_table():
    """A result of the study sweep's own 7B LoRA 2M run: BELLE's Appendix A row for that cell follows
    ours (from: paper), its average Table 4's 0.609, and the note says what each data scale is."""
    base = spec_for("minilm-l6", "belle_2m", "lora", 0, sweep="belle-instruct")
    llama = ModelRef(name="llama-7b", source="huggyllama/llama-7b", family="llama")
    ddp = base.training.model_copy(update={"distributed": "ddp"})
    judge = base.task.model_copy(update={"metric": "judge"})
    spec = base.model_copy(update={"model": llama, "task": judge, "training": ddp, "label": "lora"})
    ours = {"others": 0.30, "rewrite": 0.70, "closed qa": 0.50}
    test = {"judge": sum(ours.values()) / 3, **{f"judge/{c}": v for c, v in ours.items()}}
    update = {"spec": spec, "run_id": spec.run_id, "validation": {"judge": 0.5}, "test": test}
    result = result_for("minilm-l6", "movie_sentiment", "lora", 0).model_copy(update=update)
    best = mark_best_per_task(select_cells(pd.DataFrame([flatten(result)])).best)
    table = category_table(best, None)
    assert table is not None
    headers = [c.header for c in table.columns]
    assert headers[:4] == ["model", "method", "data", "from"]
    assert headers[4:7] == ["others", "rewrite", "closed qa"] and headers[-2:] == ["average", "judge"]
    ours_row, paper_row = table.rows
    assert ours_row[3] == "ours" and paper_row[:4] == [*ours_row[:3], "paper"]
    by_header = dict(zip(headers, paper_row, strict=True))
    assert (by_header["others"], by_header["closed qa"], by_header["open qa"], by_header["average"]) == (
        0.364,
        0.531,
        0.369,
        0.609,
    )
    assert by_header["classification"] == 0.676  # Appendix A, Table 5, as the study's PDF prints it
    markdown = to_markdown(table)
    assert "0.6M = the first 600,000 rows of train_2M_CN" in markdown and "Appendix A" in markdown
