"""Requests checked against the site before submission: resources, processes, the run folder."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

from peftbench.core.engines import MULTI_PROCESS_BACKENDS
from peftbench.core.errors import Problem, disk_trouble, unknown_name
from peftbench.core.files import cannot_write
from peftbench.core.spec import ResourceRequest, RunSpec
from peftbench.plan.schema import ClusterProfile, GpuType, SlurmSettings


def resource_problems(runs: list[RunSpec], profile: ClusterProfile, file: str) -> list[Problem]:
    """Every request the profile cannot satisfy (one check per method block and request)."""
    problems: list[Problem] = []
    for label, res in {(r.label, r.resources) for r in runs}:
        key = f"methods.{label}.resources"
        for check in (_time_problems, _cpu_node_problems, _gpu_problems):
            problems += check(res, profile, file, key)
    return problems


def _slurm_of(profile: ClusterProfile) -> SlurmSettings:
    assert profile.slurm is not None
    return profile.slurm


def _time_problems(res: ResourceRequest, profile: ClusterProfile, file: str, key: str) -> list[Problem]:
    limit = _slurm_of(profile).max_time_min
    if res.time_min == "auto" or res.time_min <= limit:
        return []
    message = f"{res.time_min} min is over the partition's limit of {limit} min on '{profile.name}'."
    return [Problem(file, f"{key}.time_min", message)]


def _cpu_node_problems(res: ResourceRequest, profile: ClusterProfile, file: str, key: str) -> list[Problem]:
    slurm = _slurm_of(profile)
    if res.gpus or (res.cpus <= slurm.cpu_node_cpus and res.mem_gb <= slurm.cpu_node_mem_gb):
        return []
    message = (
        f"{res.cpus} CPUs / {res.mem_gb} GB is more than a node of '{profile.name}' has "
        f"({slurm.cpu_node_cpus} CPUs, {slurm.cpu_node_mem_gb} GB)."
    )
    return [Problem(file, key, message)]


def _gpu_problems(res: ResourceRequest, profile: ClusterProfile, file: str, key: str) -> list[Problem]:
    if not res.gpus:
        return []
    slurm = _slurm_of(profile)
    gpu_type = res.gpu_type or slurm.default_gpu_type
    if gpu_type is None or gpu_type not in slurm.gpu_types:
        return [unknown_name(file, f"{key}.gpu_type", "GPU type", gpu_type, slurm.gpu_types)]
    per_node = slurm.gpu_types[gpu_type].gpus_per_node
    if res.gpus <= per_node:
        return []
    message = (
        f"{res.gpus} GPUs per node requested, but a {gpu_type} node of '{profile.name}' has {per_node}; "
        f"use nodes: {-(-res.gpus // per_node)} with gpus: {per_node}."
    )
    return [Problem(file, f"{key}.gpus", message)]


def unset_site_facts(profile: ClusterProfile) -> list[Problem]:
    """Site facts still FILL_ME, under the profile file's name: a preview warns, a submission refuses.

    A packaged profile cannot be edited in place: the message says how to make it the lab's own.
    """
    from peftbench.plan.profiles import PACKAGED

    where = "in the profile"
    if Path(profile.file).parent == PACKAGED:
        copy = f"`peftbench clusters copy {profile.name}` writes configs/clusters/{profile.name}.yaml"
        where = f"in your own copy ({copy})"
    message = f"This site fact is still FILL_ME: set it {where} before submitting."
    return [Problem(profile.file, key, message) for key in profile.unfilled()] + missing_slurm_conf(profile)


def missing_slurm_conf(profile: ClusterProfile) -> list[Problem]:
    """A profile naming its own slurm.conf that is not there: that cluster is not set up (or not up) here."""
    conf = profile.slurm.conf if profile.slurm else None
    if conf is None or Path(conf).expanduser().is_file():
        return []
    first = (Path(profile.file).read_text(encoding="utf-8").splitlines() or [""])[0]
    comment = first if first.startswith("#") else ""
    hint = f" The profile says how it is started: {comment.lstrip('# ')}" if comment else ""
    return [Problem(profile.file, "slurm.conf", f"No file {conf}: this cluster is not set up here.{hint}")]


def check_writable(folder: Path, file: str) -> list[Problem]:
    """The run folder must be writable from here (and, on a shared file system, from the nodes).

    Checked without creating it: a plan that is refused, or only previewed, leaves no empty folder.
    The nearest folder that exists gets a probe file that is removed at once.
    """
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path.cwd())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory")
        with tempfile.TemporaryFile(dir=existing, prefix=".peftbench-write-probe-"):
            pass
    except OSError as err:
        found = disk_trouble(err)  # read-only: the file system named, and what to do
        said = f"{existing} {err.strerror.lower()}." if err.strerror else f"{err}."
        why = str(cannot_write(existing, found[0])) if found else said
        return [Problem(file, "runs_dir", f"Run folder {str(folder)!r} is not writable: {why}")]
    return []


def process_problems(runs: list[RunSpec], profile: ClusterProfile, file: str) -> list[Problem]:
    """Multi-process requests that cannot work: no engine to share the work, or no launcher to start them."""
    problems = []
    seen = set()
    for run in runs:
        res, backend, key = run.resources, run.training.engine, f"methods.{run.label}"
        if (key, res, backend) in seen:
            continue
        seen.add((key, res, backend))
        world = run.world_size
        if res.tasks_per_node is not None and res.gpus and res.tasks_per_node != res.gpus:
            message = (
                f"tasks_per_node {res.tasks_per_node} with gpus {res.gpus}: "
                "a distributed run has one process per GPU."
            )
            problems.append(Problem(file, f"{key}.resources.tasks_per_node", message))
        if world > 1 and backend == "none":
            message = (
                f"{world} processes ({run.processes_per_node} per node × {res.nodes} nodes) but no engine "
                "to share the work: they would train the same run side by side."
            )
            problems.append(
                Problem(
                    file,
                    f"{key}.distributed",
                    message,
                    backend,
                    MULTI_PROCESS_BACKENDS,
                )
            )
        if world > 1 and profile.launcher == "local":
            message = (
                f"{world} processes per run, but the '{profile.name}' launcher starts one: "
                "use a Slurm profile (CLUSTER=dev is the localhost Slurm)."
            )
            problems.append(Problem(file, f"{key}.resources", message))
    return problems


def gpu_type_of(run: RunSpec, profile: ClusterProfile) -> GpuType | None:
    slurm = profile.slurm
    if slurm is None or not run.resources.gpus:
        return None
    return slurm.gpu_types.get(run.resources.gpu_type or slurm.default_gpu_type or "")
