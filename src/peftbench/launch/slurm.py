"""Submit runs to Slurm as submitit job arrays: one array per resource shape, never blocking.

`array_jobs` turns what the plan settled for each run (its shape, pack, parent and time limit) into
the arrays to submit, asking nothing of the scheduler (tests compare them with golden files);
`submit_runs` hands them to submitit. What was submitted is recorded in the sweep folder
(`.submissions/<time>-<job>.json`: job ids and which run each array task holds), so `status` and
`resubmit` work from any later shell.
"""

from __future__ import annotations

import io
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Collection, Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peftbench.core.errors import SchedulerError
from peftbench.core.files import write_json_atomic
from peftbench.core.paths import RunPaths
from peftbench.core.results import utc_now, write_spec
from peftbench.core.spec import RunSpec, parent_run_id
from peftbench.launch.array_task import PackTask, RunTask
from peftbench.launch.slurm_cluster import use_cluster
from peftbench.launch.slurm_queries import query_states, scheduler_call, silent_daemon
from peftbench.launch.slurm_records import SUBMISSIONS, Submission, jobs_by_run, read_submissions
from peftbench.launch.slurm_state import LIVE_STATES, SchedulerUnavailable
from peftbench.plan.placement import PlannedRun, ResourceShape
from peftbench.plan.schema import ClusterProfile, GpuType
from peftbench.plan.sweep_plan import SweepPlan

SUBMITIT_FOLDER = ".slurm"


@dataclass(frozen=True)
class ArrayJob:
    """One submitit array as the plan makes it, before anything is submitted: what the executor is
    given, which runs each array task holds, and the parent runs whose jobs must succeed first."""

    shape: ResourceShape
    folder: Path  # submitit's folder (logs, pickles), with its `%j`
    executor: dict[str, Any]  # AutoExecutor's own arguments besides folder and cluster
    parameters: dict[str, Any]  # update_parameters(): the #SBATCH lines, the dependency excepted
    packs: list[list[RunSpec]]  # one per array task: a run, or the runs a packed task trains side by side
    after: list[str]  # parent run ids (incremental tuning) whose jobs this array waits for
    after_any: list[str] = field(default_factory=list)  # runs whose jobs it waits to end (a search)

    @property
    def runs(self) -> list[RunSpec]:
        return [run for pack in self.packs for run in pack]

    @property
    def packed(self) -> bool:
        return self.shape.runs_per_task > 1

    def run_paths(self, runs_dir: Path) -> list[list[RunPaths]]:
        """The run folders of each task, where the spec files are written before submission."""
        return [[RunPaths.of(runs_dir, run) for run in pack] for pack in self.packs]

    def described(self, runs_dir: Path) -> dict[str, Any]:
        """The array as plain data with paths under `runs_dir` relative to it (the golden files)."""

        def relative(path: Path) -> str:
            return str(path.relative_to(runs_dir))

        return {
            "shape": asdict(self.shape),
            "folder": relative(self.folder),
            "executor": self.executor,
            "parameters": self.parameters,
            "task": "PackTask" if self.packed else "RunTask",
            "tasks": [[run.run_id for run in pack] for pack in self.packs],
            "after": self.after,
            **({"after_any": self.after_any} if self.after_any else {}),
            "spec_files": [relative(p.spec) for pack in self.run_paths(runs_dir) for p in pack],
        }


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
    params |= _set_only({"slurm_account": slurm.account, "slurm_qos": slurm.qos})
    return params | (_gpu_parameters(kind, shape.gpus) if kind is not None else {})


def _gpu_parameters(kind: GpuType, gpus: int) -> dict[str, Any]:
    """How the site's GPU type is asked for: its gres (or gpus_per_node), and its constraint."""
    asked: dict[str, Any] = {"slurm_gres": f"{kind.gres}:{gpus}"} if kind.gres else {"gpus_per_node": gpus}
    return asked | _set_only({"slurm_constraint": kind.constraint})


def _set_only(parameters: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in parameters.items() if value}


