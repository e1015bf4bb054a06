"""Packed array tasks on the REAL localhost Slurm (resources.runs_per_gpu, launch/array_task.PackTask).

k=2 runs go to one array task and train side by side; one of them is killed mid-way (SIGKILL to its
own process, as the OOM killer would); its neighbour finishes, equal to the same run unpacked; the
killed run shows as killed and is resubmitted alone. No sbatch/squeue/sacct is mocked.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
import torch

from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result
from peftbench.launch.slurm import submit_runs
from peftbench.launch.slurm_records import read_submissions
from peftbench.plan.sweep_plan import load_plan
from peftbench.run.one import run_one
from tests.test_slurm import DEV, make_sweep, peftbench, slurm_cluster, states_of, wait_until

pytestmark = pytest.mark.slurm
__all__ = ["slurm_cluster"]  # the module's autouse fixture: the cluster must be up

TINY = {"max_steps": 2, "max_train_samples": 16, "max_eval_samples": 8, "max_length": 32}
PACKED = {"cpus": 2, "mem_gb": 2, "time_min": 10, "runs_per_gpu": 2}


def pid_in_log(paths: RunPaths) -> int | None:
    """The pid a packed task wrote at the top of the run's own log, once its process started."""
    found = re.search(r"packed run \w+ in pid (\d+)", paths.log.read_text()) if paths.log.exists() else None
    return int(found.group(1)) if found else None


def test_two_runs_share_one_task_a_killed_one_is_resubmitted_alone(tmp_path: Path):
    sweep = make_sweep(
        tmp_path, "packed", {"bitfit": {"learning_rate": [1e-3, 1e-2], "resources": PACKED}}, TINY
    )
    plan = load_plan(sweep, DEV, tmp_path / "runs")
    [first] = submit_runs(plan, plan.runs)
    [(job, pair)] = first.packs.items()
    assert not first.tasks and sorted(pair) == sorted(r.run_id for r in plan.runs)  # one task, k=2 runs
    kept, killed = (RunPaths(plan.sweep_dir / run_id) for run_id in pair)

    victim = wait_until("the second run's process", lambda: pid_in_log(killed), timeout=120, every=0.5)
    running = states_of(sweep, tmp_path)
    assert {running[r].job_id for r in pair} == {job}  # status: each packed run on its own line
    assert running[killed.root.name].detail == "packed: 2 of 2 runs of this task"
    os.kill(victim, signal.SIGKILL)
    wait_until("the killed run's result", lambda: killed.result.exists(), timeout=60, every=0.5)

    # Resubmitted at once, alone, while its neighbour may still be training in the packed task.
    said = peftbench("resubmit", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path).stdout
    assert "1 run(s) submitted in 1 array(s)" in said, said
    second = read_submissions(plan.sweep_dir)[-1]
    assert list(second.packs.values()) == [[killed.root.name]]
    was_killed = read_result(killed.result)  # before the resubmitted run replaces it
    assert was_killed.status == "killed" and "signal SIGKILL" in (was_killed.error or "")

    wait_until("both runs", lambda: {s.state for s in states_of(sweep, tmp_path).values()} == {"done"}, 240)
    packed = read_result(kept.result)
    assert packed.cost is not None and packed.cost.energy_wh is None
    assert packed.cost.energy_note == "no NVML: CPU run" and packed.cost.peak_rss_bytes > 0
    assert "reused from the packed task" in kept.log.read_text()

    spec = next(r for r in plan.runs if r.run_id == kept.root.name)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // 2))  # as each of the 2 packed processes
    try:
        alone = run_one(spec, tmp_path / "alone" / spec.run_id)
    finally:
        torch.set_num_threads(threads)
    assert alone.status == "success"
    assert (packed.validation, packed.test) == (alone.validation, alone.test)


def test_a_timed_out_packed_task_is_requeued_whole_and_each_run_resumes_from_its_checkpoint(tmp_path: Path):
    """The task's time runs out while both runs train: submitit requeues the task, and each run goes
    on from its own last checkpoint to a success (nothing trained from scratch, nothing lost)."""
    import submitit

    from peftbench.run.checkpoints import last_complete_checkpoint
    from tests.test_slurm import read_step

    training = {**TINY, "max_steps": 40, "checkpoint_steps": 5, "max_train_samples": 256}
    sweep = make_sweep(
        tmp_path, "packed-requeue", {"bitfit": {"learning_rate": [1e-3, 1e-2], "resources": PACKED}}, training
    )
    plan = load_plan(sweep, DEV, tmp_path / "runs")
    [submission] = submit_runs(plan, plan.runs)
    [(job, pair)] = submission.packs.items()
    runs = [plan.sweep_dir / run_id for run_id in pair]
    wait_until(
        "both runs past their first checkpoint",
        lambda: all(
            last_complete_checkpoint(run / "checkpoints") is not None and read_step(run) >= 8 for run in runs
        ),
        every=0.5,
    )
    submitit.SlurmJob(folder=submission.folder, job_id=job)._interrupt(timeout=True)
    wait_until(
        "both runs' results after the requeue",
        lambda: {s.state for s in states_of(sweep, tmp_path).values()} == {"done"},
        timeout=300,
        every=2,
    )
    for run in runs:
        result = read_result(run / "result.json")
        assert result.status == "success", result.error
        assert result.resumed_from_step is not None and result.resumed_from_step >= 5
