"""The paper tables from the synthetic results set, golden-filed in Markdown, LaTeX and CSV.

After an intended change of a table, regenerate the golden files and review their diff:
    PEFTBENCH_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_tables.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.collect.formats import latex_escape, to_csv, to_html, to_latex, to_markdown, write_table
from peftbench.collect.merge import mark_best_per_task, select_cells
from peftbench.collect.tables import added_params, cost_table, main_table, scale_table, summary_table
from tests.conftest import check_golden

RENDER = {".md": to_markdown, ".tex": to_latex, ".csv": to_csv}
BUILD = {"main": main_table, "cost": cost_table, "scale": scale_table, "summary": summary_table}


@pytest.mark.parametrize("suffix", [".md", ".tex", ".csv"])
@pytest.mark.parametrize("table", ["main", "cost", "scale", "summary"])
def test_tables_match_their_golden_files(synthetic, table: str, suffix: str):
    _frame, best, selection = synthetic
    check_golden(f"{table}{suffix}", RENDER[suffix](BUILD[table](best, selection)))


def test_bootstrap_intervals_print_as_ranges(synthetic):
    frame, _best, _selection = synthetic
    selection = select_cells(frame, "bootstrap")
    text = to_markdown(main_table(mark_best_per_task(selection.best), selection))
    assert "**0.891** [0." in text and " ± " not in text.split("\n\n")[0]
    assert "percentile bootstrap interval" in text


def test_missing_cells_single_seeds_and_escaping(synthetic):
    _frame, best, selection = synthetic
    one_seed = best[~((best["task"] == "cola") & (best["method"] == "bitfit"))].copy()
    one_seed.loc[one_seed["method"] == "full", ["n_seeds", "ci_low", "ci_high"]] = [
        1,
        float("nan"),
        float("nan"),
    ]
    table = main_table(mark_best_per_task(one_seed), selection)
    markdown = to_markdown(table)
    assert "| minilm-l6 | bitfit | 3 | 0.821 ± 0.028 | – |" in markdown
    assert "| minilm-l6 | full | 1 | 0.861 | 0.511 |" in markdown
    assert "No interval where a cell has a single seed." in markdown
    csv_row = next(line for line in to_csv(table).splitlines() if line.startswith("minilm-l6,full,"))
    assert csv_row.split(",")[3:7] == ["0.860667", "", "", "1"]
    assert latex_escape("prompt_tuning 5% & #1") == r"prompt\_tuning 5\% \& \#1"
    assert "<strong>0.891</strong>" in to_html(main_table(best, selection))


def test_write_table_writes_three_files(synthetic, tmp_path: Path):
    _frame, best, selection = synthetic
    written = write_table(main_table(best, selection), tmp_path)
    assert [p.name for p in written] == ["main.md", "main.tex", "main.csv"]
    assert r"\toprule" in written[1].read_text() and r"\bottomrule" in written[1].read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.csv", "main.md", "main.tex"]  # no temp left


def test_a_table_written_again_replaces_each_file_whole(synthetic, tmp_path: Path):
    """`collect` again: each file is renamed over the last (a new inode), never rewritten in place,
    so a reader (or a crash) sees the old table or the new one, not half of either."""
    _frame, best, selection = synthetic
    table = main_table(best, selection)
    first = {p.name: p.stat().st_ino for p in write_table(table, tmp_path)}
    with (tmp_path / "main.csv").open() as held:  # a reader in the middle of the old file
        second = {p.name: p.stat().st_ino for p in write_table(table, tmp_path)}
        assert held.read() == (tmp_path / "main.csv").read_text()
    assert all(first[name] != second[name] for name in first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.csv", "main.md", "main.tex"]


def test_the_cost_table_shows_energy_where_it_was_measured(synthetic):
    _frame, best, selection = synthetic
    assert "energy Wh" not in to_markdown(cost_table(best, selection))  # CPU results: no column
    measured = best.assign(energy_wh=[12.5] + [None] * (len(best) - 1))  # one cell on a GPU with NVML
    text = to_markdown(cost_table(measured, selection))
    assert "| energy Wh |" in text and "| 12.5 |" in text and "time-weighted GPU utilisation" in text


def test_added_params_are_none_where_every_weight_trains_whatever_the_method_is_called(synthetic):
    """The scale table's 'added params' reads trainable = total from the results (full fine-tuning adds
    nothing, it trains all), never the method's name."""
    _frame, best, selection = synthetic
    full = best[best["method"] == "full"]
    assert (full["trainable_params"] == full["total_params"]).all()
    assert added_params(full) == 0
    assert added_params(full.assign(method_family="my_full", method="everything")) == 0
    lora = best[best["method"] == "lora"]
    assert added_params(lora) == pytest.approx(lora["trainable_params"].mean())
    half = full.assign(trainable_params=full["total_params"] // 2)  # named full, but half of it trains
    assert added_params(half) == pytest.approx(half["trainable_params"].mean())
    rows = {(r[0], r[1]): r for r in scale_table(best, selection).rows}
    assert rows[("minilm-l6", "full")][4] == 0 and rows[("minilm-l6", "lora")][4] > 0
