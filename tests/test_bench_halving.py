"""benchmarks/bench_halving.py plans what it says (its figures come from `make bench-halving`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from benchmarks import bench_halving

from peftbench.plan.loading import load_sweep


def test_both_arms_plan_the_same_grid_one_of_them_searched(tmp_path: Path):
    args = bench_halving.parse([])
    runs = {}
    for arm in ("full", "halving"):
        path = tmp_path / f"{arm}.yaml"
        path.write_text(yaml.safe_dump(bench_halving.sweep_data(args, arm)), encoding="utf-8")
        runs[arm] = load_sweep(path).runs
    cells = len(args.tasks) * len(args.methods)
    assert len(runs["full"]) == cells * args.points * args.seeds and all(
        r.search is None for r in runs["full"]
    )
    winners = [r for r in runs["halving"] if r.search.trains_winner]
    assert len(winners) == cells * (args.seeds - 1)
    assert len(runs["halving"]) == cells * args.points + len(winners)
    assert runs["halving"][0].search.rung_steps(runs["halving"][0].training.max_steps) == {3: 0, 9: 1}


def _best(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    """`select_cells(...).best`'s columns that the comparison reads, one row per (task, lr, test)."""
    return pd.DataFrame(
        [
            {
                "model": "minilm-l6",
                "method": "lora",
                "task": task,
                "learning_rate": lr,
                "params": "{}",
                "training": f"lr={lr}",
                "test": test,
                "ci_low": 0.60,
                "ci_high": 0.70,
                "n_seeds": 3,
            }
            for task, lr, test in rows
        ]
    )


def test_cells_pair_only_where_both_arms_chose_and_agree_by_point_or_interval():
    full = _best([("movie", 1e-3, 0.65), ("tweet", 1e-2, 0.65), ("only_full", 1e-3, 0.5)])
    halving = _best([("movie", 1e-3, 0.65), ("tweet", 3e-3, 0.55)])
    cells = {c["cell"]: c for c in bench_halving.paired_cells({"full": full, "halving": halving})}
    assert set(cells) == {"minilm-l6 · lora · movie", "minilm-l6 · lora · tweet"}  # only_full: no pair
    assert cells["minilm-l6 · lora · movie"]["same_point"]
    tweet = cells["minilm-l6 · lora · tweet"]
    assert not tweet["same_point"] and not tweet["within_interval"]
    assert tweet["difference"] == pytest.approx(-0.10)
    assert bench_halving.paired_cells({"full": full, "halving": None}) == []


def test_an_unreadable_or_missing_record_gives_no_earlier_arms(tmp_path: Path):
    assert bench_halving.earlier_arms_in(tmp_path / "none.json") == {}
    (tmp_path / "cut.json").write_text('{"arms": {"full"', encoding="utf-8")
    assert bench_halving.earlier_arms_in(tmp_path / "cut.json") == {}
    (tmp_path / "ok.json").write_text('{"arms": {"full": {"seconds": 2.0}}}', encoding="utf-8")
    assert bench_halving.earlier_arms_in(tmp_path / "ok.json") == {"full": {"seconds": 2.0}}


def test_a_work_folder_of_another_grid_is_refused_in_one_line(tmp_path: Path):
    bench_halving.plan_arm(bench_halving.parse([]), "full", tmp_path)
    bench_halving.plan_arm(bench_halving.parse([]), "full", tmp_path)  # the same grid resumes
    with pytest.raises(SystemExit, match=r"full\.yaml: --work holds another grid of arm 'full'"):
        bench_halving.plan_arm(bench_halving.parse(["--points", "3"]), "full", tmp_path)
