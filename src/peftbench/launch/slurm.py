"""Submit runs to Slurm as submitit job arrays: one array per resource shape, never blocking.

What was submitted is recorded in the sweep folder (`.submissions/<time>-<job>.json`: job ids and
which run each array task holds), so `status` and `resubmit` work from any later shell. Job
states come from the real `squeue` (live jobs) and `sacct` (finished ones), one call each.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from peftbench.core.errors import SchedulerError
from peftbench.core.files import write_json_atomic
from peftbench.core.paths import RunPaths
from peftbench.core.results import utc_now, write_spec
from peftbench.core.spec import RunSpec, parent_run_id
from peftbench.launch.array_task import PackTask, RunTask
from peftbench.launch.slurm_cluster import use_cluster
from peftbench.launch.slurm_records import SUBMISSIONS, Submission, jobs_by_run, read_submissions
from peftbench.launch.slurm_state import LIVE_STATES, SchedulerUnavailable, query_states
from peftbench.plan.packing import pack_sizes
from peftbench.plan.schema import ClusterProfile, SlurmSettings

SUBMITIT_FOLDER = ".slurm"


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


def shape_of(run: RunSpec, slurm: SlurmSettings, runs_per_task: int = 1) -> ResourceShape:
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
        resources.time_min,
        run.processes_per_node,
        runs_per_task,
    )


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
    if shape.nodes * shape.tasks_per_node > 1:
        # One process dying (a node lost, a kill) must end the job, not leave the others waiting in a
        # collective until the engine's timeout (30 min): srun then kills the job's other tasks.
        params["slurm_srun_args"] = ["--kill-on-bad-exit=1"]
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


def submit_runs(runs: list[RunSpec], profile: ClusterProfile, runs_dir: Path) -> list[Submission]:
    """Submit `runs` as one job array per resource shape (split at max_array_size); record them.

    Runs whose method packs them (resources.runs_per_gpu) go k to a task: PackTask trains them side
    by side, and the record lists the runs of each task (`Submission.packs`)."""
    import submitit

    slurm = profile.slurm
    assert slurm is not None
    use_cluster(profile)
    for command in ("sbatch", "srun"):  # submitit needs both; without them nothing is written
        if shutil.which(command) is None:
            raise SchedulerError(command, "not found on PATH: is this a Slurm login node?")
    depth, k = generations(runs), pack_sizes(runs, profile)
    groups: dict[tuple[int, ResourceShape], list[RunSpec]] = defaultdict(list)
    for run in runs:
        groups[depth[run.run_id], shape_of(run, slurm, k[run.run_id])].append(run)
    chunks = [
        (shape, packs[i : i + slurm.max_array_size])
        for (_, shape), members in sorted(groups.items(), key=lambda item: item[0][0])
        for packs in [_packs(members, shape.runs_per_task)]
        for i in range(0, len(packs), slurm.max_array_size)
    ]
    children = any(parent_run_id(r) for r in runs)
    job_of = (
        {r: job for r, (job, _) in _live_jobs(Path(runs_dir) / runs[0].sweep).items()} if children else {}
    )
    submissions = []
    for shape, packs in chunks:
        members = [run for pack in packs for run in pack]
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
            # A failed parent: Slurm cancels the child at once, rather than leaving it pending forever.
            parameters["slurm_additional_parameters"]["kill_on_invalid_dep"] = "yes"
        executor.update_parameters(**parameters)
        paths = [RunPaths.of(runs_dir, r) for r in members]
        with _undone_if_refused(sweep_dir / SUBMITIT_FOLDER, [p.root for p in paths]):
            for run, p in zip(members, paths, strict=True):
                p.root.mkdir(parents=True, exist_ok=True)
                write_spec(p.spec, run)
            held_paths = [[RunPaths.of(runs_dir, r) for r in pack] for pack in packs]
            jobs = _submit_array(executor, shape, held_paths)
        held = {job.job_id: [run.run_id for run in pack] for job, pack in zip(jobs, packs, strict=True)}
        job_of |= {run_id: job for job, run_ids in held.items() for run_id in run_ids}
        single = shape.runs_per_task == 1
        submission = Submission(
            profile.name,
            utc_now(),
            asdict(shape),
            str(folder),
            {job: run_ids[0] for job, run_ids in held.items()} if single else {},
            {} if single else held,
        )
        first = jobs[0].job_id.split("_")[0]
        write_json_atomic(
            sweep_dir / SUBMISSIONS / f"{time.strftime('%Y%m%dT%H%M%S')}-{first}.json", asdict(submission)
        )
        submissions.append(submission)
    return submissions


def _packs(members: list[RunSpec], k: int) -> list[list[RunSpec]]:
    """`members` in groups of k (the last one smaller), in order."""
    return [members[i : i + k] for i in range(0, len(members), k)]


def _submit_array(executor: Any, shape: ResourceShape, packs: list[list[RunPaths]]) -> list[Any]:
    """One array task per pack: RunTask for a single run, PackTask for k runs side by side."""
    if shape.runs_per_task == 1:
        paths = [pack[0] for pack in packs]
        return executor.map_array(RunTask(), [str(p.spec) for p in paths], [str(p.root) for p in paths])
    specs = [[str(p.spec) for p in pack] for pack in packs]
    return executor.map_array(PackTask(), specs, [[str(p.root) for p in pack] for pack in packs])


@contextmanager
def _undone_if_refused(submitit_folder: Path, run_folders: list[Path]) -> Iterator[None]:
    """Submit one array; if `sbatch` fails (controller down, a bad option), remove what this attempt
    wrote (submitit's pickles and sbatch script, run folders that did not exist) and raise a
    SchedulerError naming sbatch and its error. Arrays submitted before it stay submitted and recorded.
    """
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    before = set(submitit_folder.iterdir()) if submitit_folder.is_dir() else None
    new_runs = [f for f in run_folders if not f.exists()]
    stderr = io.StringIO()  # submitit prints sbatch's stderr itself; it goes into the one error line
    try:
        with redirect_stderr(stderr):
            yield
    except (FailedJobError, FailedSubmissionError, OSError) as err:
        if isinstance(err, OSError) and err.filename != "sbatch":  # not the scheduler: a disk error
            raise
        now = set(submitit_folder.iterdir()) if submitit_folder.is_dir() else set()
        for path in now - (before or set()):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        if before is None and submitit_folder.is_dir():
            submitit_folder.rmdir()
        for folder in new_runs:
            shutil.rmtree(folder, ignore_errors=True)
        raise SchedulerError("sbatch", str(err) or stderr.getvalue()) from None
    sys.stderr.write(stderr.getvalue())  # on success, whatever submitit said is passed on


def generations(runs: list[RunSpec]) -> dict[str, int]:
    """run_id -> how many parents above it among `runs` (0: none to wait for here)."""
    parent = {r.run_id: parent_run_id(r) for r in runs}

    def depth(run_id: str) -> int:
        above = parent.get(run_id)
        return 0 if above is None or above not in parent else 1 + depth(above)

    return {run_id: depth(run_id) for run_id in parent}


def _live_jobs(sweep_dir: Path) -> dict[str, tuple[str, Submission]]:
    """Runs of earlier submissions still pending or running: children submitted now wait for them."""
    jobs = jobs_by_run(read_submissions(sweep_dir))
    scheduler = query_states([job for held in jobs.values() for job, _ in held])
    if scheduler.errors:  # a child submitted without its parent's dependency would start too soon
        raise SchedulerUnavailable("; ".join(scheduler.errors))
    return {
        run_id: (job, sub)
        for run_id, held in jobs.items()
        for job, sub in held
        if scheduler.get(job) in LIVE_STATES
    }


def cancel_jobs(job_ids: list[str]) -> None:
    """scancel these jobs (children blocked by a failed parent, before they are submitted again).

    Best effort: a job that ended meanwhile needs no cancelling, and one that stays can never run.
    """
    if job_ids:
        subprocess.run(["scancel", *job_ids], check=False, capture_output=True, timeout=60)


def _container_python(profile: ClusterProfile) -> str | None:
    if profile.container is None:
        return None
    from peftbench.launch.container import container_python

    return container_python(profile)
