"""Sweeps on the REAL one-node Slurm cluster (slurm/local_up.sh): arrays, status, resubmit, requeue.

No sbatch/squeue/sacct is mocked. Every wait has a deadline, so a broken cluster fails the test
instead of hanging CI. Runs are real MiniLM trainings cut to a few steps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from peftbench.collect.merge import collect
from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result
from peftbench.launch.slurm_records import latest_jobs, read_submissions
from peftbench.launch.slurm_state import query_states, sweep_status
from peftbench.plan.profiles import PACKAGED
from peftbench.plan.sweep_plan import load_plan
from peftbench.run.one import run_one
from tests.conftest import require_slurm, write_yaml

pytestmark = pytest.mark.slurm
DEV = str(PACKAGED / "dev.yaml")
TRAINING = {
    "batch_size": 8,
    "max_train_samples": 64,
    "max_eval_samples": 16,
    "max_length": 64,
    "eval_strategy": "no",
}
RESOURCES = {"cpus": 1, "mem_gb": 2, "time_min": 10}


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> None:
    """The localhost cluster must be up; in CI (PEFTBENCH_REQUIRE_SLURM=1) its absence is a failure."""
    require_slurm()


def wait_until(what: str, predicate: Callable[[], Any], timeout: float = 240, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for: {what}")


def peftbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "peftbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def make_sweep(tmp_path: Path, name: str, methods: dict, training: dict | None = None, **extra: Any) -> Path:
    data = {
        "name": name,
        "models": ["minilm-l6"],
        "tasks": ["movie_sentiment"],
        "methods": methods,
        "training": {**TRAINING, **(training or {})},
        "resources": RESOURCES,
        **extra,
    }
    return write_yaml(tmp_path / f"{name}.yaml", data)


def states_of(sweep: Path, tmp_path: Path) -> dict[str, Any]:
    plan = load_plan(sweep, DEV, tmp_path / "runs")
    return {s.run.run_id: s for s in sweep_status(plan.runs, plan.runs_dir)}


def all_settled(sweep: Path, tmp_path: Path) -> bool:
    return not any(s.state in {"pending", "running"} for s in states_of(sweep, tmp_path).values())


def submitit_process(**env: str) -> psutil.Process | None:
    """The python process of a submitit task whose Slurm environment has these values; not the srun
    that launched it (same command line, same environment)."""
    for proc in psutil.process_iter(["cmdline"]):
        try:
            command = proc.info["cmdline"] or []
            if "submitit.core._submit" not in command or not Path(command[0]).name.startswith("python"):
                continue
            found = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if all(found.get(key) == value for key, value in env.items()):
            return proc
    return None


def task_process(job_id: str) -> psutil.Process | None:
    """The python process running array task `job_id`."""
    array_job, _, task = job_id.partition("_")
    return submitit_process(SLURM_ARRAY_JOB_ID=array_job, SLURM_ARRAY_TASK_ID=task)


def test_array_cancel_kill_status_resubmit_collect(tmp_path: Path):
    sweep = make_sweep(
        tmp_path, "arr", {"bitfit": {"learning_rate": [1e-3, 1e-2]}}, {"max_steps": 100}, seeds=[0, 1]
    )
    out = peftbench("sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path)
    assert "4 run(s) submitted in 1 array(s)" in out.stdout
    sweep_dir = tmp_path / "runs" / "arr"
    [submission] = read_submissions(sweep_dir)
    assert len(submission.tasks) == 4 and all("_" in job for job in submission.tasks)

    again = peftbench("sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path)
    assert "Nothing to submit" in again.stdout
    assert len(read_submissions(sweep_dir)) == 1

    jobs = sorted(submission.tasks)
    to_cancel, to_kill = jobs[0], jobs[1]
    wait_until(
        "both first tasks RUNNING",
        lambda: all(query_states([j]).get(j) == "RUNNING" for j in (to_cancel, to_kill)),
    )

    def training(job: str) -> bool:
        return (sweep_dir / submission.tasks[job] / "progress.json").exists()

    # scancel is a SIGTERM, which submitit lets pass, and a SIGKILL KillWait (5 s) later: a run must
    # be far from its end when cancelled, or it ends and writes its result first and is rightly done
    # (seen in CI with 40 steps: ~8 steps/s on one free core). Cancelled at step 5 of 100 here.
    wait_until("the task to cancel to be training", lambda: training(to_cancel), every=0.5)
    subprocess.run(["scancel", to_cancel], check=True)
    wait_until("the task to kill to be training", lambda: training(to_kill), every=0.5)
    victim = wait_until("the task's python process", lambda: task_process(to_kill))
    victim.send_signal(signal.SIGKILL)

    wait_until("every task to finish", lambda: all_settled(sweep, tmp_path), timeout=300, every=2)
    states = states_of(sweep, tmp_path)
    broken = {run_id: s for run_id, s in states.items() if s.state != "done"}
    assert set(broken) == {submission.tasks[to_cancel], submission.tasks[to_kill]}
    assert broken[submission.tasks[to_cancel]].slurm_state == "CANCELLED"
    assert broken[submission.tasks[to_kill]].state in {"failed", "lost"}
    shown = peftbench("status", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path).stdout
    assert "CANCELLED" in shown and to_kill in shown and "2 done" in shown

    out = peftbench("resubmit", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path)
    assert "2 run(s) submitted in 1 array(s); 2 already done" in out.stdout
    second = read_submissions(sweep_dir)[-1]
    assert sorted(second.tasks.values()) == sorted(broken)
    wait_until("the resubmitted runs", lambda: all_settled(sweep, tmp_path), timeout=240, every=2)
    assert {s.state for s in states_of(sweep, tmp_path).values()} == {"done"}

    frame = collect([sweep_dir]).frame
    assert len(frame) == 4 and frame["run_id"].is_unique and set(frame["status"]) == {"success"}
    for run_id in submission.tasks.values():  # torch's threads as the task's 1 CPU, not the node's cores
        assert read_result(sweep_dir / run_id / "result.json").provenance.torch_threads == RESOURCES["cpus"]
    assert (
        "Nothing to submit"
        in peftbench("sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path).stdout
    )


def test_a_run_that_raises_is_failed_with_its_traceback(tmp_path: Path):
    broken_task = {
        "name": "broken",
        "source": {"bundled": "movie_sentiment"},
        "text_columns": ["nope"],
        "labels": ["negative", "positive"],
    }
    sweep = make_sweep(tmp_path, "raises", {"bitfit": {}}, {"max_steps": 2}, tasks=[broken_task])
    peftbench("sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path)
    wait_until("the task to end", lambda: all_settled(sweep, tmp_path), timeout=180, every=2)
    [state] = states_of(sweep, tmp_path).values()
    assert state.state == "failed" and "nope" in state.detail
    result = read_result(RunPaths.of(tmp_path / "runs", state.run).result)
    assert result.status == "failed" and "Traceback" in result.error
    shown = peftbench("status", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path).stdout
    assert "failed" in shown and "nope" in shown


def test_timeout_requeues_and_resumes_from_the_last_checkpoint(tmp_path: Path):
    import submitit

    sweep = make_sweep(
        tmp_path,
        "requeue",
        {"bitfit": {"learning_rate": 5e-3}},
        {"max_steps": 60, "checkpoint_steps": 10, "max_train_samples": 256},
    )
    peftbench("sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path)
    sweep_dir = tmp_path / "runs" / "requeue"
    [(job_id, submission)] = latest_jobs(read_submissions(sweep_dir)).values()
    run_dir = sweep_dir / submission.tasks[job_id]
    wait_until(
        "a checkpoint past step 10",
        lambda: (
            (run_dir / "checkpoints" / "checkpoint-10" / "trainer_state.json").exists()
            and read_step(run_dir) >= 15
        ),
        every=0.5,
    )
    submitit.SlurmJob(folder=submission.folder, job_id=job_id)._interrupt(timeout=True)
    wait_until("the requeued run's result", lambda: (run_dir / "result.json").exists(), timeout=300, every=2)
    result = read_result(run_dir / "result.json")
    assert result.status == "success", result.error
    assert result.resumed_from_step is not None and result.resumed_from_step >= 10

    uninterrupted = run_one(result.spec, tmp_path / "reference")
    assert uninterrupted.resumed_from_step is None
    assert result.test == pytest.approx(uninterrupted.test, abs=1e-6)
    assert result.validation == pytest.approx(uninterrupted.validation, abs=1e-6)


def read_step(run_dir: Path) -> int:
    import json

    try:
        return int(json.loads((run_dir / "progress.json").read_text())["step"])
    except (OSError, ValueError, KeyError):
        return 0


def _rank_lines(log_folder: Path) -> dict[int, dict]:
    """Each rank's logged test metrics, from the task logs of one distributed job."""
    found = {}
    for log in log_folder.glob("*_log.err"):
        for line in log.read_text(errors="replace").splitlines():
            head, _, metrics = line.partition(": test ")
            if "[peftbench] rank " in head and metrics:
                found[int(head.rsplit("rank ", 1)[1].split(" of ")[0])] = json.loads(metrics)
    return found


