"""peftbench against the way the seed studies trained: time to a target validation score, side by side.

    make bench      (or: .venv/bin/python benchmarks/bench_speed.py [--target 0.70] [--repeats 2] [--quick])

The headline is the time each arm takes to reach the same validation accuracy (`--target`), not
samples/s alone: a faster loop that learns less is no speed-up. Both arms train the same model (the
offline MiniLM), on the same data (the movie sentences), with the same method (full fine-tuning),
batch size, learning rate and schedule (linear over the step cap `--max-steps`, the same warmup),
evaluate the same validation examples every `--eval-steps` steps, and stop at the first evaluation
at or above the target, or at the cap. Then each scores the test set once.

- baseline: `baseline_trainer.py`, the studies' way (padding to 256, fp32, no length grouping, data
  tokenised inside the run, evaluation batch 8, Trainer defaults otherwise);
- peftbench: `peftbench run-one` with its defaults (dynamic padding, length-grouped batches, the
  tokenization cache, evaluation batch 128), `target_validation` set.

Runs are interleaved baseline/peftbench/baseline/peftbench..., each in a fresh process, so that
peak RSS (from wait4) is that run's alone and load on a shared machine falls on both alike. Both
arms are timed by one instrument, peftbench's `ValidationCurve` callback: seconds since training
began at each evaluation (evaluations included). Samples/s is examples trained on per second of
training without the evaluations.

Prints each run and a small table of medians and ratios; writes the figures as JSON (--out, default
runs/bench/speed.json) and a plot of validation accuracy against time for both arms (the same path
with .png).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peftbench.core.results import read_result
from peftbench.core.spec import RunSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.tasks import TASK_CATALOG

REPO = Path(__file__).resolve().parents[1]
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
ARMS = ("baseline", "peftbench")
QUICK = {"repeats": 1, "train_samples": 2048, "max_steps": 64}


@dataclass
class Measured:
    """One run of one arm, as seen from outside (wall, peak RSS) and as it timed itself."""

    arm: str
    repeat: int
    wall_seconds: float
    peak_rss_bytes: int
    train_seconds: float  # in the training loop, evaluations excluded
    train_samples_per_second: float
    validation_accuracy: float  # at the last evaluation
    test_accuracy: float
    steps: int = 0
    time_to_target: float | None = None  # seconds from the start of training; None: not reached
    curve: list[dict[str, Any]] = field(default_factory=list)


def run_process(command: list[str], log: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit code) of one child process, its output going to `log`."""
    env = {**os.environ, **OFFLINE}
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss * 1024, process.returncode


def bench_spec(args: argparse.Namespace) -> RunSpec:
    """The peftbench run: its defaults, plus what the A/B fixes for both arms.

    With `eval_steps` (a time-to-target run) it evaluates every eval_steps steps up to the cap and
    stops at `target`; it keeps no checkpoint per evaluation (the baseline keeps none either). Without,
    it evaluates once after training (bench_switches.py, which compares samples/s per switch).
    """
    eval_steps = getattr(args, "eval_steps", None)
    timed = {}
    if eval_steps is not None:
        timed = {
            "eval_strategy": "steps",
            "eval_steps": eval_steps,
            "max_steps": args.max_steps,
            "checkpoint_steps": args.max_steps,
            "target_validation": args.target,
            "warmup_ratio": args.warmup_ratio,
        }
    training = TrainingSettings(
        **({"eval_strategy": "no"} | timed),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        max_train_samples=args.train_samples,
        max_eval_samples=args.eval_samples,
    )
    return RunSpec(
        sweep="bench-speed",
        model=MODEL_CATALOG["minilm-l6"],
        task=TASK_CATALOG["movie_sentiment"],
        method="full",
        label="full",
        params=METHODS["full"].Params().model_dump(mode="json"),
        training=training,
        seed=args.seed,
    )


def curve_figures(curve: list[dict[str, Any]]) -> dict[str, Any]:
    """Steps, training seconds without evaluations, samples/s and time to target, from a curve."""
    if not curve:
        return {}
    last = curve[-1]
    return {
        "steps": last["step"],
        "train_seconds": last["train_seconds"],
        "train_samples_per_second": last["samples"] / last["train_seconds"] if last["train_seconds"] else 0.0,
        "validation_accuracy": last["validation"]["accuracy"],
        "time_to_target": next((p["seconds"] for p in curve if p["reached_target"]), None),
    }


