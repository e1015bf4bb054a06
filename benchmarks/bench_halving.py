"""Successive halving against the full grid: the same choice per cell, for what share of the compute?

    make bench-halving
    .venv/bin/python benchmarks/bench_halving.py --work DIR --out runs/bench/halving.json   # resumable

One CPU grid, run twice in one process on ONE core (torch and OpenMP at one thread): MiniLM-L6 on
the demo's two sentiment tasks × LoRA and IA3 (`--methods` takes BitFit too, which does not learn
at these sizes) × six learning rates × three seeds, sizes cut to fit a shared machine in about an
hour (see `SIZES`; docs/benchmarks.md says what was measured). Arm `full`: every run trains its
whole budget. Arm `halving`: `search: {eta: 3, min_budget: 1/9, search_seeds: 1}`: the grid is
searched by halving on seed 0 (rungs at 1/9 and 1/3 of the steps), and seeds 1 and 2 train each
cell's winner. Both arms go through the local launcher's own loop (`run_local`, grid order, winner
resolution) with each run trained in this process (`run_one`), not in a process of its own: the
import of torch per run would dwarf these small runs. The arms take turns cell by cell, so both
see the same machine load; the record in `--out` is rewritten (atomically) after every cell, and
the same command with the same `--work` resumes a stopped benchmark (finished runs are skipped).

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
import collections
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

from peftbench.core.files import write_json_atomic  # noqa: E402

SIZES = {  # where MiniLM-L6 learns both tasks with LoRA and IA3, cut to fit about an hour on one core
    "max_train_samples": 432,
    "max_eval_samples": 200,  # 200 validation and 200 test examples per run
    "batch_size": 16,
    "max_length": 48,
    "max_steps": 27,  # one epoch; rungs at steps 3 and 9
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
    "ia3": [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2, 1.0e-1, 3.0e-1],  # IA3 wants larger steps
}
ARMS = ("full", "halving")
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
        data["search"] = search_of(args)
    return data


def search_of(args: argparse.Namespace) -> dict[str, Any]:
    """The halving arm's `search:`, its first rung at `--min-budget` of the steps."""
    return {**SEARCH, "min_budget": args.min_budget}


def plan_arm(args: argparse.Namespace, arm: str, work: Path) -> list[Any]:
    """One arm's runs, from the sweep file written in `work`, in the launcher's grid order."""
    import yaml

    from peftbench.plan.loading import load_sweep

    path, text = work / f"{arm}.yaml", yaml.safe_dump(sweep_data(args, arm))
    if path.exists() and path.read_text(encoding="utf-8") != text:
        # the cells' rung records would mix two grids (a cell is model × task × method, whatever the sizes)
        raise SystemExit(
            f"{path}: --work holds another grid of arm '{arm}'; "
            "resume with the same options, or give a new --work"
        )
    path.write_text(text, encoding="utf-8")
    return load_sweep(path).runs


def run_cells(
    args: argparse.Namespace, work: Path, after_cell: Any, earlier: dict[str, Any]
) -> dict[str, Any]:
    """Both arms, one cell at a time (the cell's full-grid runs and its halving runs, alternating which
    goes first), each through the local launcher's loop with its runs trained in this process.

    Cell by cell so that the two arms see the same machine load, and a benchmark stopped part way
    has whole cells of both arms to compare; runs with a result are skipped, so the same command
    with the same `--work` resumes. `after_cell(arms)` is called after each cell; `earlier`: the arms'
    records of an invocation this one resumes (their seconds are added to)."""
    from rich.console import Console

    from peftbench.core.search import cell_id
    from peftbench.launch.local import run_local
    from peftbench.run.one import run_one

    plans = {arm: plan_arm(args, arm, work) for arm in ARMS}
    arms: dict[str, Any] = {
        arm: {"runs": len(runs), "failed": [], "seconds": earlier.get(arm, {}).get("seconds", 0.0)}
        for arm, runs in plans.items()
    }
    cells = list(dict.fromkeys(cell_id(run) for run in plans["halving"]))
    for number, cell in enumerate(cells):
        for arm in ARMS if number % 2 == 0 else ARMS[::-1]:
            start = time.perf_counter()
            summary = run_local(
                [run for run in plans[arm] if cell_id(run) == cell],
                work / "runs",
                Console(stderr=True),
                lambda spec, paths, _progress: run_one(spec, paths.root),
            )
            arms[arm]["failed"] += summary.failed
            arms[arm]["seconds"] += time.perf_counter() - start
        after_cell(arms)
    return arms


def compare(work: Path, names: dict[str, str]) -> dict[str, Any]:
    """Per cell: both arms' choices and test means; overall: agreement, test difference, compute.

    Only the runs each arm's sweep file plans count (a reused `--work` may hold others); a cell
    counts once both arms have chosen a point in it, so a partial run gives the cells it finished."""
    from peftbench.collect.merge import collect, select_cells

    frames = {arm: _planned_frame(collect, work, arm, name) for arm, name in names.items()}
    cells = paired_cells(
        {arm: select_cells(frame).best if len(frame) else None for arm, frame in frames.items()}
    )
    differences = [c["difference"] for c in cells]
    return {
        "cells": cells,
        "agree": sum(c["same_point"] or c["within_interval"] for c in cells),
        "same_point": sum(c["same_point"] for c in cells),
        "n_cells": len(cells),
        "mean_difference": statistics.fmean(differences) if differences else None,
        "difference_ci95": _t_interval(differences),
        **_costs(_in_cells(frames, cells), {arm: work / "runs" / name for arm, name in names.items()}),
    }


