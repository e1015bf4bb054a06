"""How many runs share one array task (`resources.runs_per_gpu`), and what cannot be packed.

A packed task trains k runs side by side on its GPU, one process each (docs/packing.md). `auto`
asks the planner: as many runs as fit the GPU's memory with a margin, each run's planned memory
(plan/memory.py) plus a CUDA context per process staying under FILL_FRACTION of the GPU, and no
more than the CPU cores that come with the GPU (a run process needs one). On a CPU node (the
localhost Slurm) `auto` is one run per CPU core of the task. A run of several processes (a
distributed engine) is never packed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from peftbench.core.errors import Problem
from peftbench.plan.memory import FILL_FRACTION, GB
from peftbench.plan.resources import gpu_type_of
from peftbench.plan.schema import ClusterProfile

if TYPE_CHECKING:
    from peftbench.core.spec import RunSpec

CUDA_CONTEXT_BYTES = 600 * 10**6  # per process: the CUDA context and kernels torch loads, not in the estimate


def pack_size(run: RunSpec, profile: ClusterProfile, planned_bytes: int | None) -> int:
    """Runs per array task for `run`: 1 unless its method sets runs_per_gpu (see the module docstring)."""
    wanted, res = run.resources.runs_per_gpu, run.resources
    if wanted is None or run.world_size > 1:
        return 1
    if wanted != "auto":
        return wanted
    if not res.gpus:
        return res.cpus
    kind = gpu_type_of(run, profile)
    if kind is None or not kind.memory_gb or planned_bytes is None:
        return 1
    fits = int(FILL_FRACTION * kind.memory_gb * GB // (planned_bytes + CUDA_CONTEXT_BYTES))
    return max(1, min(fits, kind.cpus_per_gpu * res.gpus))


def packing_problems(
    runs: list[RunSpec], profile: ClusterProfile, file: str, planned: Mapping[str, int | None]
) -> list[Problem]:
    """Packing that cannot work: a distributed run, or N runs whose planned memory exceeds the GPU's.

    `planned`: run_id -> the planner's per-GPU estimate in bytes (None: the model's size is unknown)."""
    asked = [r for r in runs if r.resources.runs_per_gpu is not None]
    overfull = _overfull_packing_problems(asked, profile, file, planned)
    return _distributed_packing_problems(asked, file) + overfull


def _distributed_packing_problems(asked: list[RunSpec], file: str) -> list[Problem]:
    """One problem per method block that packs a run of several processes."""
    problems: dict[str, Problem] = {}
    for run in asked:
        key = f"methods.{run.label}.resources.runs_per_gpu"
        if run.world_size > 1 and key not in problems:
            message = (
                f"{run.world_size} processes per run: a distributed run has its GPUs to itself and is not "
                "packed; leave runs_per_gpu out, or use one process."
            )
            problems[key] = Problem(file, key, message, str(run.resources.runs_per_gpu))
    return list(problems.values())


def _overfull_packing_problems(
    asked: list[RunSpec], profile: ClusterProfile, file: str, planned: Mapping[str, int | None]
) -> list[Problem]:
    """One problem per (method, model, task) whose fixed runs_per_gpu overfills the GPU."""
    problems: dict[tuple[str, str, str], Problem] = {}
    for run in asked:
        k, kind = run.resources.runs_per_gpu, gpu_type_of(run, profile)
        where = (run.label, run.model.name, run.task.name)
        if not isinstance(k, int) or run.world_size > 1 or kind is None or where in problems:
            continue
        need = _bytes_with_context(planned.get(run.run_id))
        if need is None or not kind.memory_gb or k * need <= FILL_FRACTION * kind.memory_gb * GB:
            continue
        most = max(1, int(FILL_FRACTION * kind.memory_gb * GB // need))
        message = (
            f"{k} runs of {run.model.name} on {run.task.name} need about {k * need / GB:.1f} GB "
            f"({need / GB:.1f} GB each, CUDA context included), over {FILL_FRACTION:.0%} of a "
            f"{kind.memory_gb} GB GPU: at most {most} fit; or use 'auto'."
        )
        problems[where] = Problem(file, f"methods.{run.label}.resources.runs_per_gpu", message, str(k))
    return list(problems.values())


def _bytes_with_context(planned_bytes: int | None) -> int | None:
    return None if planned_bytes is None else planned_bytes + CUDA_CONTEXT_BYTES


def needs_planned_memory(run: RunSpec) -> bool:
    """Whether packing `run` needs its planned GPU memory: a GPU run of one process that is packed."""
    return run.resources.runs_per_gpu is not None and bool(run.resources.gpus) and run.world_size == 1
