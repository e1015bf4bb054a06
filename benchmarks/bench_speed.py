"""peftbench against the way the seed studies trained, side by side on this machine.

    make bench      (or: .venv/bin/python benchmarks/bench_speed.py [--train-samples 1000] [--repeats 2])

The same model (the offline MiniLM), data (the first N movie sentences), method (full fine-tuning),
epochs, batch size and learning rate, trained by `baseline_trainer.py` (the studies' way: padding
to 256, fp32, no length grouping, tokenising inside the run, Trainer defaults) and by peftbench's
`run-one` with its defaults. Interleaved baseline/peftbench/baseline/peftbench..., each run in a
fresh process, so that peak RSS (from wait4) is that run's alone and load on a shared machine
falls on both alike. peftbench's runs share one sweep folder, as a sweep's runs do: the first
tokenizes into the cache, the later ones reuse it.

Prints each run, then the ratios (samples/s, wall, peak memory) against the goals, and both test
metrics, which must agree within the test set's sampling noise. Writes the figures as JSON
(--out, default: runs/bench/speed.json).
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
from dataclasses import asdict, dataclass
from pathlib import Path

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
GOAL_SPEEDUP = 10.0  # samples/s, peftbench over baseline
GOAL_MEMORY = 1 / 3  # peak RSS, peftbench over baseline


@dataclass
class Measured:
    """One run of one arm, as seen from outside (wall, peak RSS) and as it reported itself."""

    arm: str
    repeat: int
    wall_seconds: float
    peak_rss_bytes: int
    train_seconds: float
    train_samples_per_second: float
    validation_accuracy: float
    test_accuracy: float


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

    Both arms evaluate validation and test once, after training (eval_strategy 'no', as the demo
    sweep does): with evaluation inside the training loop the Trainer's samples/s would count it.
    """
    training = TrainingSettings(
        eval_strategy="no",
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


def run_peftbench(spec_file: Path, out: Path, repeat: int = 0) -> Measured:
    """`peftbench run-one` in a fresh process, into run folder `out` (its parent is the sweep folder)."""
    out.mkdir(parents=True)
    command = [sys.executable, "-m", "peftbench", "run-one", str(spec_file), str(out)]
    wall, peak, code = run_process(command, out / "log.txt")
    result = read_result(out / "result.json")
    if code != 0 or result.status != "success":
        raise SystemExit(f"peftbench run {out.name} failed ({result.status}); see {out / 'log.txt'}")
    return Measured(
        "peftbench",
        repeat,
        wall,
        peak,
        result.cost.train_seconds,
        result.cost.train_samples_per_second,
        result.validation["accuracy"],
        result.test["accuracy"],
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
        *("--seed", str(args.seed)),
    ]
    wall, peak, code = run_process(command, out / "log.txt")
    if code != 0:
        raise SystemExit(f"baseline run {repeat} failed (exit {code}); see {out / 'log.txt'}")
    summary = json.loads((out / "baseline.json").read_text())
    return Measured(
        "baseline",
        repeat,
        wall,
        peak,
        summary["train_seconds"],
        summary["train_samples_per_second"],
        summary["validation_accuracy"],
        summary["test_accuracy"],
    )


def noise_bound(accuracy: float, n: int) -> float:
    """Two standard errors of the difference of two accuracies on n test examples."""
    return 2 * math.sqrt(2 * accuracy * (1 - accuracy) / n)


def summarize(runs: list[Measured], eval_samples: int) -> dict[str, float | bool]:
    """Medians per arm, their ratios, and whether the goals are met."""

    def median(arm: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs if r.arm == arm)

    ours = {f: median("peftbench", f) for f in asdict(runs[0]) if f not in {"arm", "repeat"}}
    base = {f: median("baseline", f) for f in ours}
    accuracy = (ours["test_accuracy"] + base["test_accuracy"]) / 2
    summary = {
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
    summary["goal_speedup_met"] = summary["speedup_samples_per_second"] >= GOAL_SPEEDUP
    summary["goal_memory_met"] = summary["peak_rss_ratio"] <= GOAL_MEMORY
    return summary


def print_report(runs: list[Measured], summary: dict[str, float | bool], eval_samples: int) -> None:
    columns = ("samples/s", "train s", "wall s", "peak GB", "val acc", "test acc")
    print(f"{'arm':<10} {'rep':>3} " + " ".join(f"{c:>9}" for c in columns))
    for r in runs:
        print(
            f"{r.arm:<10} {r.repeat:>3} {r.train_samples_per_second:>9.2f} {r.train_seconds:>9.1f} "
            f"{r.wall_seconds:>9.1f} {r.peak_rss_bytes / 1e9:>9.2f} {r.validation_accuracy:>9.3f} "
            f"{r.test_accuracy:>9.3f}"
        )
    print(
        f"\nsamples/s: {summary['speedup_samples_per_second']:.1f}x the baseline "
        f"(goal >= {GOAL_SPEEDUP:.0f}x: {'met' if summary['goal_speedup_met'] else 'NOT met'})"
    )
    print(f"wall time: {summary['speedup_wall']:.1f}x shorter (model loading and evaluation included)")
    print(
        f"peak RSS: {summary['peak_rss_ratio']:.2f} of the baseline's (goal <= 0.33: "
        f"{'met' if summary['goal_memory_met'] else 'NOT met'})"
    )
    print(
        f"test accuracy on {eval_samples}: peftbench {summary['test_accuracy_peftbench']:.3f}, "
        f"baseline {summary['test_accuracy_baseline']:.3f}; they agree within noise "
        f"(±{summary['accuracy_noise_bound']:.3f}): {'yes' if summary['metrics_agree'] else 'NO'}"
    )


def measure(args: argparse.Namespace, work: Path) -> dict[str, float | bool]:
    """Run the benchmark in `work` (a temp folder, removed afterwards unless --keep)."""
    spec_file = work / "spec.json"
    spec_file.write_text(bench_spec(args).model_dump_json(indent=2))
    runs: list[Measured] = []
    for repeat in range(args.repeats):
        for arm in ("baseline", "peftbench"):
            runs.append(
                run_baseline(args, work, repeat)
                if arm == "baseline"
                else run_peftbench(spec_file, work / "sweep" / f"peftbench-{repeat}", repeat)
            )
            r = runs[-1]
            print(
                f"{arm} {repeat}: {r.train_samples_per_second:.2f} samples/s, {r.wall_seconds:.0f} s",
                flush=True,
            )
    summary = summarize(runs, args.eval_samples)
    print_report(runs, summary, args.eval_samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "settings": vars(args) | {"out": str(args.out)},
                "runs": [asdict(r) for r in runs],
                "summary": summary,
            },
            indent=2,
        )
    )
    print(f"\nfigures in {args.out}" + (f"; run folders in {work}" if args.keep else ""))
    return summary


def main(argv: list[str] | None = None) -> dict[str, float | bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=1000)
    parser.add_argument("--eval-samples", type=int, default=250, help="validation and test examples")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="baseline/peftbench pairs")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "speed.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder of the runs")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    try:
        return measure(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
