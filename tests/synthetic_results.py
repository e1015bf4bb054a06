"""A synthetic, deterministic results set for the collector, table, plot and report tests.

2 models × 2 tasks (accuracy and an MCC task) × 4 methods (LoRA over three ranks) × 3 seeds, real
RunResult records written with `write_result`, plus one run that ran out of memory and one run
folder that has a spec but never got a result (lost).
"""

from __future__ import annotations

import math
from pathlib import Path

from peftbench.core.paths import RunPaths
from peftbench.core.predictions import Prediction, predictions_path, write_predictions
from peftbench.core.results import Cost, Provenance, RunResult, write_result, write_spec
from peftbench.core.spec import ModelRef, RunSpec, TrainingSettings
from peftbench.tasks import TASK_CATALOG
from tests.conftest import demo_run

MODELS = {
    "minilm-l6": (ModelRef(name="minilm-l6", source="package:x", family="bert"), 22_713_216, 1.0),
    "xlmr-base": (ModelRef(name="xlmr-base", source="local/xlmr", family="xlm-roberta"), 278_045_186, 12.0),
}
TASKS = ("movie_sentiment", "cola")
QUALITY = {"full": 0.86, "lora": 0.845, "bitfit": 0.82, "prompt_tuning": 0.70}
SEED_NOISE = (-0.012, 0.004, 0.010)
VALIDATION_NOISE = (0.006, -0.004, 0.001)
SECONDS = {"full": 600.0, "lora": 420.0, "bitfit": 380.0, "prompt_tuning": 350.0}
GPU_GB = {"full": 6.0, "lora": 3.1, "bitfit": 2.9, "prompt_tuning": 2.7}
LORA_RANKS = (4, 8, 16)
# Provenance records the Apptainer image where the schema has it (added with the container launcher).
IMAGE = {
    key: value
    for key, value in {"image": "/ceph/peftbench.sif", "image_sha256": "a" * 64}.items()
    if key in Provenance.model_fields
}


def spec_for(
    model: str, task: str, method: str, seed: int, r: int | None = None, sweep: str = "synth"
) -> RunSpec:
    base = demo_run(method)
    params = dict(base.params) | ({"r": r} if r is not None else {})
    training = TrainingSettings.model_validate(base.training.model_dump() | {"max_eval_samples": None})
    return base.model_copy(
        update={
            "sweep": sweep,
            "model": MODELS[model][0],
            "task": TASK_CATALOG[task],
            "params": params,
            "training": training,
            "seed": seed,
        }
    )


def trainable(method: str, total: int, r: int | None) -> int:
    head = 1538
    return {
        "full": total,
        "lora": 9216 * (r or 8) * 6 + head,
        "bitfit": total // 1000 + head,
        "prompt_tuning": 20 * 384 + head,
    }[method]


def score(model: str, task: str, method: str, seed: int, r: int | None) -> tuple[float, float]:
    """(validation, test) for one run: a method's quality, shifted by model, task, rank and seed."""
    quality = QUALITY[method] + (0.03 if model == "xlmr-base" else 0.0)
    if r is not None:
        quality += 0.005 * math.log2(r / 4)
    if task == "cola":
        quality -= 0.35
    spread = 3.0 if method == "prompt_tuning" else 1.0
    test = quality + spread * SEED_NOISE[seed]
    return round(test + 0.02 + spread * VALIDATION_NOISE[seed], 6), round(test, 6)


def result_for(model: str, task: str, method: str, seed: int, r: int | None = None) -> RunResult:
    spec = spec_for(model, task, method, seed, r)
    _, total, scale = MODELS[model]
    validation, test = score(model, task, method, seed, r)
    metric = spec.task.metric
    if metric == "accuracy":
        other = {"accuracy": test, "mcc": 2 * test - 1}
    else:
        other = {"mcc": test, "accuracy": (test + 1) / 2}
    seconds = SECONDS[method] * scale
    return RunResult(
        run_id=spec.run_id,
        status="success",
        spec=spec,
        validation={metric: validation},
        test=other | {"f1_macro": test - 0.01, "precision_macro": test + 0.005, "recall_macro": test - 0.004},
        epochs_done=3.0,
        cost=Cost(
            wall_seconds=seconds + 30,
            train_seconds=seconds,
            peak_rss_bytes=3_000_000_000,
            peak_gpu_bytes=int(GPU_GB[method] * scale**0.5 * 1e9),
            gpu_hours=(seconds + 30) / 3600,
            trainable_params=trainable(method, total, r),
            total_params=total,
        ),
        provenance=Provenance(
            peftbench_version="0.1.0",
            packages={"torch": "2.8.0", "transformers": "5.0.0", "peft": "0.17.1"},
            python="3.11.2",
            git_commit="0123456789abcdef0123456789abcdef01234567",
            git_dirty=False,
            lock_sha256="f" * 64,
            hostname="gpu-node-1",
            device="NVIDIA H100 80GB HBM3",
            torch_threads=8,
            slurm_job_id="4242_7",
            seed=seed,
            **IMAGE,
        ),
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T01:00:00+00:00",
    )


def all_points() -> list[tuple[str, str, str, int | None]]:
    points = []
    for model in MODELS:
        for task in TASKS:
            for method in QUALITY:
                for r in LORA_RANKS if method == "lora" else (None,):
                    points.append((model, task, method, r))
    return points


def write_synthetic_sweep(sweep_dir: Path, predictions: bool = False) -> dict[str, list[str]]:
    """Write the whole set under `sweep_dir` (with test_predictions.jsonl files when asked); returns the
    run ids by kind (success, oom, lost)."""
    ids: dict[str, list[str]] = {"success": [], "oom": [], "lost": []}
    for model, task, method, r in all_points():
        for seed in range(len(SEED_NOISE)):
            result = result_for(model, task, method, seed, r)
            paths = RunPaths(sweep_dir / result.run_id)
            write_result(paths.result, result)
            if predictions:
                rows = [Prediction(index=i, id=i, label=(i + seed) % 2) for i in range(4)]
                write_predictions(predictions_path(paths.root), rows)
            ids["success"].append(result.run_id)
    oom = spec_for("xlmr-base", "cola", "full", seed=0, r=None).model_copy(update={"seed": 7})
    write_result(
        RunPaths(sweep_dir / oom.run_id).result,
        RunResult(
            run_id=oom.run_id,
            status="oom",
            spec=oom,
            error="Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory.",
            started_at="2026-01-01T00:00:00+00:00",
            finished_at="2026-01-01T00:05:00+00:00",
        ),
    )
    ids["oom"].append(oom.run_id)
    lost = spec_for("minilm-l6", "movie_sentiment", "bitfit", seed=0).model_copy(update={"seed": 9})
    write_spec(RunPaths(sweep_dir / lost.run_id).spec, lost)
    ids["lost"].append(lost.run_id)
    return ids
