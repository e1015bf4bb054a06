"""benchmarks/bench_halving.py plans what it says (its figures come from `make bench-halving`)."""

from __future__ import annotations

from pathlib import Path

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