def array_jobs(plan: SweepPlan, runs: list[RunSpec], live: Collection[str] = ()) -> list[ArrayJob]:
    """The arrays that submit `runs`, from what the plan settled for each: one per resource shape and
    generation (parents before children), split at max_array_size, packed runs k to a task.

    `live`: run ids with a job still pending or running from an earlier submission; a child waits
    for those parents as for the parents submitted here. Nothing is asked of the scheduler."""
    slurm = plan.profile.slurm
    assert slurm is not None
    depth = generations(runs, {run.run_id: _waits_for(plan.placed[run.run_id]) for run in runs})
    groups: dict[tuple[int, ResourceShape], list[RunSpec]] = defaultdict(list)
    for run in runs:
        groups[depth[run.run_id], plan.placed[run.run_id].shape].append(run)
    python = _container_python(plan.profile)
    executor = {"slurm_max_num_timeout": slurm.max_num_timeout} | ({"slurm_python": python} if python else {})
    waited_for, out = set(live), []
    for (_, shape), members in sorted(groups.items(), key=lambda item: item[0][0]):
        packs = _packs(members, shape.runs_per_task)
        for i in range(0, len(packs), slurm.max_array_size):
            job = _array_job(plan, shape, packs[i : i + slurm.max_array_size], executor, waited_for)
            waited_for |= {run.run_id for run in job.runs}
            out.append(job)
    return out


def _array_job(
    plan: SweepPlan,
    shape: ResourceShape,
    packs: list[list[RunSpec]],
    executor: dict[str, Any],
    waited_for: set[str],
) -> ArrayJob:
    members = [run for pack in packs for run in pack]
    sweep = members[0].sweep
    after = {p for run in members if (p := plan.placed[run.run_id].after) in waited_for}
    after_any = {p for run in members for p in plan.placed[run.run_id].after_any if p in waited_for}
    return ArrayJob(
        shape,
        Path(plan.runs_dir) / sweep / SUBMITIT_FOLDER / "%j",
        dict(executor),
        executor_parameters(shape, plan.profile, f"peftbench-{sweep}"),
        packs,
        sorted(after),
        sorted(after_any),
    )


def _waits_for(placed: PlannedRun) -> tuple[str, ...]:
    """The runs a run waits for besides the parent its spec names: its search (a winner run), the run
    that trains its parent cell's winner (a child of a searched block)."""
    return (*placed.after_any, *([placed.after] if placed.after else []))


def _packs(members: list[RunSpec], k: int) -> list[list[RunSpec]]:
    """`members` in groups of k (the last one smaller), in order."""
    return [members[i : i + k] for i in range(0, len(members), k)]


def generations(runs: list[RunSpec], after_any: dict[str, tuple[str, ...]] | None = None) -> dict[str, int]:
    """run_id -> how many generations above it among `runs` (0: none to wait for here): parents, and
    the runs it waits to end (`after_any`: a winner run's search)."""
    parent = {r.run_id: parent_run_id(r) for r in runs}
    waits = after_any or {}

    def depth(run_id: str) -> int:
        above = [p for p in (parent.get(run_id), *waits.get(run_id, ())) if p is not None and p in parent]
        return 1 + max(depth(p) for p in above) if above else 0

    return {run_id: depth(run_id) for run_id in parent}


def submit_runs(plan: SweepPlan, runs: list[RunSpec]) -> list[Submission]:
    """Submit `runs` as the plan's arrays (`array_jobs`) and record each; never waits for the jobs."""
    use_cluster(plan.profile)
    if (silent := silent_daemon("slurmctld")) is not None:  # sbatch would wait out the same timeout
        why = f"slurmctld did not answer {silent.command} earlier in this command ({silent.said})"
        raise SchedulerUnavailable(f"sbatch not tried: {why}")
    for command in ("sbatch", "srun"):  # submitit needs both; without them nothing is written
        if shutil.which(command) is None:
            raise SchedulerError(command, "not found on PATH: is this a Slurm login node?")
    waits = any(plan.placed[r.run_id].after or plan.placed[r.run_id].after_any for r in runs)
    job_of = _live_jobs(plan.runs_dir / runs[0].sweep) if waits else {}
    return [_submit(array, plan, job_of) for array in array_jobs(plan, runs, job_of)]


