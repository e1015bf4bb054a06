"""How many runs share one array task (`resources.runs_per_gpu`), and what cannot be packed.

A packed task trains k runs side by side on its GPU, one process each (docs/packing.md). `auto`
asks the planner: as many runs as fit the GPU's memory with a margin, each run's planned memory
(plan/memory.py) plus a CUDA context per process staying under FILL_FRACTION of the GPU, and no
more than the CPU cores that come with the GPU (a run process needs one). On a CPU node (the
localhost Slurm) `auto` is one run per CPU core of the task. A run of several processes (a
distributed engine) is never packed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peftbench.core.errors import Problem
from peftbench.plan.memory import FILL_FRACTION, GB
from peftbench.plan.resources import gpu_type_of
from peftbench.plan.schema import ClusterProfile

if TYPE_CHECKING:
    from peftbench.core.spec import RunSpec
    from peftbench.plan.sweep_plan import MemoryRow

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


def pack_sizes(runs: list[RunSpec], profile: ClusterProfile) -> dict[str, int]:
    """run_id -> runs per task, with the planner's memory estimate for GPU runs set to `auto`."""
    auto = [r for r in runs if r.resources.runs_per_gpu == "auto" and r.resources.gpus]
    rows = _planned_rows(auto, profile)
    planned = {row.run.run_id: row.estimate.total if row.estimate else None for row in rows}
    return {r.run_id: pack_size(r, profile, planned.get(r.run_id)) for r in runs}


def packing_problems(runs: list[RunSpec], profile: ClusterProfile, file: str) -> list[Problem]:
    """Packing that cannot work: a distributed run, or N runs whose planned memory exceeds the GPU's."""
    problems: list[Problem] = []
    asked = [r for r in runs if r.resources.runs_per_gpu is not None]
    seen: set[tuple] = set()
    for run in asked:
        key = f"methods.{run.label}.resources.runs_per_gpu"
        if run.world_size > 1 and (key, "world") not in seen:
            seen.add((key, "world"))
            message = (
                f"{run.world_size} processes per run: a distributed run has its GPUs to itself and is not "
                "packed; leave runs_per_gpu out, or use one process."
            )
            problems.append(Problem(file, key, message, str(run.resources.runs_per_gpu)))
    fixed = [r for r in asked if isinstance(r.resources.runs_per_gpu, int) and r.resources.gpus]
    for row in _planned_rows([r for r in fixed if r.world_size == 1], profile):
        run, kind = row.run, gpu_type_of(row.run, profile)
        if row.estimate is None or kind is None or not kind.memory_gb:
            continue
        k, need = run.resources.runs_per_gpu, row.estimate.total + CUDA_CONTEXT_BYTES
        assert isinstance(k, int)
        where = (run.label, run.model.name, run.task.name)
        if k * need <= FILL_FRACTION * kind.memory_gb * GB or where in seen:
            continue
        seen.add(where)
        most = max(1, int(FILL_FRACTION * kind.memory_gb * GB // need))
        message = (
            f"{k} runs of {run.model.name} on {run.task.name} need about {k * need / GB:.1f} GB "
            f"({need / GB:.1f} GB each, CUDA context included), over {FILL_FRACTION:.0%} of a "
            f"{kind.memory_gb} GB GPU: at most {most} fit; or use 'auto'."
        )
        problems.append(Problem(file, f"methods.{run.label}.resources.runs_per_gpu", message, str(k)))
    return problems


def _planned_rows(runs: list[RunSpec], profile: ClusterProfile) -> list[MemoryRow]:
    from peftbench.plan.sweep_plan import memory_rows

    return memory_rows(runs, profile) if runs else []
