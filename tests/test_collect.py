"""The collector: merge, tolerate bad files, choose on validation (never test), intervals, the marks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from peftbench.collect.merge import collect, mark_best_per_task, select_best, select_cells
from peftbench.collect.outputs import write_collection
from peftbench.core.paths import RunPaths
from peftbench.core.results import write_result, write_spec
from peftbench.core.spec import TrainingSettings
from tests.test_results import make_result

T_975_2 = 4.302652730  # Student t, 97.5% quantile, 2 degrees of freedom


def put(
    sweep_dir: Path,
    lr: float,
    val: float,
    test: float,
    seed: int = 0,
    method: str = "lora",
    status: str = "success",
    metric: str = "accuracy",
    finished_at: str = "2026-01-01T00:01:00+00:00",
    distributed: str | None = None,
) -> str:
    result = make_result(status)
    spec = result.spec.model_copy(
        update={
            "training": TrainingSettings.model_validate(
                result.spec.training.model_dump() | {"learning_rate": lr, "distributed": distributed}
            ),
            "seed": seed,
            "label": method,
            "method": method,
            "task": result.spec.task.model_copy(update={"metric": metric}),
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
            "validation": {metric: val},
            "test": {metric: test},
            "finished_at": finished_at,
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


def test_a_run_in_two_sweeps_counts_once(tmp_path: Path):
    put(tmp_path / "a", lr=1e-4, val=0.9, test=0.8)
    put(tmp_path / "b", lr=1e-4, val=0.9, test=0.8)
    assert len(collect([tmp_path / "a", tmp_path / "b"]).frame) == 1


def test_a_run_in_two_sweeps_keeps_its_success_over_an_older_failure(tmp_path: Path):
    put(tmp_path / "a", lr=1e-4, val=0.0, test=0.0, status="failed", finished_at="2026-01-01T00:00:00+00:00")
    put(tmp_path / "b", lr=1e-4, val=0.9, test=0.8, finished_at="2026-01-02T00:00:00+00:00")
    for order in (["a", "b"], ["b", "a"]):
        [row] = collect([tmp_path / name for name in order]).frame.to_dict("records")
        assert row["status"] == "success" and row["sweep"] is not None


def test_seed_intervals_are_t_intervals_with_n(tmp_path: Path):
    for seed, test in enumerate([0.70, 0.80, 0.75]):
        put(tmp_path, lr=1e-4, val=0.9, test=test, seed=seed)
    [cell] = select_best(collect([tmp_path]).frame).to_dict("records")
    half = T_975_2 * 0.05 / math.sqrt(3)
    assert cell["n_seeds"] == 3 and cell["test"] == pytest.approx(0.75)
    assert (cell["ci_low"], cell["ci_high"]) == (pytest.approx(0.75 - half), pytest.approx(0.75 + half))
    assert "0.750 ± 0.124" in write_collection([tmp_path], tmp_path).table
    boot = select_best(collect([tmp_path]).frame, "bootstrap").iloc[0]
    assert 0.70 - 1e-9 <= boot["ci_low"] < 0.75 < boot["ci_high"] <= 0.80 + 1e-9


def test_a_planted_test_outlier_never_picks_the_point(tmp_path: Path):
    for seed in range(3):  # the point that is best on validation, mediocre on test
        put(tmp_path, lr=1e-4, val=0.85 + 0.01 * seed, test=0.70, seed=seed)
    put(tmp_path, lr=5e-4, val=0.80, test=0.70, seed=0)  # worse on validation ...
    put(tmp_path, lr=5e-4, val=0.81, test=1.00, seed=1)  # ... with one seed far off on test
    put(tmp_path, lr=5e-4, val=0.82, test=0.70, seed=2)
    [cell] = select_best(collect([tmp_path]).frame).to_dict("records")
    assert cell["learning_rate"] == 1e-4 and cell["test"] == pytest.approx(0.70) and cell["n_points"] == 2


def test_the_choice_depends_on_validation_only(tmp_path: Path):
    """Rewriting every test number leaves the chosen point of every cell unchanged."""
    for lr, val in ((1e-4, 0.81), (3e-4, 0.86), (1e-3, 0.84)):
        for seed in range(2):
            put(tmp_path, lr=lr, val=val + 0.01 * seed, test=0.5, seed=seed)
    frame = collect([tmp_path]).frame
    chosen = select_best(frame)[["params", "training"]]
    for scramble in (
        lambda x: 1 - x,
        lambda x: x * 0 + 0.99,
        lambda x: x.sample(frac=1, random_state=0).values,
    ):
        frame = frame.assign(test_accuracy=scramble(frame["test_accuracy"]))
        assert select_best(frame)[["params", "training"]].equals(chosen)
    assert select_best(frame).iloc[0]["learning_rate"] == 3e-4


def test_metric_direction_is_data_lower_is_better(tmp_path: Path):
    put(tmp_path, lr=1e-4, val=0.20, test=0.30, metric="loss")
    put(tmp_path, lr=5e-4, val=0.40, test=0.10, metric="loss")
    [cell] = select_best(collect([tmp_path]).frame).to_dict("records")
    assert cell["validation"] == 0.20 and cell["test"] == 0.30 and not cell["higher_is_better"]


def test_the_seed_used_for_submissions_is_the_best_on_validation(tmp_path: Path):
    ids = [put(tmp_path, lr=1e-4, val=v, test=t, seed=s) for s, (v, t) in enumerate([(0.8, 0.9), (0.9, 0.1)])]
    [cell] = select_best(collect([tmp_path]).frame).to_dict("records")
    assert cell["selected_run_id"] == ids[1] and set(cell["run_ids"].split(",")) == set(ids)


def test_best_and_overlapping_cells_are_marked(tmp_path: Path):
    for seed, (a, b, c) in enumerate([(0.80, 0.78, 0.60), (0.84, 0.80, 0.61), (0.82, 0.82, 0.62)]):
        put(tmp_path, lr=1e-4, val=0.9, test=a, seed=seed, method="full")
        put(tmp_path, lr=1e-4, val=0.9, test=b, seed=seed, method="lora")
        put(tmp_path, lr=1e-4, val=0.9, test=c, seed=seed, method="bitfit")
    marked = mark_best_per_task(select_best(collect([tmp_path]).frame)).set_index("method")
    assert marked.loc["full", "best_in_task"] and not marked.loc["lora", "best_in_task"]
    assert marked.loc["lora", "overlaps_best"] is True and marked.loc["bitfit", "overlaps_best"] is False
    table = write_collection([tmp_path], tmp_path).table
    assert "**0.820** ± " in table and "0.800 ± 0.050†" in table
    assert "interval overlaps the best's" in table


def test_unfinished_runs_and_cells_without_validation_are_reported(tmp_path: Path):
    put(tmp_path, lr=1e-4, val=0.9, test=0.8)
    lost = make_result().spec.model_copy(update={"seed": 5})
    write_spec(RunPaths(tmp_path / lost.run_id).spec, lost)
    assert collect([tmp_path]).unfinished == [str(tmp_path / lost.run_id)]
    frame = collect([tmp_path]).frame.drop(columns=["validation_accuracy"])
    selection = select_cells(frame)
    assert selection.best.empty and "no run has a validation accuracy" in selection.skipped[0]


def test_two_engines_never_share_a_cell(tmp_path: Path):
    """FSDP and DeepSpeed differ in memory and loss: a label run on both makes two rows."""
    put(tmp_path, 1e-3, 0.70, 0.60, method="full", distributed="fsdp")
    put(tmp_path, 1e-3, 0.90, 0.80, method="full", distributed="zero3")
    put(tmp_path, 1e-3, 0.50, 0.40, method="full")
    best = select_cells(collect([tmp_path]).frame).best
    by_method = dict(zip(best["method"], best["test"], strict=True))
    assert by_method == {"full (fsdp)": 0.60, "full (zero3)": 0.80, "full": 0.40}