def run_peftbench(spec_file: Path, out: Path, repeat: int = 0) -> Measured:
    """`peftbench run-one` in a fresh process, into run folder `out` (its parent is the sweep folder)."""
    out.mkdir(parents=True)
    command = [sys.executable, "-m", "peftbench", "run-one", str(spec_file), str(out)]
    wall, peak, code = run_process(command, out / "log.txt")
    result = read_result(out / "result.json")
    if code != 0 or result.status != "success":
        raise SystemExit(f"peftbench run {out.name} failed ({result.status}); see {out / 'log.txt'}")
    curve_file = out / "validation_curve.json"
    curve = json.loads(curve_file.read_text())["points"] if curve_file.is_file() else []
    figures = {
        "steps": int(result.epochs_done),
        "train_seconds": result.cost.train_seconds,
        "train_samples_per_second": result.cost.train_samples_per_second,
        "validation_accuracy": result.validation["accuracy"],
    } | curve_figures(curve)
    return Measured(
        "peftbench", repeat, wall, peak, test_accuracy=result.test["accuracy"], curve=curve, **figures
    )


def run_baseline(args: argparse.Namespace, work: Path, repeat: int) -> Measured:
    out = work / f"baseline-{repeat}"
    out.mkdir(parents=True)
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "baseline_trainer.py"),
        str(out),
        *("--train-samples", str(args.train_samples), "--eval-samples", str(args.eval_samples)),
        *("--epochs", str(args.epochs), "--batch-size", str(args.batch_size)),
        *("--learning-rate", str(args.learning_rate), "--max-length", str(args.max_length)),
        *("--seed", str(args.seed), "--eval-steps", str(args.eval_steps)),
        *("--max-steps", str(args.max_steps), "--warmup-ratio", str(args.warmup_ratio)),
        *("--target", str(args.target)),
    ]
    wall, peak, code = run_process(command, out / "log.txt")
    if code != 0:
        raise SystemExit(f"baseline run {repeat} failed (exit {code}); see {out / 'log.txt'}")
    summary = json.loads((out / "baseline.json").read_text())
    figures = curve_figures(summary["curve"])
    return Measured(
        "baseline",
        repeat,
        wall,
        peak,
        test_accuracy=summary["test_accuracy"],
        curve=summary["curve"],
        **figures,
    )


def noise_bound(accuracy: float, n: int) -> float:
    """Two standard errors of the difference of two accuracies on n test examples."""
    return 2 * math.sqrt(2 * accuracy * (1 - accuracy) / n)


def _median(values: list[float | None]) -> float | None:
    """The median, or None when any run did not reach the target (its time is not known, only > cap)."""
    return None if not values or any(v is None for v in values) else statistics.median(values)


def summarize(runs: list[Measured], eval_samples: int) -> dict[str, Any]:
    """Medians per arm and their ratios (peftbench against the baseline)."""
    per_arm: dict[str, dict[str, Any]] = {}
    for arm in ARMS:
        mine = [r for r in runs if r.arm == arm]
        per_arm[arm] = {
            "time_to_target": _median([r.time_to_target for r in mine]),
            "reached": sum(r.time_to_target is not None for r in mine),
            "runs": len(mine),
            **{
                f: statistics.median(getattr(r, f) for r in mine)
                for f in (
                    "steps",
                    "train_samples_per_second",
                    "wall_seconds",
                    "peak_rss_bytes",
                    "validation_accuracy",
                    "test_accuracy",
                )
            },
        }
    ours, base = per_arm["peftbench"], per_arm["baseline"]
    accuracy = (ours["test_accuracy"] + base["test_accuracy"]) / 2
    both_reached = ours["time_to_target"] is not None and base["time_to_target"] is not None
    summary = {
        "arms": per_arm,
        "time_to_target_speedup": base["time_to_target"] / ours["time_to_target"] if both_reached else None,
        "speedup_samples_per_second": ours["train_samples_per_second"] / base["train_samples_per_second"],
        "speedup_wall": base["wall_seconds"] / ours["wall_seconds"],
        "peak_rss_ratio": ours["peak_rss_bytes"] / base["peak_rss_bytes"],
        "test_accuracy_peftbench": ours["test_accuracy"],
        "test_accuracy_baseline": base["test_accuracy"],
        "accuracy_noise_bound": noise_bound(accuracy, eval_samples),
    }
    summary["metrics_agree"] = (
        abs(ours["test_accuracy"] - base["test_accuracy"]) <= summary["accuracy_noise_bound"]
    )
    return summary


def _seconds(value: float | None, cap: str = "not reached") -> str:
    return cap if value is None else f"{value:.1f}"


