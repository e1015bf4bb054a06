"""Plan + submit of a 2,000-run sweep to the dev Slurm cluster: seconds and sbatch calls.

    sudo make slurm-up && .venv/bin/python benchmarks/bench_submit.py

Submits for real (one array per resource shape), times load_plan + status + submit, counts the
arrays recorded and the sbatch processes started (through a counting `sbatch` first on PATH that
calls the real one), then cancels the jobs so nothing trains.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from peftbench.launch.slurm import submit_runs
from peftbench.launch.slurm_records import read_submissions
from peftbench.launch.slurm_state import sweep_status
from peftbench.plan.sweep_plan import load_plan

REPO = Path(__file__).resolve().parents[1]
SWEEP = {
    "name": "bench-2000",
    "models": ["minilm-l6"],
    "tasks": ["movie_sentiment", "epistemic_nli"],
    "methods": {  # (5 × 3 × 6 LoRA + 10 BitFit points) × 2 tasks × 10 seeds = 2,000 runs, 2 shapes
        "lora": {
            "r": [2, 4, 8, 16, 32],
            "lora_alpha": [8, 16, 32],
            "learning_rate": [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3],
        },
        "bitfit": {
            "learning_rate": [1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2, 2e-2, 3e-2, 5e-2, 1e-1],
            "resources": {"time_min": 30},
        },
    },
    "seeds": list(range(10)),
    "resources": {"cpus": 1, "mem_gb": 1, "time_min": 10},
}


def counting_sbatch(folder: Path) -> Path:
    """An `sbatch` that logs each call and execs the real one."""
    real = shutil.which("sbatch")
    log = folder / "sbatch.calls"
    shim = folder / "sbatch"
    shim.write_text(f'#!/bin/sh\necho call >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return log


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-submit-"))
    sweep_file = work / "bench-2000.yaml"
    sweep_file.write_text(yaml.safe_dump(SWEEP))
    bin_dir = work / "bin"
    bin_dir.mkdir()
    calls = counting_sbatch(bin_dir)
    os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    start = time.perf_counter()
    plan = load_plan(sweep_file, str(REPO / "configs" / "clusters" / "dev.yaml"), work / "runs")
    planned = time.perf_counter()
    todo = [s.run for s in sweep_status(plan.runs, plan.runs_dir) if s.needs_submission]
    statused = time.perf_counter()
    submissions = submit_runs(todo, plan.profile, plan.runs_dir)
    done = time.perf_counter()
    jobs = sorted({job.split("_")[0] for s in read_submissions(plan.sweep_dir) for job in s.tasks})
    subprocess.run(["scancel", *jobs], check=False)
    shapes = {tuple(sorted(s.shape.items())) for s in submissions}
    print(f"runs: {len(plan.runs)} ({len(todo)} submitted)")
    print(f"plan (load + validate + expand): {planned - start:.2f} s")
    print(f"status (squeue + sacct + result files): {statused - planned:.2f} s")
    print(f"submit (spec.json files + sbatch): {done - statused:.2f} s")
    print(f"total: {done - start:.2f} s (goal < 5 s)")
    print(
        f"sbatch calls: {len(calls.read_text().splitlines())}; arrays: {len(submissions)}; "
        f"resource shapes: {len(shapes)} (goal: one call per shape)"
    )
    print(f"cancelled jobs {', '.join(jobs)}; work folder {work}")


if __name__ == "__main__":
    main()
