"""The launcher's and the collector's side at scale: a 10,000-run sweep and 10,000 result files.

    make bench      (or: .venv/bin/python benchmarks/bench_scale.py [--runs 10000])

Times, in this process:
- expansion: `load_sweep` (reads, validates, and expands once to check the grid) and then
  `expand_sweep` of a sweep file with 10,000 runs (goal: expansion < 2 s);
- collection: `collect` and `write_collection` (what `peftbench collect` does: read every
  result.json, merge, pick the best point per cell, write parquet/csv/table) over 10,000 synthetic
  result files, one per run of that sweep (goal < 5 s); then `peftbench collect` itself in a fresh
  process, imports (pandas, scipy) and printing included. The files are generated first, untimed,
  and are read from the page cache, as they would be right after a sweep.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from peftbench.collect.merge import collect
from peftbench.collect.outputs import write_collection
from peftbench.core.paths import RunPaths
from peftbench.core.results import Cost, RunResult
from peftbench.core.spec import RunSpec
from peftbench.plan.expand import expand_sweep
from peftbench.plan.loading import load_sweep

GOAL_EXPAND_SECONDS = 2.0
GOAL_COLLECT_SECONDS = 5.0
RANKS = [1, 2, 4, 8, 16]
ALPHAS = [8, 16, 32, 64, 128]
LEARNING_RATES = [1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2]
TASKS = ["movie_sentiment", "epistemic_nli"]


def sweep_dict(runs: int) -> dict:
    """A LoRA grid (250 points) on two tasks; seeds make up the rest. `runs` must be a multiple of 500."""
    per_seed = len(RANKS) * len(ALPHAS) * len(LEARNING_RATES) * len(TASKS)
    if runs % per_seed:
        raise SystemExit(f"--runs must be a multiple of {per_seed}")
    return {
        "name": f"bench-{runs}",
        "models": ["minilm-l6"],
        "tasks": TASKS,
        "methods": {"lora": {"r": RANKS, "lora_alpha": ALPHAS, "learning_rate": LEARNING_RATES}},
        "seeds": list(range(runs // per_seed)),
    }


def synthetic_result(spec: RunSpec, index: int) -> RunResult:
    """A success record with made-up but varied metrics and cost."""
    accuracy = 0.6 + (index * 7919 % 300) / 1000
    return RunResult(
        run_id=spec.run_id,
        status="success",
        spec=spec,
        validation={"accuracy": accuracy, "loss": 1 - accuracy},
        test={"accuracy": accuracy - 0.01, "mcc": 2 * accuracy - 1, "loss": 1 - accuracy},
        cost=Cost(wall_seconds=60.0 + index % 17, train_seconds=50.0, peak_rss_bytes=2_000_000_000),
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:00+00:00",
    )


def write_results(runs: list[RunSpec], runs_dir: Path) -> Path:
    """One result.json per run, plainly written (the atomic fsync'd write is not what is measured)."""
    for index, spec in enumerate(runs):
        paths = RunPaths.of(runs_dir, spec)
        paths.root.mkdir(parents=True)
        paths.result.write_text(synthetic_result(spec, index).model_dump_json(), encoding="utf-8")
    return runs_dir / runs[0].sweep


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def measure(args: argparse.Namespace, work: Path) -> dict[str, float]:
    """Run the benchmark in `work` (a temp folder, removed afterwards unless --keep)."""
    sweep_file = work / f"bench-{args.runs}.yaml"
    sweep_file.write_text(yaml.safe_dump(sweep_dict(args.runs)), encoding="utf-8")

    sweep, load_seconds = timed(load_sweep, sweep_file)
    spec = sweep.spec
    runs, expand_seconds = timed(expand_sweep, spec)
    assert len(runs) == args.runs, len(runs)
    sweep_dir = write_results(runs, work / "runs")
    collection, collect_seconds = timed(collect, [sweep_dir])
    assert len(collection.frame) == args.runs and not collection.unreadable
    report, write_seconds = timed(write_collection, [sweep_dir], work / "collected")
    assert report.n_success == args.runs
    command = [sys.executable, "-m", "peftbench", "collect", str(sweep_dir), "--out", str(work / "cli")]
    done, cli_seconds = timed(subprocess.run, command, capture_output=True)
    if done.returncode != 0:
        print(done.stdout.decode()[-2000:], done.stderr.decode()[-2000:])

    figures = {
        "runs": args.runs,
        "load_sweep_seconds": load_seconds,
        "expand_sweep_seconds": expand_seconds,
        "collect_seconds": collect_seconds,
        "write_collection_seconds": write_seconds,
        "cli_collect_seconds": cli_seconds,
    }
    print(f"sweep of {args.runs} runs: load_sweep (validate + expand) {load_seconds:.2f} s, ", end="")
    print(f"expand_sweep {expand_seconds:.2f} s (goal < {GOAL_EXPAND_SECONDS:.0f} s: ", end="")
    print(f"{'met' if expand_seconds < GOAL_EXPAND_SECONDS else 'NOT met'})")
    print(f"{args.runs} result files: collect {collect_seconds:.2f} s, ", end="")
    print(f"write_collection (collect + select + write) {write_seconds:.2f} s ", end="")
    met = "met" if write_seconds < GOAL_COLLECT_SECONDS else "NOT met"
    print(f"(goal < {GOAL_COLLECT_SECONDS:.0f} s: {met})")
    print(f"`peftbench collect` in a fresh process: {cli_seconds:.2f} s (exit {done.returncode})")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder of the runs")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        return measure(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