def print_report(runs: list[Measured], summary: dict[str, Any], args: argparse.Namespace) -> None:
    header = ("time to target s", "steps", "samples/s", "wall s", "peak GB", "val acc", "test acc")
    print(f"\n{'arm':<10} {'rep':>3} " + " ".join(f"{c:>16}" for c in header))
    for r in runs:
        values = (
            _seconds(r.time_to_target),
            f"{r.steps}",
            f"{r.train_samples_per_second:.2f}",
            f"{r.wall_seconds:.1f}",
            f"{r.peak_rss_bytes / 1e9:.2f}",
            f"{r.validation_accuracy:.3f}",
            f"{r.test_accuracy:.3f}",
        )
        print(f"{r.arm:<10} {r.repeat:>3} " + " ".join(f"{v:>16}" for v in values))
    arms = summary["arms"]
    print(
        f"\nmedians (target: validation accuracy >= {args.target} on {args.eval_samples} examples, cap "
        f"{args.max_steps} steps of {args.batch_size}, evaluated every {args.eval_steps} steps)"
    )
    print("| | baseline | peftbench | peftbench / baseline |\n|---|---:|---:|---:|")
    speedup = summary["time_to_target_speedup"]
    rows = [
        (
            "time to target (s)",
            _seconds(arms["baseline"]["time_to_target"]),
            _seconds(arms["peftbench"]["time_to_target"]),
            "–" if speedup is None else f"{speedup:.1f}x sooner",
        ),
        ("reached target", *(f"{arms[a]['reached']} of {arms[a]['runs']}" for a in ARMS), ""),
        ("steps", *(f"{arms[a]['steps']:.0f}" for a in ARMS), ""),
        (
            "samples/s (training)",
            *(f"{arms[a]['train_samples_per_second']:.2f}" for a in ARMS),
            f"{summary['speedup_samples_per_second']:.1f}x",
        ),
        (
            "peak RSS (GB)",
            *(f"{arms[a]['peak_rss_bytes'] / 1e9:.2f}" for a in ARMS),
            f"{summary['peak_rss_ratio']:.2f}",
        ),
        (
            "wall, whole process (s)",
            *(f"{arms[a]['wall_seconds']:.1f}" for a in ARMS),
            f"{summary['speedup_wall']:.1f}x shorter",
        ),
        (
            f"test accuracy ({args.eval_samples})",
            *(f"{arms[a]['test_accuracy']:.3f}" for a in ARMS),
            f"within ±{summary['accuracy_noise_bound']:.3f}: {'yes' if summary['metrics_agree'] else 'NO'}",
        ),
    ]
    for row in rows:
        print("| " + " | ".join(row) + " |")


def plot_curves(runs: list[Measured], target: float, path: Path) -> Path:
    """Validation accuracy against seconds since training began, one line per run, both arms."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    figure = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colors = {"baseline": "tab:gray", "peftbench": "tab:blue"}
    for r in runs:
        seconds = [p["seconds"] for p in r.curve]
        accuracy = [p["validation"]["accuracy"] for p in r.curve]
        axes.plot(seconds, accuracy, marker="o", markersize=3, color=colors[r.arm],
                  label=f"{r.arm} (repeat {r.repeat})", alpha=1.0 if r.repeat == 0 else 0.6)  # fmt: skip
    axes.axhline(target, color="tab:red", linestyle="--", linewidth=1, label=f"target {target}")
    axes.set_xscale("log")
    axes.xaxis.set_minor_formatter(NullFormatter())  # labels on the decades only: they overlap otherwise
    axes.set_xlabel("seconds since training began (evaluations included, log scale)")
    axes.set_ylabel("validation accuracy")
    axes.set_title("Full fine-tuning of MiniLM on movie_sentiment, CPU")
    axes.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Run the benchmark in `work` (a temp folder, removed afterwards unless --keep)."""
    spec_file = work / "spec.json"
    spec_file.write_text(bench_spec(args).model_dump_json(indent=2))
    runs: list[Measured] = []
    for repeat in range(args.repeats):
        for arm in ARMS:
            runs.append(
                run_baseline(args, work, repeat)
                if arm == "baseline"
                else run_peftbench(spec_file, work / "sweep" / f"peftbench-{repeat}", repeat)
            )
            r = runs[-1]
            print(
                f"{arm} {repeat}: target {_seconds(r.time_to_target)} s, {r.steps} steps, "
                f"{r.train_samples_per_second:.2f} samples/s, wall {r.wall_seconds:.0f} s",
                flush=True,
            )
    summary = summarize(runs, args.eval_samples)
    print_report(runs, summary, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot = plot_curves(runs, args.target, args.out.with_suffix(".png"))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    payload = {"settings": settings, "runs": [asdict(r) for r in runs], "summary": summary}
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"\nfigures in {args.out}, plot in {plot}" + (f"; run folders in {work}" if args.keep else ""))
    return summary


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.70, help="validation accuracy to reach")
    parser.add_argument("--train-samples", type=int, default=4096, help="the first N training sentences")
    parser.add_argument("--eval-samples", type=int, default=250, help="validation and test examples")
    parser.add_argument("--max-steps", type=int, default=128, help="step cap; the LR schedule runs over it")
    parser.add_argument("--eval-steps", type=int, default=8, help="evaluate validation every N steps")
    parser.add_argument("--epochs", type=float, default=1.0, help="(the cap wins)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--warmup-ratio", type=float, default=0.0)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="baseline/peftbench pairs")
    parser.add_argument("--quick", action="store_true", help=f"a shorter run: {QUICK}")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "speed.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder of the runs")
    args = parser.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    if args.max_steps % args.eval_steps:
        parser.error(f"--max-steps {args.max_steps} must be a multiple of --eval-steps {args.eval_steps}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    try:
        return measure(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
