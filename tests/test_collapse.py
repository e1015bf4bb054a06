"""Cells whose test predictions collapsed to one class: found from the real predictions files (or the
metrics only such a run gives), and flagged in every table format."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.collect.collapse import predicts_one_class
from peftbench.collect.formats import to_html, to_latex, to_markdown
from peftbench.collect.merge import collect, mark_best_per_task, select_cells
from peftbench.collect.tables import cost_table, main_table
from peftbench.core.predictions import Prediction, predictions_path, write_predictions
from tests.synthetic_results import write_synthetic_sweep


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory):
    """The synthetic sweep with real predictions, where two seeds of xlmr-base · bitfit · cola predict
    class 0 for every test example."""
    sweep = tmp_path_factory.mktemp("runs") / "synth"
    write_synthetic_sweep(sweep, predictions=True)
    frame = collect([sweep]).frame
    runs = frame[(frame["model"] == "xlmr-base") & (frame["method"] == "bitfit") & (frame["task"] == "cola")]
    for run_dir in sorted(runs["run_dir"])[:2]:
        write_predictions(predictions_path(Path(run_dir)), [Prediction(index=i, label=0) for i in range(4)])
    selection = select_cells(collect([sweep]).frame)
    return mark_best_per_task(selection.best), selection


def test_the_cell_with_collapsed_seeds_is_counted_and_no_other(flagged):
    best, _selection = flagged
    counted = best.set_index(["model", "method", "task"])["collapsed_seeds"]
    assert counted[("xlmr-base", "bitfit", "cola")] == 2
    assert counted.drop(("xlmr-base", "bitfit", "cola")).eq(0).all()


def test_every_format_flags_the_cell_and_says_why(flagged):
    best, selection = flagged
    main, cost = main_table(best, selection), cost_table(best, selection)
    markdown = to_markdown(main)
    row = next(line for line in markdown.splitlines() if line.startswith("| xlmr-base | bitfit |"))
    assert row.rstrip(" |").endswith("⚠") and markdown.count("⚠") == 2  # the cell and the note
    assert "⚠: predictions collapsed to one class" in markdown
    assert "xlmr-base · bitfit · cola (2 of 3 seeds)" in markdown
    assert "(!)" in to_latex(main) and "⚠" not in to_latex(main)
    page = to_html(main)
    assert page.count('class="one-class"') == 1 and 'class="note one-class-note"' in page
    assert "| cola | xlmr-base | bitfit ⚠ |" in to_markdown(cost)
    assert 'class="one-class"' in to_html(cost)


@pytest.mark.parametrize(
    ("metrics", "collapsed"),
    [
        ({"test_mcc": 0.0, "test_recall_macro": 0.5}, True),  # two classes
        ({"test_mcc": 0.0, "test_recall_macro": 1 / 3}, True),  # three classes
        ({"test_mcc": 0.0, "test_recall_macro": 0.55}, False),  # MCC 0 by chance, not one class
        ({"test_mcc": 0.02, "test_recall_macro": 0.5}, False),
        ({"test_mcc": float("nan"), "test_recall_macro": 0.5}, False),
        ({"test_accuracy": 0.5}, False),  # no MCC recorded: nothing to say
    ],
)
def test_without_predictions_the_metrics_decide(metrics: dict, collapsed: bool, tmp_path: Path):
    assert predicts_one_class({"run_dir": str(tmp_path), **metrics}) is collapsed


def test_predictions_overrule_the_metrics(tmp_path: Path):
    write_predictions(predictions_path(tmp_path), [Prediction(index=i, label=i % 2) for i in range(4)])
    assert not predicts_one_class({"run_dir": str(tmp_path), "test_mcc": 0.0, "test_recall_macro": 0.5})
