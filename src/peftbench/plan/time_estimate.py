"""How long each run of a plan will take, before it runs (docs/cost.md).

    seconds = FLOPs ÷ (the device's peak × an efficiency)

The FLOPs are the tokens the run puts through its model times the FLOPs per token of its method
(plan/flops.py): training, examples × epochs × tokens per example (measured by finished runs of the
same task and tokenizer, else on the data (plan/token_sample.py), else max_length, the assumption
said), every sequence lengthened by the
method's virtual tokens; evaluation, a forward pass (2N a token) over validation after each epoch
(eval_strategy: epoch) and at the end, and over test; generation, 2N for each new token of every
test answer. The efficiency is measured by finished runs where there are any (plan/calibration.py),
else the profile's or the shipped default for the engine, and each estimate says which, with its
uncertainty. Add the seconds a run spends loading and saving (measured by model, else a default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from peftbench.core.spec import RunSpec, TaskSpec
from peftbench.plan.calibration import Calibration, Efficiency
from peftbench.plan.flops import Device, compute_weights, device_of, flops_per_token, virtual_tokens
from peftbench.plan.memory import forwarded_sequences
from peftbench.plan.schema import ClusterProfile
from peftbench.plan.token_sample import sampled_tokens_per_example

DEFAULT_OVERHEAD_S = 30.0  # loading the model and data, saving: assumed until a run of the model has finished
EVAL_SHARE = 0.1  # evaluation examples per split, as a share of training ones, where neither is known


@dataclass(frozen=True)
class TimeEstimate:
    """One run's time, in seconds, and what it rests on."""

    train_s: float
    eval_s: float
    overhead_s: float
    device: Device
    efficiency: Efficiency
    assumptions: tuple[str, ...] = ()  # what was assumed, not measured (tokens, examples, overhead, peak)

    @property
    def wall_s(self) -> float:
        return self.train_s + self.eval_s + self.overhead_s

    @property
    def devices(self) -> int:
        """Devices it holds: its GPUs; a CPU run counts as one (docs/cost.md)."""
        return self.device.count if self.device.name != "cpu" else 1

    @property
    def gpu_hours(self) -> float:
        return self.wall_s / 3600 * self.devices

    @property
    def energy_wh(self) -> float | None:
        return None if self.device.power_w is None else self.device.power_w * self.wall_s / 3600


@dataclass(frozen=True)
class RunEstimate:
    """A run and its estimate; `missing` says why there is none (the model's shape is not known here)."""

    run: RunSpec
    estimate: TimeEstimate | None
    missing: str | None = None


def estimate_run(run: RunSpec, profile: ClusterProfile, calibration: Calibration) -> RunEstimate:
    """`run`'s time on `profile`'s device (module docstring)."""
    weights = compute_weights(run.model)
    if weights is None:
        return RunEstimate(run, None, f"the shape of {run.model.name!r} is unknown here: `peftbench fetch`")
    device = device_of(run, profile)
    efficiency = calibration.efficiency(run, device.name)
    speed = device.peak_flops * efficiency.value
    assumed = [device.note] if device.note else []
    per_example, said = _tokens_per_example(run, calibration)
    assumed += [said] if said else []
    samples, said = _samples(run, calibration)
    assumed += [said] if said else []
    positions = samples * (per_example + virtual_tokens(run) * forwarded_sequences(run.task, True))
    train_s = flops_per_token(run, weights) * positions / speed
    eval_tokens, said = _evaluation_tokens(run, samples, per_example)
    assumed += [said] if said else []
    overhead = calibration.overhead_s(run)
    if overhead is None:
        assumed.append(f"{DEFAULT_OVERHEAD_S:g} s to load and save (no run of {run.model.name} finished)")
    eval_s = 2.0 * weights * eval_tokens / speed
    other_s = DEFAULT_OVERHEAD_S if overhead is None else overhead
    estimate = TimeEstimate(train_s, eval_s, other_s, device, efficiency, tuple(assumed))
    return RunEstimate(run, estimate)


def _tokens_per_example(run: RunSpec, calibration: Calibration) -> tuple[float, str | None]:
    measured = calibration.tokens_per_example(run)
    if measured is None:
        measured = sampled_tokens_per_example(run)
    if measured is not None:
        return measured, None
    length, sequences = run.training.max_length, forwarded_sequences(run.task, True)
    said = f"{run.task.name}: every example {length} tokens long (max_length; none measured)"
    return length * sequences, said


def _samples(run: RunSpec, calibration: Calibration) -> tuple[float, str | None]:
    """Training examples processed over the whole run."""
    t = run.training
    if t.max_steps is not None:
        return float(t.max_steps * t.batch_size * t.gradient_accumulation_steps * run.world_size), None
    counted = split_size(run.task, "train")
    if counted is not None:
        return min(counted, t.max_train_samples or counted) * t.epochs, None
    if t.max_train_samples is not None:
        return t.max_train_samples * t.epochs, None
    measured = calibration.examples(run)
    if measured is not None:
        return measured * t.epochs, None
    assumed = 10_000
    return assumed * t.epochs, f"{run.task.name}: {assumed:,} training examples assumed (data not here)"


def _evaluation_tokens(run: RunSpec, samples: float, per_example: float) -> tuple[float, str | None]:
    """Tokens of every evaluation pass, generated ones included."""
    t, said = run.training, None
    sizes = [split_size(run.task, split) for split in ("validation", "test")]
    if t.max_eval_samples is not None:
        sizes = [min(s, t.max_eval_samples) if s is not None else t.max_eval_samples for s in sizes]
    if None in sizes:
        guess = EVAL_SHARE * samples / t.epochs
        sizes = [guess if s is None else s for s in sizes]
        said = f"{run.task.name}: evaluation splits {EVAL_SHARE:.0%} of training (not here)"
    validation, test = sizes
    passes = (math.ceil(t.epochs) if t.eval_strategy == "epoch" else 0) + 1
    tokens = (validation * passes + test) * per_example
    if run.task.type in ("generation", "instruction"):
        tokens += test * t.effective_max_new_tokens
    return tokens, said


def split_size(task: TaskSpec, split: str) -> int | None:
    """Examples in one split of a task whose data is on this disk (bundled or local files); None for
    hub data (the planner does not open the HF cache) or a split it cannot read."""
    if split not in task.splits or task.source.hub is not None:
        return None
    return _local_split_size(task.model_dump_json(), split)


@lru_cache(maxsize=512)
def _local_split_size(task_json: str, split: str) -> int | None:
    from datasets.utils import logging as datasets_logging

    from peftbench.tasks.sources import load_split

    was_enabled = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        data: Any = load_split(TaskSpec.model_validate_json(task_json), split)
    except Exception:  # unreadable data is the run's problem, reported when it runs
        return None
    finally:
        if was_enabled:
            datasets_logging.enable_progress_bar()
    return len(data)


def estimate_runs(
    runs: list[RunSpec], profile: ClusterProfile, calibration: Calibration
) -> list[RunEstimate]:
    """Every run's estimate, in order."""
    return [estimate_run(run, profile, calibration) for run in runs]
