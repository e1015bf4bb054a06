"""What `collect` writes (collect.outputs): results.parquet/.csv, table.md, unreadable.json; the counts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from peftbench.collect.merge import collect
from peftbench.collect.outputs import (
    CollectReport,
    save_collection,
    status_counts,
    summary_markdown,
    write_collection,
)
from tests.test_collect import put


def test_corrupt_and_partial_results_are_counted_named_and_skipped(tmp_path: Path):
    put(tmp_path, lr=1e-4, val=0.9, test=0.8)
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "result.json").write_text('{"run_id": ')
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "result.json").write_text('{"run_id": "partial", "status": "success"}')
    (tmp_path / "no-result-yet").mkdir()
    report = write_collection([tmp_path], tmp_path)
    assert report.n_results == 1 and len(report.unreadable) == 2
    assert any("corrupt/result.json" in u for u in report.unreadable)
    assert any("partial/result.json" in u for u in report.unreadable)
    assert "| minilm-l6 | lora | 1 | 0.800 |" in report.table
    for output in report.outputs:
        assert output.is_file()


def test_failed_runs_are_kept_in_the_frame_but_not_in_the_table(tmp_path: Path):
    put(tmp_path, lr=1e-4, val=0.9, test=0.8)
    put(tmp_path, lr=5e-4, val=0.0, test=0.0, status="failed")
    report = write_collection([tmp_path], tmp_path)
    assert report.n_results == 2 and report.n_success == 1
    assert "0.800" in report.table


def test_table_layout_rows_model_method_columns_tasks(tmp_path: Path):
    put(tmp_path, lr=1e-4, val=0.9, test=0.8, method="lora")
    put(tmp_path, lr=1e-4, val=0.9, test=0.7, method="bitfit")
    table = write_collection([tmp_path], tmp_path).table.splitlines()
    assert table[0] == (
        "| model | method | seeds | movie_sentiment (accuracy) | trainable % | train s | peak RSS GB |"
    )
    assert table[2] == "| minilm-l6 | bitfit | 1 | 0.700 | 1 | 2.0 | 2.00 |"
    assert table[3] == "| minilm-l6 | lora | 1 | **0.800** | 1 | 2.0 | 2.00 |"  # bold: best of the column


def test_without_results_or_successes_the_table_says_so_and_the_files_are_still_written(tmp_path: Path):
    empty = collect([tmp_path])
    assert summary_markdown(empty, None) == "_No results yet._\n"
    report = save_collection(empty, None, tmp_path / "out")
    assert report.n_results == 0 and all(p.is_file() for p in report.outputs)
    put(tmp_path, lr=1e-4, val=0.0, test=0.0, status="failed")
    failed = collect([tmp_path])
    assert summary_markdown(failed, None) == "_No successful runs yet._\n"
    assert json.loads((tmp_path / "out" / "unreadable.json").read_text()) == []


def test_runs_are_counted_by_status():
    frame = pd.DataFrame({"status": ["success", "oom", "failed", "success", "failed"]})
    assert status_counts(frame) == (2, {"failed": 2, "oom": 1})
    assert status_counts(pd.DataFrame()) == (0, {})
    report = CollectReport("", 5, 2, [], [], not_successful={"failed": 2, "oom": 1})
    assert report.counts() == "2 successful of 5 results (2 failed, 1 oom)"
