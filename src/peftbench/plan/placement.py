"""Where each run goes on a Slurm site, settled once before anything is submitted.

For every run the plan decides what its array task asks the scheduler for (`ResourceShape`: GPUs,
CPUs and memory scaled per GPU type, processes per node), how many runs share that task (its pack,
`resources.runs_per_gpu`), which run must succeed before it starts (incremental tuning) and its
time limit. The launcher reads these records (`PlannedRun`) and never estimates anything again.

`resources.time_min: auto` asks the plan for the limit: the estimate of the slowest run of the array
(plan/time_estimate.py) × the profile's `cost.time_margin` — for a pack, the sum of its runs, taken
as its size × the slowest — rounded up to whole minutes and capped by the partition. A run that still
runs out of time requeues and resumes from its checkpoint, as any run does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from peftbench.core.search import cell_id, parent_cell_id
from peftbench.core.spec import RunSpec, parent_run_id
from peftbench.plan.packing import pack_size
from peftbench.plan.schema import ClusterProfile, SlurmSettings


@dataclass(frozen=True)
class ResourceShape:
    """What one array asks for; runs with equal shapes share one array."""

    gpus: int
    gpu_type: str | None
    nodes: int
    cpus: int  # per node
    mem_gb: int  # per node
    time_min: int
    tasks_per_node: int = 1  # one process per GPU in a distributed run
    runs_per_task: int = 1  # a packed array: k runs side by side in each task (resources.runs_per_gpu)


@dataclass(frozen=True)
class PlannedRun:
    """What the plan settles for one run; `launch` reads it and decides nothing of its own."""

    run: RunSpec
    shape: ResourceShape  # what its array task asks for (its pack size and time limit included)
    after: str | None  # the run id whose success it waits for (incremental tuning), if any
    after_any: tuple[str, ...] = ()  # runs it waits to end, whatever their status (a winner run: its search)

    @property
    def runs_per_task(self) -> int:
        """Its pack: how many runs of its shape share one array task."""
        return self.shape.runs_per_task

    @property
    def time_min(self) -> int:
        """Its time limit: the request's resources.time_min, or the one `auto` made from the estimate."""
        return self.shape.time_min


def shape_of(
    run: RunSpec, slurm: SlurmSettings, runs_per_task: int = 1, time_min: int | None = None
) -> ResourceShape:
    """A run's request, with CPUs and memory scaled per GPU as the site's GPU type says.

    A packed CPU task asks for the host memory of all its runs (up to a node's)."""
    resources = run.resources
    gpu_type = (resources.gpu_type or slurm.default_gpu_type) if resources.gpus else None
    cpus, mem = resources.cpus, resources.mem_gb
    if gpu_type is not None:
        kind = slurm.gpu_types[gpu_type]
        cpus, mem = kind.cpus_per_gpu * resources.gpus, kind.mem_gb_per_gpu * resources.gpus
    elif runs_per_task > 1:
        mem = min(mem * runs_per_task, max(mem, slurm.cpu_node_mem_gb))
    return ResourceShape(
        resources.gpus,
        gpu_type,
        resources.nodes,
        cpus,
        mem,
        time_min if time_min is not None else resources.time_min if resources.time_min != "auto" else 0,
        run.processes_per_node,
        runs_per_task,
    )


def plan_run(run: RunSpec, profile: ClusterProfile, planned_bytes: int | None) -> PlannedRun:
    """`run`'s record on `profile`'s Slurm site; `planned_bytes` its per-GPU memory estimate, if any."""
    assert profile.slurm is not None
    k = pack_size(run, profile, planned_bytes)
    return PlannedRun(run, shape_of(run, profile.slurm, k), parent_run_id(run))


def plan_runs(
    runs: list[RunSpec],
    profile: ClusterProfile,
    planned: Mapping[str, int | None],
    seconds: Mapping[str, float] | None = None,
) -> dict[str, PlannedRun]:
    """run_id -> its record; `planned` holds the memory estimates of the runs that pack by it,
    `seconds` the time estimates of the runs whose time_min is `auto`."""
    ids = [run.run_id for run in runs]  # each a hash of the spec: made once here
    placed = {i: plan_run(run, profile, planned.get(i)) for run, i in zip(runs, ids, strict=True)}
    placed |= winners_after_their_search(runs, ids, placed)
    placed |= children_after_the_winner(runs, ids, placed)
    return auto_time_limits(placed, profile, seconds or {})


def auto_time_limits(
    placed: dict[str, PlannedRun], profile: ClusterProfile, seconds: Mapping[str, float]
) -> dict[str, PlannedRun]:
    """Each `auto` run's limit: the slowest estimate of the runs sharing its shape (module docstring)."""
    assert profile.slurm is not None
    slowest: dict[ResourceShape, float] = {}
    for run_id, p in placed.items():
        if p.run.resources.time_min == "auto" and run_id in seconds:
            slowest[p.shape] = max(slowest.get(p.shape, 0.0), seconds[run_id] * p.runs_per_task)
    limits = {shape: auto_minutes(s, profile) for shape, s in slowest.items()}
    return {
        i: dataclasses.replace(p, shape=dataclasses.replace(p.shape, time_min=limits[p.shape]))
        if p.shape in limits
        else p
        for i, p in placed.items()
    }


def auto_minutes(seconds: float, profile: ClusterProfile) -> int:
    """`seconds` × the profile's margin in whole minutes, at most the partition's limit."""
    assert profile.slurm is not None
    wanted = math.ceil(seconds * profile.cost.time_margin / 60)
    return max(1, min(wanted, profile.slurm.max_time_min))


def winners_after_their_search(
    runs: list[RunSpec], ids: list[str], placed: dict[str, PlannedRun]
) -> dict[str, PlannedRun]:
    """Each run that trains its cell's winner (core/search.py), waiting for every search run of its
    cell to end (`afterany`: a halted run ends too); it becomes the winner when it starts."""
    search: dict[str, list[str]] = {}
    for run, i in zip(runs, ids, strict=True):
        if run.search is not None and not run.search.trains_winner:
            search.setdefault(cell_id(run), []).append(i)
    return {
        i: dataclasses.replace(placed[i], after_any=tuple(search.get(cell_id(run), ())))
        for run, i in zip(runs, ids, strict=True)
        if run.search is not None and run.search.trains_winner
    }


def children_after_the_winner(
    runs: list[RunSpec], ids: list[str], placed: dict[str, PlannedRun]
) -> dict[str, PlannedRun]:
    """Each child of a searched block (core/search.py): on a seed that trains the winner it waits for
    that run to succeed (`after`: the cell's run that becomes the winner); on a seed that searched, for
    every search run of the cell to end (`afterany`, as a winner run does). It finds its parent when it
    starts."""
    search: dict[str, list[str]] = {}
    winner: dict[tuple[str, int], str] = {}
    for run, i in zip(runs, ids, strict=True):
        if run.search is not None and run.search.trains_winner:
            winner[cell_id(run), run.seed] = i
        elif run.search is not None:
            search.setdefault(cell_id(run), []).append(i)
    out = {}
    for run, i in zip(runs, ids, strict=True):
        if (cell := parent_cell_id(run)) is None:
            continue
        after = winner.get((cell, run.seed))
        waits = () if after is not None else tuple(search.get(cell, ()))
        out[i] = dataclasses.replace(placed[i], after=after, after_any=(*placed[i].after_any, *waits))
    return out
