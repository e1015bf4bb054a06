"""What each Slurm array task executes: the one place the launcher calls the run."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from peftbench.core.errors import OutOfTime
from peftbench.core.paths import RunPaths
from peftbench.core.results import (
    Cost,
    RunResult,
    has_final_result,
    read_result,
    read_spec,
    utc_now,
    write_result,
    write_spec,
)
from peftbench.core.search import NoWinnerYet, no_winner_result, resolve_run
from peftbench.core.spec import RunSpec
from peftbench.launch.claims import Claim, ClaimHeld
from peftbench.launch.run_pool import Ended, ForkPool

ALREADY_DONE = "success (already done: not trained again)"
TRAINED_ELSEWHERE = "skipped (another job is training this run)"


class RunTask:
    """What each array task executes: run_one on a spec file. Checkpointable: on timeout or
    preemption submitit calls `checkpoint`, requeues the same call, and run_one resumes from the
    Trainer's last checkpoint in the run folder.

    Idempotent: a run that already has a success result is not trained again, and a run claimed
    by another live job (a duplicate submission) is left to it; the claim file (`RunPaths.claim`)
    is the run's for as long as this task trains it.

    A distributed run is one Slurm job with a task per GPU (over all its nodes): every task runs
    this same call, with the torch.distributed variables (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) exported from submitit's job environment; the Trainer's engine does
    the rest, and rank 0 writes the result. The tasks of one job share the run's claim."""

    def __call__(self, spec_file: str, run_dir: str) -> str:
        import submitit

        from peftbench.run.one import run_one

        found = winner_or_itself(read_spec(Path(spec_file)), Path(run_dir))
        if found is None:
            why = "what it trains or starts from is not trained yet (its result.json says which)"
            return _said(f"{Path(run_dir).name}: failed: {why}", "failed")
        spec, paths = found
        if has_final_result(paths):
            return _said(f"{paths.root.name}: {ALREADY_DONE}", ALREADY_DONE)
        try:
            claim = Claim(paths.claim, f"array task {paths.root.name}", per_job=True).acquire()
        except ClaimHeld as held:
            return _said(f"{paths.root.name}: {TRAINED_ELSEWHERE}: {held}", TRAINED_ELSEWHERE)
        try:
            for line in claim.broken:
                _said(line, "")
            if has_final_result(paths):  # finished by the holder we waited out
                return ALREADY_DONE
            threads_of_allocation()
            out_of_time_as_a_run_error()
            if submitit.JobEnvironment().num_tasks > 1:
                # Every GPU of the node stays visible; each process takes cuda:LOCAL_RANK.
                submitit.helpers.TorchDistributedEnvironment().export(
                    set_cuda_visible_devices=False, overwrite=True
                )
            return run_one(spec, paths.root).status
        finally:
            claim.release()

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _said(line: str, outcome: str) -> str:
    """Tell the task's log (submitit's stderr file) why it did what it did."""
    print(f"[peftbench] {line}", file=sys.stderr, flush=True)
    return outcome


class PackTask:
    """What a packed array task executes: k runs side by side, one forked process each
    (`resources.runs_per_gpu`, docs/packing.md).

    Before forking it imports the training stack once and loads each distinct tokenizer and
    tokenized data set once (`run.one.preload`); every run process starts with them. Per run it does
    what RunTask does (skip a run already done, leave one another live job trains, hold the run's
    claim while its process trains it), and each run keeps its own result.json, its own log
    (`log.txt` in its folder: the process's stdout and stderr), its own peak memory and its own claim.

    A run whose process dies without a result (killed, out of host memory) gets one from here, with
    status `killed` or `failed` and why; its neighbours go on, and `resubmit` submits it alone. On a
    GPU with NVML the task samples the GPU's energy and each process's utilisation and writes each
    run's share into its result (run/energy.py: an estimate, and the note says so).
    """

    def __call__(self, spec_files: list[str], run_dirs: list[str]) -> list[str]:
        from peftbench.run import one  # the training stack, imported once for every run of the task

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its thread pool does not survive a fork
        runs = {spec.run_id: (spec, RunPaths(Path(d))) for spec, d in _specs(spec_files, run_dirs)}
        outcome: dict[str, str] = {}
        for run_id, (_, paths) in runs.items():
            if has_final_result(paths):
                outcome[run_id] = _said(f"{run_id}: {ALREADY_DONE}", ALREADY_DONE)
        todo = {run_id: run for run_id, run in runs.items() if run_id not in outcome}
        if todo:
            one.preload([s for s, _ in todo.values()], [p.root for _, p in todo.values()])
            _said(f"packed task: {len(todo)} run(s) side by side, imports and data loaded once", "")
            outcome |= _train_side_by_side(todo, one.run_one)
        return [outcome.get(run_id, "") for run_id in runs]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _specs(spec_files: list[str], run_dirs: list[str]) -> list[tuple[RunSpec, str]]:
    """Each run of a packed task, a run that trains its cell's winner as that run (`winner_or_itself`)."""
    found = (winner_or_itself(read_spec(Path(f)), Path(d)) for f, d in zip(spec_files, run_dirs, strict=True))
    return [(spec, str(paths.root)) for spec, paths in (f for f in found if f is not None)]


