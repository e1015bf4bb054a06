"""Planning a 10,000-run sweep against a GPU site, memory estimate on, offline: validate, plan, dry run.

    make bench      (or: .venv/bin/python benchmarks/bench_plan.py [--runs 10000] [--cluster vega])

A sweep of xlm-roberta-base (a hub model: its shape comes from the HF cache or the table shipped
in the package, never the network) on two tasks, full fine-tuning and LoRA at four ranks, ten
learning rates each, one GPU per run, seeds making up the rest, is planned against a GPU site's
profile with the GPU-memory check on. Times, in this process after the imports (goal: < 2 s in
all): `load_plan` (read, validate, expand, check resources and each run's GPU memory) and the dry
run's table (`peftbench sweep --dry-run` printed into a buffer). Then the same command in a fresh
process, imports included, with the hub made unreachable (HF_ENDPOINT on a closed port, no
HF_HUB_OFFLINE): it must not wait on the network.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

GOAL_SECONDS = 2.0
LEARNING_RATES = [1e-5, 2e-5, 3e-5, 5e-5, 7e-5, 1e-4, 2e-4, 3e-4, 5e-4, 1e-3]
RANKS = [4, 8, 16, 32]
TASKS = ["movie_sentiment", "epistemic_nli"]


def sweep_dict(runs: int) -> dict:
    per_seed = len(TASKS) * len(LEARNING_RATES) * (1 + len(RANKS))
    if runs % per_seed:
        raise SystemExit(f"--runs must be a multiple of {per_seed}")
    gpu = {"resources": {"gpus": 1, "time_min": 120}}
    return {
        "name": f"bench-plan-{runs}",
        "models": ["xlm-roberta-base"],
        "tasks": TASKS,
        "methods": {
            "full": {"learning_rate": LEARNING_RATES, **gpu},
            "lora": {"r": RANKS, "learning_rate": LEARNING_RATES, **gpu},
        },
        "seeds": list(range(runs // per_seed)),
        "training": {"batch_size": 16, "max_length": 256, "precision": "bf16"},
    }


def measure(args: argparse.Namespace, work: Path) -> dict[str, float]:
    from rich.console import Console

    import peftbench.cli as cli
    from peftbench.plan.sweep_plan import load_plan

    sweep_file = work / "bench-plan.yaml"
    sweep_file.write_text(yaml.safe_dump(sweep_dict(args.runs)), encoding="utf-8")
    os.chdir(work)
    load_plan(sweep_file, args.cluster, submitting=False)  # the imports (torch, transformers, peft), untimed
    start = time.perf_counter()
    plan = load_plan(sweep_file, args.cluster, submitting=False)
    plan_seconds = time.perf_counter() - start
    assert len(plan.runs) == args.runs, len(plan.runs)
    shown, cli.console = cli.console, Console(file=io.StringIO(), width=200)
    try:
        start = time.perf_counter()
        cli._print_plan(plan)
        print_seconds = time.perf_counter() - start
    finally:
        cli.console = shown

    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(work / "empty-hf-home")}
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(key, None)
    command = [sys.executable, "-m", "peftbench", "sweep", str(sweep_file), "--cluster", args.cluster]
    start = time.perf_counter()
    done = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, env=env, cwd=work)
    cli_seconds = time.perf_counter() - start
    total = plan_seconds + print_seconds
    figures = {
        "runs": args.runs,
        "cluster": args.cluster,
        "load_plan_seconds": plan_seconds,
        "dry_run_table_seconds": print_seconds,
        "in_process_seconds": total,
        "cli_dry_run_seconds": cli_seconds,
        "cli_exit": done.returncode,
    }
    met = "met" if total < GOAL_SECONDS else "NOT met"
    print(
        f"{args.runs} runs on '{args.cluster}', memory estimate on: load_plan {plan_seconds:.2f} s, ", end=""
    )
    print(f"dry-run table {print_seconds:.2f} s; {total:.2f} s in all (goal < {GOAL_SECONDS:.0f} s: {met})")
    print(f"`peftbench sweep --dry-run` in a fresh process, hub unreachable: {cli_seconds:.2f} s ", end="")
    print(f"(exit {done.returncode}; imports included)")
    if done.returncode != 0 or "Retrying" in done.stderr:
        print(done.stderr[-2000:])
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--cluster", default="vega", help="a GPU site profile (FILL_ME facts are fine)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.out is not None:
        args.out = args.out.resolve()
    here = Path.cwd()
    work = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    try:
        return measure(args, work)
    finally:
        os.chdir(here)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