def _in_cells(frames: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Each arm's runs in the compared cells only (a stopped benchmark's costs over the same cells)."""
    keys = {c["cell"] for c in cells}
    return {
        arm: frame[
            [" · ".join(k) in keys for k in zip(frame["model"], frame["method"], frame["task"], strict=True)]
        ]
        for arm, frame in frames.items()
    }


def _planned_folders(work: Path, runs: list[Any]) -> set[str]:
    """The folder names of an arm's planned runs, and of the runs its winner stand-ins became."""
    from peftbench.core.paths import RunPaths
    from peftbench.core.search import resolved_run_id

    became = {resolved_run_id(RunPaths.of(work / "runs", run)) for run in runs}
    return {run.run_id for run in runs} | {run_id for run_id in became if run_id}


def paired_cells(best: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells where both arms chose a point (`best`: each arm's chosen row per cell, or None)."""
    if best["full"] is None or best["halving"] is None:
        return []
    index = ["model", "method", "task"]
    full, halving = best["full"].set_index(index), best["halving"].set_index(index)
    return [_cell(key, row, halving.loc[key]) for key, row in full.iterrows() if key in halving.index]


def _planned_frame(collect: Any, work: Path, arm: str, name: str) -> Any:
    """One arm's results in the folders its sweep file in `work` plans (a run that trains its cell's
    winner records the winner's run id in its own folder), limited to cells whose every planned run
    has ended (success or halted): a benchmark stopped inside a cell leaves that cell out."""
    from peftbench.plan.loading import load_sweep

    frame = collect([work / "runs" / name]).frame
    plan = work / f"{arm}.yaml"
    if not len(frame) or not plan.exists():
        return frame
    runs = load_sweep(plan).runs
    frame = frame[frame["run_dir"].map(lambda d: Path(d).name).isin(_planned_folders(work, runs))]
    planned = collections.Counter((run.model.name, run.label, run.task.name) for run in runs)
    ended = frame[frame["status"].isin(["success", "halted"])]
    done = collections.Counter(zip(ended["model"], ended["method"], ended["task"], strict=True))
    keys = zip(frame["model"], frame["method"], frame["task"], strict=True)
    whole = [done[key] >= planned[key] for key in keys]
    return frame[whole]


def _costs(frames: dict[str, Any], sweep_dirs: dict[str, Path]) -> dict[str, Any]:
    """Each arm's measured wall seconds and training budgets, and halving's share of the full grid's."""
    seconds = {
        arm: float(frame["wall_seconds"].sum()) if len(frame) else 0.0 for arm, frame in frames.items()
    }
    budgets = {
        arm: _budget_spent(frame, sweep_dirs[arm]) if len(frame) else 0.0 for arm, frame in frames.items()
    }
    return {
        "run_seconds": seconds,
        "compute_ratio": seconds["halving"] / seconds["full"] if seconds["full"] else None,
        "budgets_trained": budgets,
        "budget_ratio": budgets["halving"] / budgets["full"] if budgets["full"] else None,
        "statuses": {
            arm: frame["status"].value_counts().to_dict() if len(frame) else {}
            for arm, frame in frames.items()
        },
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
    parser.add_argument("--methods", nargs="+", default=["lora", "ia3"], choices=list(METHODS))
    parser.add_argument("--points", type=int, default=6, help="Learning rates per method (at most 6).")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--min-budget",
        type=float,
        default=SEARCH["min_budget"],
        help="The first rung, as a share of the steps (1/9: rungs at steps 3 and 9 of 27; 1/3: at 9).",
    )
    parser.add_argument("--compare-only", action="store_true", help="Recompute --out from --work's runs.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    os.environ.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    import torch

    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-halving-"))
    work.mkdir(parents=True, exist_ok=True)
    head = {
        "grid": {"tasks": args.tasks, "methods": args.methods, "points": args.points, "seeds": args.seeds},
        "sizes": SIZES,
        "search": search_of(args),
        "threads": torch.get_num_threads(),
    }
    names = {arm: f"bench-halving-{arm}" for arm in ARMS}

    def record(arms: dict[str, Any], partial: bool) -> dict[str, Any]:
        figures = {**head, "arms": arms, "partial": partial, **compare(work, names)}
        write_json_atomic(args.out, figures)  # after every cell: a killed benchmark loses nothing
        return figures

    earlier_arms = earlier_arms_in(args.out) if args.work else {}  # a resumed benchmark adds to them
    if args.compare_only:
        figures = record(earlier_arms, partial=False)
    else:
        figures = record(
            run_cells(args, work, lambda arms: record(arms, partial=True), earlier_arms), partial=False
        )
    print(_summary(figures))
    return figures


def earlier_arms_in(out: Path) -> dict[str, Any]:
    """The arms' records an earlier invocation left in `out` (none if it has no readable record)."""
    try:
        return dict(json.loads(out.read_text(encoding="utf-8")).get("arms", {}))
    except (OSError, ValueError):
        return {}


def _summary(figures: dict[str, Any]) -> str:
    if not figures["n_cells"]:
        return "no cell has a chosen point in both arms yet"
    return (
        f"cells agreeing (same point or test inside the full grid's 95% interval): {figures['agree']} of "
        f"{figures['n_cells']} ({figures['same_point']} the same point); mean test difference "
        f"{figures['mean_difference']:+.4f} (95% CI {figures['difference_ci95']}); compute "
        f"{figures['compute_ratio']:.0%} of the full grid's wall seconds ({figures['run_seconds']}), "
        f"{figures['budget_ratio']:.0%} of its training budgets ({figures['budgets_trained']})"
    )


if __name__ == "__main__":
    main()