def winner_or_itself(spec: RunSpec, run_dir: Path) -> tuple[RunSpec, RunPaths] | None:
    """The run an array task trains for `spec`: itself, or for a run that trains its cell's winner
    (core/search.py) that run, in its own folder with its spec written there, claimed as any run is.
    A child of a searched block gets the run it starts from recorded in its folder. None after leaving
    a failed result in the run's folder, while the cell it trains or starts from has no winner yet."""
    try:
        resolved = resolve_run(spec, run_dir.parent)
    except NoWinnerYet as err:
        write_result(RunPaths(run_dir).result, no_winner_result(spec, err))
        return None
    if resolved is spec:
        return spec, RunPaths(run_dir)
    RunPaths(run_dir).result.unlink(missing_ok=True)  # an earlier 'no winner yet' is history now
    paths = RunPaths(run_dir.parent / resolved.run_id)
    paths.root.mkdir(parents=True, exist_ok=True)
    write_spec(paths.spec, resolved)
    return resolved, paths


def _train_side_by_side(todo: dict[str, tuple[RunSpec, RunPaths]], run_one: Any) -> dict[str, str]:
    """The pool: a claim per run while its process trains, a result for a process that left none."""
    pool = ForkPool(len(todo))
    claims: dict[str, Claim] = {}
    outcome: dict[str, str] = {}
    pids: dict[int, str] = {}
    ended_runs: dict[str, Ended] = {}
    threads = max(1, len(os.sched_getaffinity(0)) // len(todo))

    def start(run_id: str) -> bool:
        paths = todo[run_id][1]
        try:
            claims[run_id] = Claim(paths.claim, f"packed array task {run_id}", per_job=True).acquire()
        except ClaimHeld as held:
            outcome[run_id] = _said(f"{run_id}: {TRAINED_ELSEWHERE}: {held}", TRAINED_ELSEWHERE)
            return False
        for line in claims[run_id].broken:
            _said(line, "")
        if has_final_result(paths):  # finished by the holder we waited out
            claims.pop(run_id).release()
            outcome[run_id] = ALREADY_DONE
            return False
        return True

    def forked(run_id: str, pid: int) -> None:
        pids[pid] = run_id
        _said(f"{run_id}: training in pid {pid}, log {todo[run_id][1].log}", "")
        if sampler is not None and len(pids) + len(outcome) == len(todo):
            sampler.start()  # after the last fork: no fork while its thread may hold NVML's locks

    def end(ended: Ended) -> None:
        spec, paths = todo[ended.key]
        outcome[ended.key] = _result_after(spec, paths, ended)
        ended_runs[ended.key] = ended
        claims.pop(ended.key).release()

    jobs = [(run_id, _child(spec, paths, threads, run_one)) for run_id, (spec, paths) in todo.items()]
    sampler = _energy_sampler(pool)  # not started yet
    try:
        pool.run(jobs, start, forked, end)
    finally:
        for claim in claims.values():
            claim.release()
        shares = sampler.stop() if sampler is not None else {}
    for pid, wh in shares.items():
        if pid in pids and pids[pid] in ended_runs:
            _record_energy_share(todo[pids[pid]][1], wh)
    return outcome


def threads_of_allocation() -> int | None:
    """torch's threads set to the CPUs Slurm gave this task (SLURM_CPUS_PER_TASK); None where it
    gave no count or the user set OMP_NUM_THREADS (theirs wins).

    Left alone, torch starts a thread per core of the node whatever the allocation: on a node
    shared with other jobs (or with the other runs of a sweep), a 1-CPU task then runs as many
    threads as the node has cores and they fight over its one CPU. A packed task shares its CPUs
    out among its runs instead (`_child`)."""
    count = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if "OMP_NUM_THREADS" in os.environ or not count.isdigit() or int(count) < 1:
        return None
    from peftbench.run.cpu_threads import use_cpu_threads

    use_cpu_threads(int(count))
    return int(count)


def out_of_time_as_a_run_error() -> None:
    """When its requeues run out, submitit ends the job by raising its UncompletedJobError from its
    signal handler, inside whatever the task is running: the run's training. The run knows nothing
    of submitit, so that error reaches it as core's OutOfTime (a `timeout` result); any other
    error, and a requeue, pass as they are. Outside a submitit job (no handler) nothing changes."""
    import submitit
    from submitit.core.utils import UncompletedJobError

    signum = getattr(signal, f"SIG{submitit.JobEnvironment.USR_SIG}")
    handler = signal.getsignal(signum)
    if not callable(handler):
        return

    def on_warning(number: int, frame: FrameType | None) -> None:
        try:
            handler(number, frame)
        except UncompletedJobError as err:
            if "timed-out" not in str(err):
                raise
            raise OutOfTime(str(err)) from err

    signal.signal(signum, on_warning)


def _child(spec: RunSpec, paths: RunPaths, threads: int, run_one: Any) -> Any:
    def train() -> int:
        from peftbench.run.cpu_threads import use_cpu_threads
        from peftbench.run.energy import PACKED_ENV

        paths.root.mkdir(parents=True, exist_ok=True)
        log = os.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)  # less the umask
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ[PACKED_ENV] = "1"
        use_cpu_threads(threads)  # the task's cores, shared out: the runs do not fight over them
        print(f"[peftbench] packed run {spec.run_id} in pid {os.getpid()}", file=sys.stderr, flush=True)
        return 0 if run_one(spec, paths.root).status == "success" else 1

    return train