def _submit(array: ArrayJob, plan: SweepPlan, job_of: dict[str, str]) -> Submission:
    """Write the specs, submit one array, record it; `job_of` (run_id -> job id) learns its jobs."""
    import submitit

    executor = submitit.AutoExecutor(folder=array.folder, cluster="slurm", **array.executor)
    waited = [job_of[p] for p in array.after], [job_of[p] for p in array.after_any]
    executor.update_parameters(**_with_dependency(array.parameters, *waited))
    paths = array.run_paths(plan.runs_dir)
    with _undone_if_refused(array.folder.parent, [p.root for pack in paths for p in pack]):
        _write_specs(array.runs, paths)
        jobs = _map_array(executor, array.packed, paths)
    held = {job.job_id: [run.run_id for run in pack] for job, pack in zip(jobs, array.packs, strict=True)}
    job_of |= {run_id: job for job, run_ids in held.items() for run_id in run_ids}
    return _recorded(array, plan.profile.name, held)


def _write_specs(runs: list[RunSpec], paths: list[list[RunPaths]]) -> None:
    for run, p in zip(runs, [p for pack in paths for p in pack], strict=True):
        p.root.mkdir(parents=True, exist_ok=True)
        write_spec(p.spec, run)


def _recorded(array: ArrayJob, cluster: str, held: dict[str, list[str]]) -> Submission:
    """The submission record in the sweep folder: job id -> its run (or, packed, its runs)."""
    tasks = {} if array.packed else {job: run_ids[0] for job, run_ids in held.items()}
    packs = held if array.packed else {}
    submission = Submission(cluster, utc_now(), asdict(array.shape), str(array.folder), tasks, packs)
    first = next(iter(held)).split("_")[0]
    sweep_dir = array.folder.parent.parent
    write_json_atomic(
        sweep_dir / SUBMISSIONS / f"{time.strftime('%Y%m%dT%H%M%S')}-{first}.json", asdict(submission)
    )
    return submission


def _with_dependency(
    parameters: dict[str, Any], parent_jobs: list[str], search_jobs: Collection[str] = ()
) -> dict[str, Any]:
    """Incremental tuning: the array starts only once every parent run's job has succeeded. Seeds
    after a search: only once every search job of their cells has ended, however (`afterany`)."""
    if not parent_jobs and not search_jobs:
        return parameters
    kinds = [("afterok", parent_jobs), ("afterany", search_jobs)]
    extra = {
        **parameters["slurm_additional_parameters"],
        "dependency": ",".join(f"{kind}:" + ":".join(sorted(set(jobs))) for kind, jobs in kinds if jobs),
    }
    if parent_jobs:  # a failed parent: Slurm cancels the child at once, rather than leaving it pending
        extra["kill_on_invalid_dep"] = "yes"
    return parameters | {"slurm_additional_parameters": extra}


def _map_array(executor: Any, packed: bool, packs: list[list[RunPaths]]) -> list[Any]:
    """One array task per pack: RunTask for a single run, PackTask for k runs side by side."""
    if not packed:
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
        _remove_written(submitit_folder, before, new_runs)
        raise SchedulerError("sbatch", str(err) or stderr.getvalue()) from None
    sys.stderr.write(stderr.getvalue())  # on success, whatever submitit said is passed on


def _remove_written(submitit_folder: Path, before: set[Path] | None, new_runs: list[Path]) -> None:
    """What a refused submission wrote: submitit's new files (its folder too, if it made it) and run
    folders that did not exist before."""
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


def _live_jobs(sweep_dir: Path) -> dict[str, str]:
    """run_id -> job id of earlier submissions still pending or running: children submitted now wait
    for them."""
    jobs = jobs_by_run(read_submissions(sweep_dir))
    scheduler = query_states([job for held in jobs.values() for job, _ in held])
    if scheduler.errors:  # a child submitted without its parent's dependency would start too soon
        raise SchedulerUnavailable("; ".join(scheduler.errors))
    live = [(run_id, job) for run_id, held in jobs.items() for job, _ in held]
    return {run_id: job for run_id, job in live if scheduler.get(job) in LIVE_STATES}


def cancel_jobs(job_ids: list[str]) -> None:
    """scancel these jobs (children blocked by a failed parent, before they are submitted again).

    Best effort: a job that ended meanwhile needs no cancelling, and one that stays can never run.
    Not tried when slurmctld was silent earlier in this command (the submission then refuses).
    """
    if job_ids:
        scheduler_call(["scancel", *job_ids], [])


def _container_python(profile: ClusterProfile) -> str | None:
    if profile.container is None:
        return None
    from peftbench.launch.container import container_python

    return container_python(profile)
