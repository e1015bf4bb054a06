"""`make gpu-check`: the GPU figures of issue 16 in one short run on one GPU, as one JSON + Markdown.

    .venv/bin/python benchmarks/gpu_check.py --out runs/bench/gpu_check        # one H100/H200, < 8 min
    .venv/bin/python benchmarks/gpu_check.py --tiny --out /tmp/gpu_check       # the plumbing, on CPU

Three parts, each arm `peftbench run-one` in a fresh process (benchmarks/bench_engines.py), on
Llama-shaped decoders built from configs (random weights, no download):
1. full fine-tuning of a ~1B decoder (TinyLlama-1.1B's shape) plain, with FSDP and with ZeRO-3:
   tokens/s, MFU, peak GPU memory;
2. the largest model that full-fine-tunes with ZeRO-3 offload on this one GPU: sizes tried in
   order (`--offload-sizes`, default 1.7b, 7b, 13b) until one fails or the time budget is spent;
3. LoRA vs QLoRA vs DoRA on a small decoder (SmolLM2-360M's shape);
4. generation: test answers generated at two evaluation batches for a generation and an
   instruction task (benchmarks/bench_generation_memory.py's arms, each in a fresh process), the
   planner's key-value cache, logits and prompt pass against CUDA's measured peak.
For every arm, the memory planner's estimate (plan/memory.py, what `peftbench plan` shows and a
sweep is refused by) against the measured peak: the planner's error as estimate / measured.
`--tiny` runs every part on a 2M-parameter model for a few steps, so the script cannot rot
(tests/test_benchmarks.py); on CPU QLoRA is refused as a sweep refuses it and there is no GPU peak.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

try:
    from benchmarks import bench_engines, bench_generation_memory
except ImportError:  # run as a script (`make gpu-check`): benchmarks/ itself is on sys.path
    import bench_engines  # type: ignore[no-redef]
    import bench_generation_memory  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]
FULL = (("full", "none"), ("full", "fsdp"), ("full", "zero3"))
ADAPTERS = (("lora", "none"), ("qlora", "none"), ("dora", "none"))
OFFLOAD = ("full", "zero3_offload")


def planner_estimate(spec: Any, folder: Path) -> int:
    """What the planner says this arm needs per GPU (bytes), from the model's config as saved."""
    from transformers import AutoConfig

    from peftbench.plan.memory import estimate_run

    return estimate_run(spec, AutoConfig.from_pretrained(folder), gpus=1).total