def _result_after(spec: RunSpec, paths: RunPaths, ended: Ended) -> str:
    """The run's status as its process left it; a result from here when it left none of this attempt."""
    try:
        result = read_result(paths.result)
        if paths.result.stat().st_mtime >= ended.started - 1:
            return result.status
    except Exception:  # none, or unreadable: the process died before (or while) writing it
        pass
    status = "killed" if ended.exit_code < 0 else "failed"
    started = _iso(ended.started)
    write_result(
        paths.result,
        RunResult(
            run_id=spec.run_id,
            status=status,
            spec=spec,
            error=f"Packed run ended without a result: {ended.why}.",
            cost=Cost(wall_seconds=ended.seconds),
            started_at=started,
            finished_at=utc_now(),
        ),
    )
    return _said(f"{spec.run_id}: {status}: {ended.why}", status)


def _iso(seconds: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _energy_sampler(pool: ForkPool) -> Any:
    """On a GPU with NVML: the sampler of the task's GPUs (not started); else None (the runs say why)."""
    from peftbench.run.energy import EnergyCounter, PackedEnergySampler, load_nvml

    if not os.environ.get("CUDA_VISIBLE_DEVICES", "").strip() and not Path("/dev/nvidia0").exists():
        return None  # a CPU node: no NVML to load
    nvml, _ = load_nvml()
    if nvml is None:
        return None
    try:
        counter = EnergyCounter.of_visible_gpus(nvml)
        counter.total_mj()  # raises on a GPU without the counter
        return PackedEnergySampler(counter, pool.alive_since_last)
    except Exception:  # no energy counter on this GPU: the runs' notes say there is none
        return None


def _record_energy_share(paths: RunPaths, wh: float) -> None:
    """Write a packed run's energy share into its result (atomically, like the result itself)."""
    from peftbench.run.energy import SHARE_NOTE

    result = read_result(paths.result)
    cost = result.cost or Cost(wall_seconds=0.0)
    cost = cost.model_copy(update={"energy_wh": wh, "energy_note": SHARE_NOTE})
    write_result(paths.result, result.model_copy(update={"cost": cost}))
