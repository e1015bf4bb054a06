"""The collector: merge, tolerate bad files, choose on validation (never test), print the table."""

from __future__ import annotations

from pathlib import Path

from peftbench.collect import collect, select_best, write_collection
from peftbench.config import TrainingSettings
from peftbench.results import RunPaths, write_result
from tests.test_results import make_result


def put(
    sweep_dir: Path,
    lr: float,
    val: float,
    test: float,
    seed: int = 0,
    method: str = "lora",
    status: str = "success",
) -> str:
    result = make_result(status)
    spec = result.spec.model_copy(
        update={
            "training": TrainingSettings.model_validate(
                result.spec.training.model_dump() | {"learning_rate": lr}
            ),
            "seed": seed,
            "label": method,
            "method": method,
        }
    )
    cost = result.cost.model_copy(
        update={
            "trainable_params": 10,
            "total_params": 1000,
            "train_seconds": 2.0,
            "peak_rss_bytes": 2_000_000_000,
        }
    )
    result = result.model_copy(
        update={
            "spec": spec,
            "run_id": spec.run_id,
            "cost": cost,
            "validation": {"accuracy": val},
            "test": {"accuracy": test},
        }
    )
    write_result(RunPaths(sweep_dir / spec.run_id).result, result)
    return spec.run_id


def test_best_point_is_chosen_on_validation_never_on_test(tmp_path: Path):
    put(tmp_path, lr=1e-4, val=0.90, test=0.60)
    put(tmp_path, lr=5e-4, val=0.70, test=0.99)  # the planted test-set outlier must not win
    [cell] = select_best(collect([tmp_path]).frame).to_dict("records")
    assert cell["validation"] == 0.90 and cell["test"] == 0.60 and cell["n_points"] == 2


def test_seeds_of_one_point_are_averaged(tmp_path: Path):
    put(tmp_path, lr=1e-4, val=0.80, test=0.70, seed=0)
    put(tmp_path, lr=1e-4, val=0.90, test=0.80, seed=1)
    put(tmp_path, lr=5e-4, val=0.84, test=0.99, seed=0)
    [cell] = select_best(collect([tmp_path]).frame).to_dict("records")
    assert cell["n_seeds"] == 2 and abs(cell["validation"] - 0.85) < 1e-9 and abs(cell["test"] - 0.75) < 1e-9


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
    assert "| minilm-l6 | lora | 0.800 |" in report.table
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
        "| model | method | movie_sentiment (accuracy) | trainable % | train s | peak RSS GB |"
    )
    assert table[2] == "| minilm-l6 | bitfit | 0.700 | 1 | 2.0 | 2.00 |"
    assert table[3] == "| minilm-l6 | lora | 0.800 | 1 | 2.0 | 2.00 |"


def test_a_run_in_two_sweeps_counts_once(tmp_path: Path):
    put(tmp_path / "a", lr=1e-4, val=0.9, test=0.8)
    put(tmp_path / "b", lr=1e-4, val=0.9, test=0.8)
    assert len(collect([tmp_path / "a", tmp_path / "b"]).frame) == 1
