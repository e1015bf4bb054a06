"""Runs per hour with runs packed into array tasks (resources.runs_per_gpu) vs one run per task.

    make bench-packing            (or: .venv/bin/python benchmarks/bench_packing.py)
    .venv/bin/python benchmarks/bench_packing.py --gpu --model /path/to/bert-base-uncased

CPU mode (default, the localhost Slurm, `make slurm-up`): one sweep of 16 small runs (MiniLM,
BitFit, 8 learning rates × 2 seeds, a few steps each), submitted twice side by side in one go, as
two sweeps with the same runs: one run per array task (1 CPU each, the profile's 2 tasks at a
time), and packed (`runs_per_gpu: auto` with 2 CPUs per task: 2 runs per task, one process each,
imports and data loaded once per task). The same cores either way, one torch thread per run in
both; runs per hour = 16 / (seconds from the first sbatch to the last result) × 3600. The arms run
one after the other in one invocation; test metrics are compared run by run.

GPU mode (--gpu, for `make gpu-check`; no Slurm needed): 16 full fine-tuning runs of BERT-base
(--model: a local folder, nothing is downloaded) on one GPU, unpacked (each run a fresh
`peftbench run-one` process, as each array task does today) vs packed (PackTask, k runs side by side
with k from the planner for this GPU's memory). Runs per GPU-hour of each arm, their ratio (goal
≥ 3), test metrics per run compared (equal within --tolerance: GPU kernels are not bit-exact), and
each run's energy (NVML; packed: its estimated share).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DEV = REPO / "src" / "peftbench" / "plan" / "clusters" / "dev.yaml"
TINY = {"max_steps": 4, "max_train_samples": 32, "max_eval_samples": 16, "max_length": 32, "batch_size": 8}
LEARNING_RATES = [1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2, 2e-2, 3e-2]


def sweep(name: str, resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "models": ["minilm-l6"],
        "tasks": ["movie_sentiment"],
        "methods": {"bitfit": {"learning_rate": LEARNING_RATES}},
        "seeds": [0, 1],
        "training": {**TINY, "eval_strategy": "no"},
        "resources": {"mem_gb": 2, "time_min": 20, **resources},
    }


ARMS = {
    "one_run_per_task": {"cpus": 1},
    "packed": {"cpus": 2, "runs_per_gpu": "auto"},
}


def profile(work: Path) -> Path:
    """The dev profile, each task's torch on as many threads as its CPUs (a packed task's runs: a core
    each): both arms use the same cores the same way, so their metrics can be compared run by run."""
    data = yaml.safe_load(DEV.read_text())
    data["slurm"]["setup"] = [*data["slurm"].get("setup", []), "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK"]
    path = work / "dev-bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def slurm_arm(work: Path, arm: str) -> dict[str, Any]:
    """Submit one arm's 16 runs to the localhost Slurm and wait for all of them; its figures."""
    from peftbench.core.results import read_result
    from peftbench.launch.slurm import submit_runs
    from peftbench.launch.slurm_state import sweep_status
    from peftbench.plan.sweep_plan import load_plan

    file = work / f"{arm}.yaml"
    file.write_text(yaml.safe_dump(sweep(f"bench-{arm.replace('_', '-')}", ARMS[arm])))
    plan = load_plan(file, str(profile(work)), work / "runs")
    start = time.perf_counter()
    submissions = submit_runs(plan.runs, plan.profile, plan.runs_dir)
    while True:
        states = sweep_status(plan.runs, plan.runs_dir)
        if not any(s.state in {"pending", "running", "unknown"} for s in states):
            break
        time.sleep(2)
    seconds = time.perf_counter() - start
    results = {r.run_id: read_result(plan.sweep_dir / r.run_id / "result.json") for r in plan.runs}
    return {
        "runs": len(plan.runs),
        "array_tasks": sum(len(s.job_ids) for s in submissions),
        "succeeded": sum(r.status == "success" for r in results.values()),
        "seconds": round(seconds, 1),
        "runs_per_hour": round(len(plan.runs) / seconds * 3600, 1),
        "test": {run_id: r.test for run_id, r in results.items()},
    }


def slurm_is_up() -> bool:
    try:
        said = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(state in said for state in ("idle", "mixed", "allocated"))


def cpu_bench(work: Path) -> dict[str, Any]:
    arms = {arm: slurm_arm(work, arm) for arm in ARMS}
    one, packed = arms["one_run_per_task"], arms["packed"]
    gaps = [
        abs(value - packed["test"].get(run_id, {}).get(metric, float("nan")))
        for run_id, metrics in one["test"].items()
        for metric, value in metrics.items()
    ]
    same = all(one["test"][run_id] == packed["test"].get(run_id) for run_id in one["test"])
    for arm in arms.values():
        del arm["test"]
    return {
        "mode": "cpu, localhost Slurm",
        **arms,
        "speedup_runs_per_hour": round(packed["runs_per_hour"] / one["runs_per_hour"], 2),
        "metrics_equal_run_by_run": same,
        "largest_test_metric_gap": max(gaps) if gaps else None,
    }


