"""Submit runs to Slurm as submitit job arrays: one array per resource shape, never blocking.

What was submitted is recorded in the sweep folder (`.submissions/<time>-<job>.json`: job ids and
which run each array task holds), so `status` and `resubmit` work from any later shell. Job
states come from the real `squeue` (live jobs) and `sacct` (finished ones), one call each.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from peftbench.config import ClusterProfile, RunSpec, SlurmSettings
from peftbench.errors import Problem, unknown_name
from peftbench.results import RunPaths, read_spec, utc_now, write_json_atomic, write_spec
from peftbench.sweep import parent_run_id

SUBMISSIONS = ".submissions"
SUBMITIT_FOLDER = ".slurm"
LIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING"}


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


def shape_of(run: RunSpec, slurm: SlurmSettings) -> ResourceShape:
    """A run's request, with CPUs and memory scaled per GPU as the site's GPU type says."""
    resources = run.resources
    gpu_type = (resources.gpu_type or slurm.default_gpu_type) if resources.gpus else None
    cpus, mem = resources.cpus, resources.mem_gb
    if gpu_type is not None:
        kind = slurm.gpu_types[gpu_type]
        cpus, mem = kind.cpus_per_gpu * resources.gpus, kind.mem_gb_per_gpu * resources.gpus
    return ResourceShape(
        resources.gpus, gpu_type, resources.nodes, cpus, mem, resources.time_min, run.processes_per_node
    )


def resource_problems(runs: list[RunSpec], profile: ClusterProfile, file: str) -> list[Problem]:
    """Every request the profile cannot satisfy, and every site fact still to fill in."""
    problems = [
        Problem(file, key, "This site fact is still FILL_ME: set it in the profile before submitting.")
        for key in profile.unfilled()
    ]
    slurm = profile.slurm
    assert slurm is not None
    for label, res in {(r.label, r.resources) for r in runs}:
        key = f"methods.{label}.resources"
        if res.time_min > slurm.max_time_min:
            problems.append(
                Problem(
                    file,
                    f"{key}.time_min",
                    f"{res.time_min} min is over the "
                    f"partition's limit of {slurm.max_time_min} min on '{profile.name}'.",
                )
            )
        if not res.gpus:
            if res.cpus > slurm.cpu_node_cpus or res.mem_gb > slurm.cpu_node_mem_gb:
                problems.append(
                    Problem(
                        file,
                        key,
                        f"{res.cpus} CPUs / {res.mem_gb} GB is more than a "
                        f"node of '{profile.name}' has ({slurm.cpu_node_cpus} CPUs, "
                        f"{slurm.cpu_node_mem_gb} GB).",
                    )
                )
            continue
        gpu_type = res.gpu_type or slurm.default_gpu_type
        if gpu_type is None or gpu_type not in slurm.gpu_types:
            problems.append(unknown_name(file, f"{key}.gpu_type", "GPU type", gpu_type, slurm.gpu_types))
            continue
        per_node = slurm.gpu_types[gpu_type].gpus_per_node
        if res.gpus > per_node:
            problems.append(
                Problem(
                    file,
                    f"{key}.gpus",
                    f"{res.gpus} GPUs per node requested, but a "
                    f"{gpu_type} node of '{profile.name}' has {per_node}; use nodes: "
                    f"{-(-res.gpus // per_node)} with gpus: {per_node}.",
                )
            )
    return problems


def executor_parameters(shape: ResourceShape, profile: ClusterProfile, job_name: str) -> dict[str, Any]:
    """submitit's update_parameters() for one resource shape (becomes the #SBATCH lines)."""
    slurm = profile.slurm
    assert slurm is not None
    kind = slurm.gpu_types.get(shape.gpu_type) if shape.gpu_type else None
    params: dict[str, Any] = {
        "name": job_name,
        "timeout_min": shape.time_min,
        "nodes": shape.nodes,
        "tasks_per_node": shape.tasks_per_node,
        "cpus_per_task": max(1, shape.cpus // shape.tasks_per_node),
        "mem_gb": shape.mem_gb,
        "slurm_partition": (kind.partition if kind and kind.partition else slurm.partition),
        "slurm_array_parallelism": slurm.array_parallelism,
        "slurm_signal_delay_s": min(120, max(15, shape.time_min * 60 // 10)),
        "slurm_setup": [*(f"module load {m}" for m in slurm.modules), *slurm.setup],
        "slurm_additional_parameters": dict(slurm.additional_parameters),
    }
    if slurm.account:
        params["slurm_account"] = slurm.account
    if slurm.qos:
        params["slurm_qos"] = slurm.qos
    if kind is not None:
        if kind.gres:
            params["slurm_gres"] = f"{kind.gres}:{shape.gpus}"
        else:
            params["gpus_per_node"] = shape.gpus
        if kind.constraint:
            params["slurm_constraint"] = kind.constraint
    return params


class RunTask:
    """What each array task executes: run_one on a spec file. Checkpointable: on timeout or
    preemption submitit calls `checkpoint`, requeues the same call, and run_one resumes from the
    Trainer's last checkpoint in the run folder.

    A distributed run is one Slurm job with a task per GPU (over all its nodes): every task runs
    this same call, with the torch.distributed variables (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) exported from submitit's job environment; the Trainer's engine does
    the rest, and rank 0 writes the result."""

    def __call__(self, spec_file: str, run_dir: str) -> str:
        import submitit

        from peftbench.run import run_one

        if submitit.JobEnvironment().num_tasks > 1:
            # Every GPU of the node stays visible; each process takes cuda:LOCAL_RANK.
            submitit.helpers.TorchDistributedEnvironment().export(
                set_cuda_visible_devices=False, overwrite=True
            )
        return run_one(read_spec(Path(spec_file)), Path(run_dir)).status

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


@dataclass
class Submission:
    """One submitted array: its job ids (one per task) and the run each task holds."""

    cluster: str
    submitted_at: str
    shape: dict[str, Any]
    folder: str  # submitit's folder (logs, pickles)
    tasks: dict[str, str]  # Slurm job id ("123_4", or "123" for a one-task array) -> run_id


def submit_runs(runs: list[RunSpec], profile: ClusterProfile, runs_dir: Path) -> list[Submission]:
    """Submit `runs` as one job array per resource shape (split at max_array_size); record them."""
    import submitit

    slurm = profile.slurm
    assert slurm is not None
    depth = generations(runs)
    groups: dict[tuple[int, ResourceShape], list[RunSpec]] = defaultdict(list)
    for run in runs:
        groups[depth[run.run_id], shape_of(run, slurm)].append(run)
    chunks = [
        (shape, members[i : i + slurm.max_array_size])
        for (_, shape), members in sorted(groups.items(), key=lambda item: item[0][0])
        for i in range(0, len(members), slurm.max_array_size)
    ]
    children = any(parent_run_id(r) for r in runs)
    job_of = (
        {r: job for r, (job, _) in _live_jobs(Path(runs_dir) / runs[0].sweep).items()} if children else {}
    )
    submissions = []
    for shape, members in chunks:
        sweep_dir = Path(runs_dir) / members[0].sweep
        folder = sweep_dir / SUBMITIT_FOLDER / "%j"
        python = _container_python(profile)
        executor = submitit.AutoExecutor(
            folder=folder,
            cluster="slurm",
            slurm_max_num_timeout=slurm.max_num_timeout,
            **({"slurm_python": python} if python else {}),
        )
        parameters = executor_parameters(shape, profile, f"peftbench-{members[0].sweep}")
        waits_for = sorted({job_of[p] for r in members if (p := parent_run_id(r)) in job_of})
        if waits_for:  # incremental tuning: start only once every parent run has succeeded
            parameters["slurm_additional_parameters"]["dependency"] = "afterok:" + ":".join(waits_for)
        executor.update_parameters(**parameters)
        paths = [RunPaths.of(runs_dir, r) for r in members]
        for run, p in zip(members, paths, strict=True):
            p.root.mkdir(parents=True, exist_ok=True)
            write_spec(p.spec, run)
        jobs = executor.map_array(RunTask(), [str(p.spec) for p in paths], [str(p.root) for p in paths])
        job_of |= {run.run_id: job.job_id for job, run in zip(jobs, members, strict=True)}
        submission = Submission(
            profile.name,
            utc_now(),
            asdict(shape),
            str(folder),
            {job.job_id: run.run_id for job, run in zip(jobs, members, strict=True)},
        )
        first = jobs[0].job_id.split("_")[0]
        write_json_atomic(
            sweep_dir / SUBMISSIONS / f"{time.strftime('%Y%m%dT%H%M%S')}-{first}.json", asdict(submission)
        )
        submissions.append(submission)
    return submissions


def generations(runs: list[RunSpec]) -> dict[str, int]:
    """run_id -> how many parents above it among `runs` (0: none to wait for here)."""
    parent = {r.run_id: parent_run_id(r) for r in runs}

    def depth(run_id: str) -> int:
        above = parent.get(run_id)
        return 0 if above is None or above not in parent else 1 + depth(above)

    return {run_id: depth(run_id) for run_id in parent}


def _live_jobs(sweep_dir: Path) -> dict[str, tuple[str, Submission]]:
    """Runs of earlier submissions still pending or running: children submitted now wait for them."""
    latest = latest_jobs(read_submissions(sweep_dir))
    states = query_states([job for job, _ in latest.values()]) if latest else {}
    return {run_id: (job, sub) for run_id, (job, sub) in latest.items() if states.get(job) in LIVE_STATES}


def _container_python(profile: ClusterProfile) -> str | None:
    if profile.container is None:
        return None
    from peftbench.launch.container import container_python

    return container_python(profile)


def read_submissions(sweep_dir: Path) -> list[Submission]:
    """Every recorded submission of a sweep, oldest first (unreadable records are skipped)."""
    out = []
    for path in sorted((Path(sweep_dir) / SUBMISSIONS).glob("*.json")):
        try:
            out.append(Submission(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue
    return out


def latest_jobs(submissions: list[Submission]) -> dict[str, tuple[str, Submission]]:
    """run_id -> (job id, submission) of the newest submission holding that run."""
    latest: dict[str, tuple[str, Submission]] = {}
    for submission in submissions:
        for job_id, run_id in submission.tasks.items():
            latest[run_id] = (job_id, submission)
    return latest


def query_states(job_ids: list[str]) -> dict[str, str]:
    """Slurm state per job id ("123_4" -> "RUNNING"): squeue for live jobs, sacct for the rest.

    squeue answers at once for queued jobs; sacct lags a second or two but remembers finished ones.
    """
    wanted = set(job_ids)
    if not wanted:
        return {}
    states: dict[str, str] = {}
    bases = sorted({j.split("_")[0] for j in wanted})
    sacct = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(bases)])
    for line in sacct.splitlines():
        job, _, state = line.partition("|")
        if job in wanted:
            states[job] = state.split()[0] if state else "UNKNOWN"
    for line in _run(["squeue", "-h", "-r", "-o", "%i|%T"]).splitlines():
        job, _, state = line.partition("|")
        if job in wanted:
            states[job] = state
    return states


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def stderr_tail(submission: Submission, job_id: str, lines: int = 5) -> str:
    """The last lines of a task's stderr, from submitit's log folder."""
    from submitit.core.utils import JobPaths

    path = JobPaths(submission.folder, job_id=job_id, task_id=0).stderr
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])


def check_writable(folder: Path, file: str) -> list[Problem]:
    """The run folder must be writable from here (and, on a shared file system, from the nodes)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        return [Problem(file, "runs_dir", f"Run folder {str(folder)!r} is not writable: {err.strerror}.")]
    return []
