"""The arithmetic of a run's time: FLOPs per token by method and engine, and the peak of its device.

A token through a transformer of N weights (embeddings left out: a lookup is no matrix product)
costs 2N FLOPs forward and 4N backward when every weight trains: 6N for full fine-tuning (Kaplan
et al. 2020, "Scaling laws", section 2.1). A frozen base with an adapter still carries the gradient
of the activations back through every layer (2N) but computes no weight gradient of the base (the
other 2N): 4N (its own weights, 1% of the base or less, add under 2% and are left out). Gradient
checkpointing recomputes the forward pass: +2N.
Virtual tokens (prompt and prefix tuning) lengthen every sequence (time_estimate.py adds them). The
attention scores' own FLOPs (quadratic in length) are left out: at the lengths fine-tuning uses they
are a few per cent, and a calibrated efficiency absorbs them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from peftbench.core.spec import ModelRef, RunSpec
from peftbench.plan.cost_settings import (
    CPU_PEAK_TFLOPS_PER_CORE,
    DEFAULT_PEAK_TFLOPS,
    DEFAULT_POWER_W,
    FALLBACK_GPU,
)
from peftbench.plan.resources import gpu_type_of
from peftbench.plan.schema import ClusterProfile


@lru_cache(maxsize=256)
def compute_weights(model: ModelRef) -> int | None:
    """Weights of `model` that multiply (all but the embedding tables), from its config on the meta
    device; None when its config is not available here (`peftbench fetch`)."""
    from peftbench.models.shapes import planning_config
    from peftbench.plan.memory import meta_model

    config, _origin = planning_config(model)
    if config is None:
        return None
    import torch

    built = meta_model(config)
    embedded = sum(m.weight.numel() for m in built.modules() if isinstance(m, torch.nn.Embedding))
    total = sum(p.numel() for p in built.parameters())
    return max(total - embedded, 1)


def flops_per_token(run: RunSpec, weights: int) -> float:
    """Training FLOPs per token position of `run` (module docstring)."""
    from peftbench.methods import METHODS

    full = METHODS[run.method].traits.trains_all_weights
    per_token = 6.0 * weights if full else 4.0 * weights
    if run.training.uses_gradient_checkpointing:
        per_token += 2.0 * weights
    return per_token


def virtual_tokens(run: RunSpec) -> int:
    """Positions a method adds to every sequence (prompt, prefix and p-tuning)."""
    count = run.params.get("num_virtual_tokens")
    return count if isinstance(count, int) else 0


@dataclass(frozen=True)
class Device:
    """What one run computes on: its device name, how many, and their peak."""

    name: str  # a GPU type of the profile, or "cpu"
    count: int  # GPUs of the run (all nodes), or the CPU cores it computes on
    peak_flops: float  # of all of them together, at the run's precision
    power_w: float | None  # of all of them together; None on a CPU
    note: str | None = None  # where the peak came from, when it is not the profile's own


def device_of(run: RunSpec, profile: ClusterProfile) -> Device:
    """The run's device and peak; a GPU type the profile gives no peak falls back to a named default."""
    cost = profile.cost
    kind = gpu_type_of(run, profile)
    if not run.resources.gpus or kind is None:
        return cpu_device(run, profile)
    name = run.resources.gpu_type or (profile.slurm.default_gpu_type if profile.slurm else None) or "gpu"
    precision = "bf16" if run.training.precision == "auto" else run.training.precision
    count = run.resources.gpus * run.resources.nodes
    peak, note = _gpu_peak(name, precision, profile)
    power = cost.power_w.get(name) or DEFAULT_POWER_W.get(_known(name), DEFAULT_POWER_W[FALLBACK_GPU])
    return Device(name, count, peak * 1e12 * count, power * count, note)


def cpu_device(run: RunSpec, profile: ClusterProfile) -> Device:
    """The CPU as the device: the profile's peak a core × the cores the run computes on."""
    cores = cpu_cores(run, profile)
    per_core = profile.cost.peak_tflops.get("cpu", {}).get("fp32")
    assumed = f"no cost.peak_tflops.cpu.fp32: {CPU_PEAK_TFLOPS_PER_CORE} TFLOPS a core assumed"
    note = None if per_core else assumed
    return Device("cpu", cores, (per_core or CPU_PEAK_TFLOPS_PER_CORE) * 1e12 * cores, None, note)


def _known(name: str) -> str:
    """The shipped GPU whose name is in `name` (`a100_40g` -> a100), else the fallback."""
    return next((known for known in DEFAULT_PEAK_TFLOPS if known in name.lower()), FALLBACK_GPU)


def _gpu_peak(name: str, precision: str, profile: ClusterProfile) -> tuple[float, str | None]:
    own = profile.cost.peak_tflops.get(name, {}).get(precision)
    if own:
        return own, None
    known = _known(name)
    shipped = DEFAULT_PEAK_TFLOPS[known][precision]
    said = "the shipped" if known in name.lower() else f"no figure for {name!r}: the fallback"
    note = (
        f"no cost.peak_tflops.{name}.{precision} in '{profile.name}': {said} {known.upper()} figure, "
        f"{shipped:g} TFLOPS"
    )
    return shipped, note


def cpu_cores(run: RunSpec, profile: ClusterProfile) -> int:
    """Cores a CPU run computes on: its task's (resources.cpus) on Slurm; on the local launcher the
    threads torch takes ($OMP_NUM_THREADS, else every core)."""
    if profile.launcher == "slurm":
        return run.resources.cpus
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return int(threads) if threads.isdigit() and int(threads) > 0 else os.cpu_count() or 1