def gpu_runs(model: str, runs: int) -> list[Any]:
    """`runs` full fine-tuning runs of BERT-base on the bundled movie sentences: 8 learning rates × seeds."""
    from peftbench.core.spec import ModelRef, ResourceRequest, RunSpec, TrainingSettings
    from peftbench.tasks import TASK_CATALOG

    settings = {"epochs": 1.0, "batch_size": 32, "max_length": 128, "max_train_samples": 2000}
    return [
        RunSpec(
            sweep="bench-gpu-packing",
            model=ModelRef(name="bert-base", source=model, family="bert"),
            task=TASK_CATALOG["movie_sentiment"],
            method="full",
            label="full",
            params={},
            training=TrainingSettings(learning_rate=[2e-5, 3e-5, 5e-5, 1e-4][i % 4], **settings),
            seed=i // 4,
            resources=ResourceRequest(gpus=1, runs_per_gpu="auto"),
        )
        for i in range(runs)
    ]


def planned_k(spec: Any, gpu_bytes: int, cores: int) -> int:
    from peftbench.models.shapes import planning_config
    from peftbench.plan.memory import FILL_FRACTION, estimate_run
    from peftbench.plan.packing import CUDA_CONTEXT_BYTES

    config, _ = planning_config(spec.model)
    planned = estimate_run(spec, config, 1).total
    return max(1, min(int(FILL_FRACTION * gpu_bytes // (planned + CUDA_CONTEXT_BYTES)), cores))


def gpu_of_this_machine() -> tuple[str, int]:
    """(name, bytes) of the first GPU, from nvidia-smi: this process must not touch CUDA before
    PackTask forks its runs (a CUDA context does not survive a fork)."""
    line = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits", "-i", "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    name, mib = line.rsplit(",", 1)
    return name.strip(), int(mib) * 2**20


def gpu_bench(work: Path, model: str, runs: int, tolerance: float) -> dict[str, Any]:
    """Unpacked (a fresh process per run) then packed (PackTask), on this machine's first GPU."""
    import os

    from peftbench.core.results import read_result, write_spec
    from peftbench.launch.array_task import PackTask

    specs = gpu_runs(model, runs)
    name, gpu_bytes = gpu_of_this_machine()
    k = planned_k(specs[0], gpu_bytes, len(os.sched_getaffinity(0)))
    figures: dict[str, Any] = {"mode": "gpu", "device": name, "runs": runs, "runs_per_task": k}
    folders: dict[str, list[Path]] = {}
    for arm in ("unpacked", "packed"):
        folders[arm] = [work / arm / spec.run_id for spec in specs]
        for spec, folder in zip(specs, folders[arm], strict=True):
            folder.mkdir(parents=True, exist_ok=True)
            write_spec(folder / "spec.json", spec)
        start = time.perf_counter()
        if arm == "unpacked":
            for folder in folders[arm]:
                command = [
                    sys.executable,
                    "-m",
                    "peftbench",
                    "run-one",
                    str(folder / "spec.json"),
                    str(folder),
                ]
                subprocess.run(command, check=False, capture_output=True)
        else:
            for i in range(0, runs, k):
                chunk = folders[arm][i : i + k]
                PackTask()([str(f / "spec.json") for f in chunk], [str(f) for f in chunk])
        hours = (time.perf_counter() - start) / 3600
        results = [read_result(f / "result.json") for f in folders[arm]]
        figures[arm] = {
            "gpu_hours": round(hours, 4),
            "runs_per_gpu_hour": round(runs / hours, 1),
            "succeeded": sum(r.status == "success" for r in results),
            "energy_wh": [r.cost.energy_wh if r.cost else None for r in results],
            "energy_note": results[0].cost.energy_note if results[0].cost else None,
            "test_accuracy": [r.test.get("accuracy") for r in results],
        }
    one, packed = figures["unpacked"], figures["packed"]
    figures["ratio_runs_per_gpu_hour"] = round(packed["runs_per_gpu_hour"] / one["runs_per_gpu_hour"], 2)
    figures["goal_3x_met"] = figures["ratio_runs_per_gpu_hour"] >= 3
    pairs = zip(one["test_accuracy"], packed["test_accuracy"], strict=True)
    figures["metrics_equal_within_tolerance"] = all(
        a is not None and b is not None and abs(a - b) <= tolerance for a, b in pairs
    )
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gpu", action="store_true", help="the GPU version: BERT-base, packed vs unpacked")
    parser.add_argument("--model", help="--gpu: a local BERT-base folder (nothing is downloaded)")
    parser.add_argument("--runs", type=int, default=16, help="--gpu: runs per arm")
    parser.add_argument("--tolerance", type=float, default=0.02, help="--gpu: largest test accuracy gap")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-packing-") as tmp:
        if args.gpu:
            if not args.model:
                parser.error("--gpu needs --model: a local BERT-base folder")
            figures = gpu_bench(Path(tmp), args.model, args.runs, args.tolerance)
        elif not slurm_is_up():
            figures = {"mode": "cpu, localhost Slurm", "skipped": "no Slurm node here: `make slurm-up` first"}
        else:
            figures = cpu_bench(Path(tmp))
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return figures


if __name__ == "__main__":
    main()