def measure(size: str, arms: tuple[tuple[str, str], ...], work: Path, args: argparse.Namespace) -> list[dict]:
    """Each arm on a freshly built model of `size`: bench_engines' figures plus the planner's estimate."""
    name = bench_engines.gpu_name()
    peak = bench_engines.peak_flops(name, args.peak_tflops)
    folder = bench_engines.build_model(size, work / f"llama-{size}")
    rows = []
    try:
        for method, backend in arms:
            spec = bench_engines.arm_spec(folder, size, method, backend, 1 if name else 0, args)
            arm = bench_engines.run_arm(
                spec, work / "runs" / f"{size}-{method}-{backend}", size, peak, args.timeout
            )
            keep_for_calibration(work / "runs" / f"{size}-{method}-{backend}", args.calibrate)
            estimate = planner_estimate(spec, folder)
            measured = arm.peak_gpu_bytes if arm.status == "success" else None
            rows.append(
                {
                    **asdict(arm),
                    "planner_estimate_bytes": estimate,
                    "planner_over_measured": estimate / measured if measured else None,
                    "time_estimate_over_measured": time_over_measured(spec, name, arm),
                }
            )
            print(f"{size} {method} {backend}: {arm.status}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def time_over_measured(spec: Any, gpu: str | None, arm: Any) -> float | None:
    """The planner's uncalibrated train-time estimate (docs/cost.md) ÷ the arm's measured train seconds,
    on the shipped figures of this GPU (A100, H100 or H200; None on another device or a failed arm)."""
    from peftbench.plan.calibration import Calibration
    from peftbench.plan.schema import ClusterProfile
    from peftbench.plan.time_estimate import estimate_run

    kind = next((k for k in ("h200", "h100", "a100") if gpu and k in gpu.lower()), None)
    if kind is None or arm.status != "success" or not arm.train_seconds:
        return None
    node = {"gpus_per_node": 1, "cpus_per_gpu": 1, "mem_gb_per_gpu": 1}
    slurm = {"partition": "p", "max_time_min": 60, "default_gpu_type": kind, "gpu_types": {kind: node}}
    profile = ClusterProfile.model_validate({"name": "gpu-check", "launcher": "slurm", "slurm": slurm})
    estimate = estimate_run(spec, profile, Calibration(profile)).estimate
    return estimate.train_s / arm.train_seconds if estimate else None


def keep_for_calibration(run_dir: Path, calibrate: Path | None) -> None:
    """A success result copied to `calibrate/<arm>/`, where the planner's time estimate reads finished
    runs (`make gpu-check` passes runs/gpu-check: a "sweep" folder under the runs folder; docs/cost.md)."""
    from peftbench.core.results import read_result

    result = run_dir / "result.json"
    if calibrate is None or not result.is_file() or read_result(result).status != "success":
        return
    (calibrate / run_dir.name).mkdir(parents=True, exist_ok=True)
    for name in ("result.json", "spec.json"):
        shutil.copyfile(run_dir / name, calibrate / run_dir.name / name)


def largest_offloaded(sizes: list[str], work: Path, args: argparse.Namespace, deadline: float) -> dict:
    """Full fine-tuning with ZeRO-3 offload on growing sizes until one fails or time runs out."""
    tried, largest, stopped = [], None, "every size trained"
    for size in sizes:
        if time.monotonic() > deadline:
            stopped = f"time budget spent before {size}"
            break
        [row] = measure(size, (OFFLOAD,), work, args)
        tried.append(row)
        if row["status"] != "success":
            stopped = f"{size}: {row['status']}"
            break
        largest = size
    return {"largest": largest, "stopped": stopped, "tried": tried}


TINY_GENERATION = [("generation", 64, 8, 2), ("instruction", 64, 16, 2)]  # --tiny: the plumbing


def measure_generation(tiny: bool) -> list[dict]:
    """Part 4: each generation arm in a fresh process, on the GPU where there is one."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    arms = TINY_GENERATION if tiny else bench_generation_memory.GENERATION_ARMS
    return [
        bench_generation_memory.in_fresh_process(["generation", task, *map(str, shape), device])
        for task, *shape in arms
    ]


def generation_lines(rows: list[dict]) -> list[str]:
    """Part 4's table: the planner's generating memory against the measured peak."""
    lines = [
        "## 4. Generating test answers: the planner's key-value cache, logits and prompt pass",
        "",
        "| task | device | max_length | new tokens | batch | planner MB | measured MB | planner ÷ measured |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {' '.join(r['arm'])} | failed: {r['error'][-200:]!r} | | | | | | |")
            continue
        cells = [r["task"], r["device"], r["max_length"], r["max_new_tokens"], r["eval_batch_size"]]
        figures = [f"{r['estimate_mb']:.0f}", f"{r['measured_mb']:.0f}", f"{r['ratio']:.2f}"]
        lines.append("| " + " | ".join(map(str, [*cells, *figures])) + " |")
    return [*lines, ""]


def markdown(report: dict) -> str:
    """The summary page: one table per part, the planner's ratio beside each measured peak."""
    lines = [
        f"# GPU check on {report['device']}",
        "",
        f"{report['seconds']:.0f} s in all; `{report['command']}`",
        "",
    ]
    header = (
        "| size | method | engine | status | tokens/s | MFU | peak GB | planner GB | planner ÷ measured |"
    )
    rule = "|---|---|---|---|---:|---:|---:|---:|---:|"

    def row(r: dict) -> str:
        status = r["status"] if r["status"] == "success" else f"{r['status']}: {r['error']}"
        mfu, peak, ratio = r["mfu"], r["peak_gpu_bytes"], r["planner_over_measured"]
        cells = [
            r["size"],
            r["method"],
            r["backend"],
            status,
            f"{r['positions_per_second']:,.0f}",
            "" if mfu is None else f"{mfu:.1%}",
            "" if peak is None else f"{peak / 1e9:.1f}",
            f"{r['planner_estimate_bytes'] / 1e9:.2f}",
            "" if ratio is None else f"{ratio:.2f}",
        ]
        return "| " + " | ".join(cells) + " |"

    for title, rows in (
        ("1. Full fine-tuning of a ~1B decoder: plain, FSDP, ZeRO-3", report["full"]),
        ("3. LoRA, QLoRA and DoRA on a small decoder", report["adapters"]),
    ):
        lines += [f"## {title}", "", header, rule, *map(row, rows), ""]
    offload = report["offload"]
    lines += [
        "## 2. The largest model that full-fine-tunes with ZeRO-3 offload on this GPU",
        "",
        f"Largest that trained: **{offload['largest'] or 'none'}** ({offload['stopped']}).",
        "",
        header,
        rule,
        *map(row, offload["tried"]),
        "",
        *generation_lines(report["generation"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="every part on the tiny model, a few steps (CPU)")
    parser.add_argument("--offload-sizes", default="1.7b,7b,13b", help="tried in order with ZeRO-3 offload")
    parser.add_argument(
        "--budget", type=float, default=420, help="seconds after which no new offload size starts"
    )
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument(
        "--peak-tflops", type=float, help="the GPU's dense bf16 peak, if not in bench_engines' list"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds per arm")
    parser.add_argument(
        "--full-engines", default=",".join(b for _, b in FULL), help="part 1's engines (a rerun of some)"
    )
    parser.add_argument(
        "--adapters", default=",".join(m for m, _ in ADAPTERS), help="part 3's methods (a rerun of some)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "gpu_check")
    parser.add_argument(
        "--calibrate",
        type=Path,
        help="copy each arm's success result here, for the time estimate (runs/gpu-check)",
    )
    args = parser.parse_args(argv)
    args.eval_samples, args.gradient_checkpointing = 4, False
    full_size, adapter_size, ladder = "1b", "360m", args.offload_sizes.split(",")
    if args.tiny:
        full_size = adapter_size = "tiny"
        ladder, args.budget = ["tiny"], float("inf")  # the plumbing, whatever the machine's speed
        args.steps, args.batch_size, args.max_length = 2, 2, 32
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="peftbench-gpu-check-"))
    try:
        full = measure(full_size, tuple(("full", b) for b in args.full_engines.split(",")), work, args)
        adapters = measure(adapter_size, tuple((m, "none") for m in args.adapters.split(",")), work, args)
        offload = largest_offloaded(ladder, work, args, start + args.budget)
        generation = measure_generation(args.tiny)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "device": bench_engines.gpu_name() or "CPU",
        "command": " ".join(["benchmarks/gpu_check.py", *(sys.argv[1:] if argv is None else argv)]),
        "seconds": time.monotonic() - start,
        "full": full,
        "adapters": adapters,
        "offload": offload,
        "generation": generation,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "gpu_check.md").write_text(markdown(report), encoding="utf-8")
    print(f"written: {args.out / 'gpu_check.json'} and gpu_check.md ({report['seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
