"""`make bench-estimate`: the time estimate against measured train seconds, before and after calibration.

    .venv/bin/python benchmarks/bench_estimate.py --out runs/bench/estimate.json    # CPU, ~15 min
    .venv/bin/python benchmarks/bench_estimate.py --peak                              # the CPU's peak

On the `local` profile (the CPU as the device, its peak measured with `--peak`), every run of the demo
sweep and of a second sweep with other methods and lengths (benchmarks/estimate_second.yaml) is
estimated twice: before any run has finished (the engine's default efficiency, tokens per example
measured on the data), and after one calibrating run per method (a short run: the method's first run
on a quarter of the examples, another seed). Then each run trains, one at a time, each in a fresh
`peftbench run-one` process, and the ratio estimate ÷ measured train seconds is reported per run.
The goal (docs/cost.md): every ratio within ×3 before calibration and within ×1.5 after.

`--reanalyse --work DIR` computes the ratios again from the runs a measurement left there, and adds
one more per run: its estimate calibrated by all the *other* measured runs (leave one out).

`--peak` times fp32 matmuls of 1024² matrices with one torch thread and with all of them: the figure
`cost.peak_tflops.cpu.fp32` of the CPU profiles is the one-thread rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SWEEPS = (REPO / "configs" / "sweeps" / "demo.yaml", REPO / "benchmarks" / "estimate_second.yaml")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
CALIBRATION_SHARE = 0.25  # a calibrating run trains on this share of its method's first run's examples
CALIBRATION_SEED = 1000


def matmul_tflops(threads: int, n: int = 1024, repeats: int = 10) -> float:
    """The best fp32 matmul rate of `threads` torch threads over five timings."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best / 1e12


def peak() -> dict[str, Any]:
    cores = os.cpu_count() or 1
    return {"per_core_tflops": matmul_tflops(1), "all_cores_tflops": matmul_tflops(cores), "cores": cores}


def train(spec: Any, folder: Path) -> float | None:
    """`peftbench run-one` in a fresh process; its train seconds, or None when it did not succeed."""
    from peftbench.core.results import read_result, write_spec

    folder.mkdir(parents=True, exist_ok=True)
    write_spec(folder / "spec.json", spec)
    command = [sys.executable, "-m", "peftbench", "run-one", str(folder / "spec.json"), str(folder)]
    with open(folder / "log.txt", "w", encoding="utf-8") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, **OFFLINE})
    result = read_result(folder / "result.json") if (folder / "result.json").exists() else None
    return result.cost.train_seconds if result and result.status == "success" and result.cost else None


def calibrating_runs(runs: list[Any], share: float = CALIBRATION_SHARE) -> list[Any]:
    """One run per method: its first run on a `share` of the examples, another seed."""
    first: dict[str, Any] = {}
    for run in runs:
        first.setdefault(run.method, run)
    short = []
    for run in first.values():
        samples = max(32, int(run.training.max_train_samples * share))
        training = run.training.model_copy(update={"max_train_samples": samples})
        short.append(run.model_copy(update={"training": training, "seed": CALIBRATION_SEED}))
    return short


def estimates(runs: list[Any], profile: Any, runs_dir: Path) -> dict[str, float]:
    from peftbench.plan.calibration import calibration_for
    from peftbench.plan.time_estimate import estimate_runs

    rows = estimate_runs(runs, profile, calibration_for(profile, runs_dir))
    return {row.run.run_id: row.estimate.train_s for row in rows if row.estimate}


def measure(work: Path, share: float) -> dict[str, Any]:
    from peftbench.plan.loading import load_cluster, load_sweep

    profile = load_cluster("local")
    sweeps = {path.stem: load_sweep(path).runs for path in SWEEPS}
    runs = [run for found in sweeps.values() for run in found]
    before = estimates(runs, profile, work / "none")
    calibration = work / "calibration"
    for run in calibrating_runs(runs, share):
        print(f"calibrating {run.method}: {train(run, calibration / 'runs' / run.run_id)} s", flush=True)
    after = estimates(runs, profile, calibration)
    rows = []
    for name, found in sweeps.items():
        for run in found:
            measured = train(run, work / "measured" / name / run.run_id)
            rows.append(row_of(name, run, measured, before.get(run.run_id), after.get(run.run_id)))
            print(json.dumps(rows[-1]), flush=True)
    return {"runs": rows, "summary": summary(rows)}


