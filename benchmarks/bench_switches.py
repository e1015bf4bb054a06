"""What each speed switch is worth: peftbench's bench run with one switch turned the other way.

    .venv/bin/python benchmarks/bench_switches.py [--train-samples 1000] [--only no_grouping,eager]

The run of `bench_speed.py` (MiniLM, 1,000 movie sentences, full fine-tuning, one epoch, batch 64,
max_length 256) per variant below, each right after a run with peftbench's defaults (A/B pairs,
so that load on a shared machine falls on both), each in a fresh process, all in one sweep folder
(the tokenization cache is warm after the first run). Not part of `make bench`: it takes about a
minute per variant on 2 cores, and `padding_max_length` alone as long as a baseline run. Prints
samples/s (and its ratio to the paired defaults run), wall seconds, peak RSS and test accuracy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from bench_speed import bench_spec, run_peftbench

from peftbench.core.spec import TrainingSettings

VARIANTS: dict[str, dict] = {
    "no_grouping": {"group_by_length": False},
    "eager_attention": {"attention": "eager"},
    "unfused_adamw": {"optimizer": "adamw_torch"},
    "gradient_checkpointing": {"gradient_checkpointing": True},
    "eval_in_training_loop": {"eval_strategy": "epoch"},
    "no_tokenization_cache": {"tokenization_cache": False},
    "padding_max_length": {"padding": "max_length"},
}


def measure(args: argparse.Namespace, work: Path) -> dict[str, dict]:
    """Run the benchmark in `work` (a temp folder, removed afterwards unless --keep)."""
    fixed = argparse.Namespace(
        epochs=1.0,
        batch_size=64,
        learning_rate=1e-4,
        max_length=256,
        seed=0,
        train_samples=args.train_samples,
        eval_samples=args.eval_samples,
    )
    base = bench_spec(fixed)
    figures = {}
    for index, name in enumerate(args.only.split(",")):
        if name not in VARIANTS:
            raise SystemExit(f"Unknown variant {name!r}. Known: {', '.join(VARIANTS)}")
        pair = {}
        for arm, change in (("defaults", {}), (name, VARIANTS[name])):
            training = TrainingSettings.model_validate(base.training.model_dump() | change)
            spec_file = work / f"{index}-{arm}.json"
            spec_file.write_text(base.model_copy(update={"training": training}).model_dump_json())
            pair[arm] = run_peftbench(spec_file, work / "sweep" / f"{index}-{arm}")
        run, reference = pair[name], pair["defaults"]
        figures[name] = {
            "train_samples_per_second": run.train_samples_per_second,
            "defaults_samples_per_second": reference.train_samples_per_second,
            "speed_vs_defaults": run.train_samples_per_second / reference.train_samples_per_second,
            "train_seconds": run.train_seconds,
            "wall_seconds": run.wall_seconds,
            "defaults_wall_seconds": reference.wall_seconds,
            "peak_rss_bytes": run.peak_rss_bytes,
            "defaults_peak_rss_bytes": reference.peak_rss_bytes,
            "test_accuracy": run.test_accuracy,
        }
        print(
            f"{name:<24} {run.train_samples_per_second:7.2f} samples/s "
            f"({run.train_samples_per_second / reference.train_samples_per_second:.2f}x the defaults' "
            f"{reference.train_samples_per_second:.2f}) wall {run.wall_seconds:.1f} s "
            f"(defaults {reference.wall_seconds:.1f})  "
            f"{run.peak_rss_bytes / 1e9:5.2f} GB (defaults {reference.peak_rss_bytes / 1e9:.2f})  "
            f"test acc {run.test_accuracy:.3f} (defaults {reference.test_accuracy:.3f})",
            flush=True,
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))
    return figures


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=1000)
    parser.add_argument("--eval-samples", type=int, default=250)
    parser.add_argument("--only", default=",".join(v for v in VARIANTS if v != "padding_max_length"))
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder of the runs")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-switches-"))
    try:
        return measure(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
