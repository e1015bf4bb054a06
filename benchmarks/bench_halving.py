"""Successive halving against the full grid: the same choice per cell, for what share of the compute?

    make bench-halving      (or: .venv/bin/python benchmarks/bench_halving.py --out runs/bench/halving.json)

One CPU grid, run twice in one process on ONE core (torch and OpenMP at one thread): MiniLM-L6 on
the demo's two sentiment tasks × LoRA and BitFit (`--methods` adds IA3) × six learning rates × three
seeds, sizes cut to fit a shared machine (see `SIZES`; docs/benchmarks.md says what was measured).
Arm `full`: every run trains its whole budget. Arm
`halving`: `search: {eta: 3, min_budget: 1/9, search_seeds: 1}`: the grid is searched by halving on
seed 0 (rungs at 1/9 and 1/3 of the steps), and seeds 1 and 2 train each cell's winner. Both arms
go through the local launcher's own loop (`run_local`, grid order, winner resolution) with each run
trained in this process (`run_one`), not in a process of its own: the import of torch per run
would dwarf these tiny runs.

Reported per cell (model × task × method): the point each arm chooses (on validation, as
`collect` chooses), their test means over the three seeds and the full grid's 95% t interval, and
whether the halving arm chose the same point or a test mean inside that interval. Overall: the
share of such cells, the mean test difference (halving - full) over cells with its 95% t interval,
and the compute ratio: the measured wall seconds of every run of the halving arm (halted ones
included, model loading and evaluations included) over those of the full arm. The issue's goal:
the same choice or within the interval in at least 90% of cells, at no more than 40% of the compute.
Wall seconds move with the machine's load; `budget_ratio` (training steps trained) does not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

SIZES = {  # cut so that both arms fit in about 20 minutes on one core
    "max_train_samples": 144,
    "max_eval_samples": 48,
    "batch_size": 8,
    "max_length": 32,
    "max_steps": 18,  # one epoch; rungs at steps 2 and 6
    "warmup_ratio": 0.1,
    "eval_strategy": "no",
}
METHODS = {
    "lora": {"r": 8, "lora_alpha": 16, "target_modules": ["query", "key", "value", "dense"]},
    "bitfit": {},
    "ia3": {},
}
LEARNING_RATES = {
    "lora": [3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2, 1.0e-1],
    "bitfit": [3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2, 1.0e-1],
    "ia3": [3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2, 1.0e-1],
}
SEARCH = {"strategy": "halving", "eta": 3, "min_budget": 1 / 9, "search_seeds": 1}


def sweep_data(args: argparse.Namespace, arm: str) -> dict[str, Any]:
    methods = {m: {**METHODS[m], "learning_rate": LEARNING_RATES[m][: args.points]} for m in args.methods}
    data: dict[str, Any] = {
        "name": f"bench-halving-{arm}",
        "models": ["minilm-l6"],
        "tasks": args.tasks,
        "methods": methods,
        "seeds": list(range(args.seeds)),
        "training": SIZES,
    }
    if arm == "halving":
        data["search"] = SEARCH
    return data


def run_arm(args: argparse.Namespace, arm: str, work: Path) -> dict[str, Any]:
    """Every run of one arm through the local launcher's loop, trained in this process."""
    import yaml
    from rich.console import Console

    from peftbench.launch.local import run_local
    from peftbench.plan.loading import load_sweep
    from peftbench.run.one import run_one

    path = work / f"{arm}.yaml"
    path.write_text(yaml.safe_dump(sweep_data(args, arm)), encoding="utf-8")
    runs = load_sweep(path).runs
    start = time.perf_counter()
    summary = run_local(
        runs, work / "runs", Console(stderr=True), lambda spec, paths, _progress: run_one(spec, paths.root)
    )
    return {"runs": len(runs), "failed": summary.failed, "seconds": time.perf_counter() - start}


def compare(work: Path, names: dict[str, str]) -> dict[str, Any]:
    """Per cell: both arms' choices and test means; overall: agreement, test difference, compute."""
    from peftbench.collect.merge import collect, select_cells

    frames = {arm: collect([work / "runs" / name]).frame for arm, name in names.items()}
    chosen = {
        arm: select_cells(frame).best.set_index(["model", "method", "task"]) for arm, frame in frames.items()
    }
    cells = [_cell(key, full, chosen["halving"].loc[key]) for key, full in chosen["full"].iterrows()]
    differences = [c["difference"] for c in cells]
    return {
        "cells": cells,
        "agree": sum(c["same_point"] or c["within_interval"] for c in cells),
        "same_point": sum(c["same_point"] for c in cells),
        "n_cells": len(cells),
        "mean_difference": statistics.fmean(differences),
        "difference_ci95": _t_interval(differences),
        **_costs(frames, {arm: work / "runs" / name for arm, name in names.items()}),
    }


