"""Disk a sweep needs at its peak, against the runs folder's free space and the profile's quota.

A run's folder holds, at its peak, the Trainer's checkpoints and then its artifact and test
predictions. One checkpoint (measured on CPU for full fine-tuning and LoRA, unsharded and under
ZeRO-3: benchmarks/bench_generation_memory.py, docs/benchmarks.md) is

- the saved weights: the whole model where the method trains all weights, else the tensors it
  trains (an adapter, biases), in fp32 (4 bytes: weights load in fp32) or, under DeepSpeed in a
  mixed-precision run, the 16-bit copy ZeRO gathers on save (2 bytes);
- the optimizer: AdamW's two fp32 moments per trainable parameter (8 bytes) in `optimizer.pt`, or
  under DeepSpeed its ZeRO shards (`global_stepN/*_optim_states.pt`: fp32 master copy and moments,
  12 bytes; summed over the shards), and under ZeRO-2 the 16-bit module in its model states too;
- CHECKPOINT_EXTRA for the tokenizer, scheduler, RNG and trainer state.

The Trainer keeps `save_total_limit` checkpoints (2 with early stopping, else 1: run/trainer_args.py)
and writes the next before it deletes the oldest, so one more at its peak. The artifact (the same
weights as a checkpoint's) is saved while the last checkpoints are still there; they go after it
unless `keep_checkpoints`. A run's peak is the larger of the two moments, plus its predictions.

The sweep's peak: every run not yet done leaves its artifact, predictions (and kept checkpoints),
and the `array_parallelism` largest of them (one at a time on the local launcher) hold their
checkpoints at once. Not counted: the tokenization cache (shared by the sweep's runs) and logs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.core.engines import DEEPSPEED_BACKENDS
from peftbench.core.errors import Problem
from peftbench.core.paths import RunPaths
from peftbench.core.results import has_success
from peftbench.plan.generation_memory import GENERATING_TASK_TYPES

if TYPE_CHECKING:
    from peftbench.core.spec import RunSpec
    from peftbench.plan.schema import ClusterProfile

GB = 10**9
CHECKPOINT_EXTRA = 2 * 10**6  # tokenizer files, scheduler, RNG and trainer state: ~0.8 MB for MiniLM
ASSUMED_TEST_EXAMPLES = 10_000  # where max_eval_samples does not bound the test split
PREDICTION_BYTES = 64  # one prediction line without its text; a generated answer adds ~4 bytes a token


@dataclass(frozen=True)
class RunDisk:
    """Bytes one run writes, by part."""

    run: RunSpec
    checkpoint: int
    checkpoints_at_peak: int  # save_total_limit + 1 while the Trainer writes the next
    checkpoints_left: int  # what stays after success (keep_checkpoints), else 0
    artifact: int
    predictions: int

    @property
    def peak(self) -> int:
        training = self.checkpoints_at_peak * self.checkpoint
        saving = (self.checkpoints_at_peak - 1) * self.checkpoint + self.artifact
        return max(training, saving) + self.predictions

    @property
    def left(self) -> int:
        """What the finished run keeps on disk."""
        return self.checkpoints_left * self.checkpoint + self.artifact + self.predictions


@dataclass(frozen=True)
class SweepDisk:
    """The sweep's runs still to run, their peak together, and the room there is."""

    runs: list[RunDisk]
    at_once: int  # runs that train at the same time
    folder: Path  # the sweep's run folder (or its nearest existing parent, whose file system counts)
    free: int
    quota: int | None  # the profile's quota_gb in bytes
    not_sized: int = 0  # runs whose model's size is not known here (or comes from a parent run)

    @property
    def peak(self) -> int:
        left = sum(r.left for r in self.runs)
        extra = sorted((r.peak - r.left for r in self.runs), reverse=True)[: self.at_once]
        return left + sum(extra)

    @property
    def largest_run(self) -> RunDisk | None:
        return max(self.runs, key=lambda r: r.peak, default=None)