def test_two_process_ddp_fsdp_and_zero3_runs_agree_and_write_one_result(tmp_path: Path):
    """Two Slurm tasks on the one node, torch.distributed env from submitit, gloo on CPU."""
    from safetensors.torch import load_file

    methods = {
        "ddp_full": {"method": "full", "distributed": "ddp"},
        "fsdp_full": {"method": "full", "distributed": "fsdp"},
        "zero3_lora": {
            "method": "lora",
            "distributed": "zero3",
            "r": 8,
            "target_modules": ["query", "value"],
        },
    }
    sweep = make_sweep(
        tmp_path,
        "dist",
        methods,
        {"max_steps": 3, "max_eval_samples": 16, "learning_rate": 1e-3},
        resources={"cpus": 2, "mem_gb": 6, "time_min": 10, "tasks_per_node": 2},
    )
    peftbench("sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path)
    wait_until("the three distributed runs", lambda: all_settled(sweep, tmp_path), timeout=600, every=3)
    [submission] = read_submissions(tmp_path / "runs" / "dist")
    assert submission.shape["tasks_per_node"] == 2
    for job_id, run_id in submission.tasks.items():
        paths = RunPaths(tmp_path / "runs" / "dist" / run_id)
        result = read_result(paths.result)
        assert result.status == "success", result.error
        assert result.cost.world_size == 2 and result.cost.backend == result.spec.training.distributed
        assert 0.0 <= result.test["accuracy"] <= 1.0 and result.test["loss"] < 2.0  # not world-size scaled
        ranks = _rank_lines(tmp_path / submission.folder.replace("%j", job_id))  # folder: relative to cwd
        assert set(ranks) == {0, 1}, f"{run_id}: both ranks must log their test metrics"
        assert ranks[0] == ranks[1] == pytest.approx(result.test)
        assert sorted(p.name for p in paths.root.iterdir() if p.name.endswith(".json")) == [
            "progress.json",
            "result.json",
            "spec.json",
        ]
        if result.spec.method == "lora":  # ZeRO-3 shards every weight: the adapter must be gathered whole
            saved = load_file(str(paths.artifact / "adapter_model.safetensors"))
            assert saved and all(t.numel() > 0 for t in saved.values())
            assert sum(t.numel() for t in saved.values()) == result.cost.trainable_params


def test_a_child_run_waits_for_its_parent_and_starts_from_its_model(tmp_path: Path):
    """Incremental tuning on Slurm: the child's array depends (afterok) on the parent's job."""
    methods = {
        "full": {"max_steps": 2},
        "lora_after_full": {"method": "lora", "parent": {"method": "full", "task": "movie_sentiment"}},
    }
    sweep = make_sweep(tmp_path, "chain", methods, {"max_steps": 2})
    peftbench("sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs", cwd=tmp_path)
    parent_sub, child_sub = read_submissions(tmp_path / "runs" / "chain")
    [(parent_job, parent_id)] = parent_sub.tasks.items()
    [(child_job, child_id)] = child_sub.tasks.items()
    shown = subprocess.run(
        ["scontrol", "show", "job", child_job.split("_")[0]], capture_output=True, text=True
    )
    assert f"Dependency=afterok:{parent_job}" in shown.stdout  # the parent trains for ~30 s: still unmet
    wait_until("parent and child", lambda: all_settled(sweep, tmp_path), timeout=400, every=3)
    parent = read_result(RunPaths(tmp_path / "runs" / "chain" / parent_id).result)
    child = read_result(RunPaths(tmp_path / "runs" / "chain" / child_id).result)
    assert parent.status == child.status == "success", child.error
    assert child.spec.model.source == f"run:{parent_id}"
    assert parent.finished_at <= child.started_at