def _costs(frames: dict[str, Any], sweep_dirs: dict[str, Path]) -> dict[str, Any]:
    """Each arm's measured wall seconds and training budgets, and halving's share of the full grid's."""
    seconds = {arm: float(frame["wall_seconds"].sum()) for arm, frame in frames.items()}
    budgets = {arm: _budget_spent(frame, sweep_dirs[arm]) for arm, frame in frames.items()}
    return {
        "run_seconds": seconds,
        "compute_ratio": seconds["halving"] / seconds["full"],
        "budgets_trained": budgets,
        "budget_ratio": budgets["halving"] / budgets["full"],
        "statuses": {arm: frame["status"].value_counts().to_dict() for arm, frame in frames.items()},
    }


def _budget_spent(frame: Any, sweep_dir: Path) -> float:
    """Training budgets trained, in whole runs: 1 per run that trained it all, its last rung's share
    per halted run. Unlike seconds, this does not move with the load of a shared machine."""
    from peftbench.core.search import all_rung_records

    reached: dict[str, float] = {}
    for record in all_rung_records(sweep_dir):
        reached[record["run_id"]] = max(reached.get(record["run_id"], 0.0), float(record["budget"]))
    halted = frame[frame["status"] == "halted"]["run_id"]
    return float((frame["status"] == "success").sum()) + sum(reached.get(r, 0.0) for r in halted)


def _cell(key: tuple, full: Any, halving: Any) -> dict[str, Any]:
    """One cell: both arms' chosen points and test means, and whether they agree."""
    same = bool(full["training"] == halving["training"] and full["params"] == halving["params"])
    return {
        "cell": " · ".join(key),
        "full_lr": float(full["learning_rate"]),
        "halving_lr": float(halving["learning_rate"]),
        "same_point": same,
        "full_test": float(full["test"]),
        "full_ci": [float(full["ci_low"]), float(full["ci_high"])],
        "halving_test": float(halving["test"]),
        "halving_n_seeds": int(halving["n_seeds"]),
        "within_interval": bool(full["ci_low"] <= halving["test"] <= full["ci_high"]),
        "difference": float(halving["test"] - full["test"]),
    }


def _t_interval(values: list[float]) -> list[float] | None:
    """The mean's 95% t interval (None for fewer than two values)."""
    from scipy import stats

    if len(values) < 2:
        return None
    mean, sem = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
    half = float(stats.t.ppf(0.975, len(values) - 1)) * sem
    return [mean - half, mean + half]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "halving.json")
    parser.add_argument(
        "--work", type=Path, default=None, help="Keep the run folders here (default: a temp folder)."
    )
    parser.add_argument("--tasks", nargs="+", default=["movie_sentiment", "tweet_sentiment"])
    parser.add_argument("--methods", nargs="+", default=["lora", "bitfit"], choices=list(METHODS))
    parser.add_argument("--points", type=int, default=6, help="Learning rates per method (at most 6).")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--compare-only", action="store_true", help="Recompute --out from --work's runs.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    os.environ.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    import torch

    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-halving-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.compare_only:  # the figures again from the run folders of an earlier --work
        arms = json.loads(args.out.read_text(encoding="utf-8"))["arms"]
    else:
        arms = {arm: run_arm(args, arm, work) for arm in ("full", "halving")}
    figures = {
        "grid": {"tasks": args.tasks, "methods": args.methods, "points": args.points, "seeds": args.seeds},
        "sizes": SIZES,
        "search": SEARCH,
        "threads": torch.get_num_threads(),
        "arms": arms,
        **compare(work, {arm: f"bench-halving-{arm}" for arm in arms}),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(
        f"cells agreeing (same point or test inside the full grid's 95% interval): {figures['agree']} of "
        f"{figures['n_cells']} ({figures['same_point']} the same point); mean test difference "
        f"{figures['mean_difference']:+.4f} (95% CI {figures['difference_ci95']}); compute "
        f"{figures['compute_ratio']:.0%} of the full grid's wall seconds ({figures['run_seconds']}), "
        f"{figures['budget_ratio']:.0%} of its training budgets ({figures['budgets_trained']})"
    )
    return figures


if __name__ == "__main__":
    main()