def run_disk(run: RunSpec, total: int, trainable: int) -> RunDisk:
    """One run's bytes, from its model's and its method's parameter counts (module docstring)."""
    from peftbench.methods import METHODS

    t, backend = run.training, run.training.engine
    deepspeed = backend in DEEPSPEED_BACKENDS
    weight_bytes = 2 if deepspeed and t.precision in ("auto", "bf16", "fp16") else 4
    saved = (total if METHODS[run.method].traits.trains_all_weights else trainable) * weight_bytes
    optimizer = (12 if deepspeed else 8) * trainable
    module_states = saved if backend == "zero2" else 0
    limit = 2 if t.early_stopping_patience is not None else 1
    examples = t.max_eval_samples or ASSUMED_TEST_EXAMPLES
    answer = 4 * t.effective_max_new_tokens if run.task.type in GENERATING_TASK_TYPES else 0
    return RunDisk(
        run,
        checkpoint=saved + optimizer + module_states + CHECKPOINT_EXTRA,
        checkpoints_at_peak=limit + 1,
        checkpoints_left=limit if t.keep_checkpoints else 0,
        artifact=saved,
        predictions=examples * (PREDICTION_BYTES + answer),
    )


def sweep_disk(
    runs: list[RunSpec],
    profile: ClusterProfile,
    sweep_dir: Path,
    counted: dict[int, tuple[int, int]] | None = None,
) -> SweepDisk:
    """The disk of the sweep's runs without a success result. `counted`: id() of a run -> (total,
    trainable) parameters the memory check already made; the others are counted here, once per
    model and method."""
    counts = ParameterCounts(counted or {})
    done = done_runs(runs, sweep_dir)
    sized, not_sized = [], 0
    for run in runs:
        if id(run) in done:
            continue
        found = counts.of(run)
        if found is None:
            not_sized += 1
        else:
            sized.append(run_disk(run, *found))
    folder = existing_parent(sweep_dir)
    at_once = profile.slurm.array_parallelism if profile.launcher == "slurm" and profile.slurm else 1
    quota = int(profile.quota_gb * GB) if profile.quota_gb is not None else None
    return SweepDisk(sized, at_once, folder, shutil.disk_usage(folder).free, quota, not_sized)


def done_runs(runs: list[RunSpec], sweep_dir: Path) -> set[int]:
    """id() of each run with a success result; a run's id (a hash of its spec) is made only where
    some run of the sweep has a result at all."""
    results = {p.parent.name for p in sweep_dir.glob("*/result.json")} if sweep_dir.is_dir() else set()
    if not results:
        return set()
    return {id(r) for r in runs if r.run_id in results and has_success(RunPaths(sweep_dir / r.run_id))}


class ParameterCounts:
    """(total, trainable) parameters of each run: the memory check's where it made them, else counted
    here on the meta device, once per model and method; None where the model's size is not known."""

    def __init__(self, counted: dict[int, tuple[int, int]]):
        self.counted = counted
        self.configs: dict[tuple, Any] = {}
        self.made: dict[tuple, tuple[int, int] | None] = {}

    def of(self, run: RunSpec) -> tuple[int, int] | None:
        if id(run) in self.counted:
            return self.counted[id(run)]
        from peftbench.models.shapes import planning_config
        from peftbench.plan.memory import count_from_config, trainable_from_config

        model = (run.model.source, run.model.gguf_file)
        if model not in self.configs:
            self.configs[model] = planning_config(run.model)[0]
        config = self.configs[model]
        method = (*model, run.model.family, run.method, json.dumps(run.params, sort_keys=True))
        if method not in self.made and config is not None:
            self.made[method] = (count_from_config(config).total, trainable_from_config(run, config))
        return self.made.get(method)


def existing_parent(path: Path) -> Path:
    """`path`, or the nearest folder above it that exists (whose file system the runs will fill)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_problems(disk: SweepDisk, profile: ClusterProfile) -> list[Problem]:
    """The sweep's peak against the free space and the quota: one problem for each it exceeds."""
    peak, problems = disk.peak, []
    largest = disk.largest_run
    if largest is None:
        return []
    figures = (
        f"The sweep's {len(disk.runs)} run(s) to run need about {peak / GB:.1f} GB of disk at their peak "
        f"({min(disk.at_once, len(disk.runs))} at once; the largest, {largest.run.run_id}, "
        f"{largest.peak / GB:.1f} GB with {largest.checkpoints_at_peak} checkpoint(s) of "
        f"{largest.checkpoint / GB:.1f} GB, leaving {largest.left / GB:.1f} GB)"
    )
    advice = "Free space, run fewer at once, or pass --force to go on."
    if peak > disk.free:
        message = f"{figures}, but {disk.folder} has {disk.free / GB:.1f} GB free. {advice}"
        problems.append(Problem(profile.file, "runs_dir", message))
    if disk.quota is not None and peak > disk.quota:
        message = f"{figures}, over the profile's quota_gb of {disk.quota / GB:.0f} GB. {advice}"
        problems.append(Problem(profile.file, "quota_gb", message))
    return problems