def leave_one_out(work: Path, profile: Any) -> dict[str, float]:
    """run_id -> its estimate calibrated by the other measured runs (both sweeps) and the calibrating
    ones, never by itself: how well a site's finished runs predict the next one."""
    from peftbench.plan.calibration import Calibration, finished_runs
    from peftbench.plan.time_estimate import estimate_run

    measured = finished_runs(work / "measured")
    calibrating = finished_runs(work / "calibration")
    out = {}
    for run in measured:
        calibration = Calibration(profile)
        calibration.add([r for r in measured if r.spec.run_id != run.spec.run_id] + calibrating)
        estimate = estimate_run(run.spec, profile, calibration).estimate
        if estimate is not None:
            out[run.spec.run_id] = estimate.train_s
    return out


def measured_seconds(path: Path) -> float | None:
    from peftbench.core.results import read_result

    result = read_result(path) if path.is_file() else None
    return result.cost.train_seconds if result and result.status == "success" and result.cost else None


def reanalyse(work: Path) -> dict[str, Any]:
    """The ratios again from the runs a measurement left in `work` (nothing trains)."""
    from peftbench.plan.loading import load_cluster, load_sweep

    profile = load_cluster("local")
    sweeps = {path.stem: load_sweep(path).runs for path in SWEEPS}
    runs = [run for found in sweeps.values() for run in found]
    before, after = estimates(runs, profile, work / "none"), estimates(runs, profile, work / "calibration")
    others = leave_one_out(work, profile)
    rows = []
    for name, found in sweeps.items():
        for run in found:
            seconds = measured_seconds(work / "measured" / name / run.run_id / "result.json")
            row = row_of(name, run, seconds, before.get(run.run_id), after.get(run.run_id))
            row["ratio_others"] = others[run.run_id] / seconds if seconds and run.run_id in others else None
            rows.append(row)
    return {"runs": rows, "summary": summary(rows)}


def row_of(sweep: str, run: Any, measured: float | None, before: float | None, after: float | None) -> dict:
    def ratio(estimate: float | None) -> float | None:
        return estimate / measured if estimate and measured else None

    return {
        "sweep": sweep,
        "run_id": run.run_id,
        "task": run.task.name,
        "method": run.label,
        "max_length": run.training.max_length,
        "measured_train_s": measured,
        "estimate_before_s": before,
        "estimate_after_s": after,
        "ratio_before": ratio(before),
        "ratio_after": ratio(after),
    }


def summary(rows: list[dict]) -> dict[str, Any]:
    """The worst ratio (as a factor ≥ 1, either way) before and after, against the goals ×3 and ×1.5."""

    def worst(key: str) -> float | None:
        ratios = [r[key] for r in rows if r.get(key)]
        return max(max(r, 1 / r) for r in ratios) if ratios else None

    before, after = worst("ratio_before"), worst("ratio_after")
    return {
        "worst_factor_before": before,
        "worst_factor_after": after,
        "worst_factor_others": worst("ratio_others") if any("ratio_others" in r for r in rows) else None,
        "within_3_before": before is not None and before <= 3,
        "within_1_5_after": after is not None and after <= 1.5,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "estimate.json")
    parser.add_argument("--peak", action="store_true", help="only measure the CPU's fp32 matmul peak")
    parser.add_argument("--work", type=Path, help="where the runs go (default: a temporary folder, kept)")
    parser.add_argument("--reanalyse", action="store_true", help="the ratios again from --work's runs")
    parser.add_argument(
        "--calibration-share",
        type=float,
        default=CALIBRATION_SHARE,
        help="calibrating runs' share",
    )
    args = parser.parse_args(argv)
    if args.peak:
        figures = peak()
        print(json.dumps(figures))
        return figures
    work = args.work or Path(tempfile.mkdtemp(prefix="peftbench-estimate-"))
    if args.reanalyse:
        figures = {"work": str(work), **reanalyse(work)}
    else:
        figures = {"peak": peak(), "work": str(work), **measure(work, args.calibration_share)}
        figures |= {"reanalysed": reanalyse(work)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(json.dumps(figures["summary"]))
    return figures


if __name__ == "__main__":
    main()
