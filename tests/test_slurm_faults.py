"""Faults on the REAL localhost Slurm: racing commands, duplicate jobs, a scheduler that does not
answer, a hung controller, a failed parent. Every run must be trained exactly once, whatever the
scheduler does.

Jobs that must stay pending are submitted held (`#SBATCH --hold`, from a copy of the dev profile)
and cancelled at the end. A failing `squeue`/`sacct` is a stand-in first on PATH (the fault to
inject); the real commands answer everything else. A hung controller is the real slurmctld stopped
(SIGSTOP), always continued at the end. No sbatch is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result
from peftbench.launch.array_task import ALREADY_DONE, TRAINED_ELSEWHERE
from peftbench.launch.slurm import submit_runs
from peftbench.launch.slurm_records import SUBMISSIONS, read_submissions
from peftbench.plan.sweep_plan import load_plan
from tests.test_slurm import DEV, all_settled, make_sweep, slurm_cluster, states_of, wait_until
from tests.test_slurm_state import failing_commands

pytestmark = pytest.mark.slurm
__all__ = ["slurm_cluster"]  # the module's autouse fixture: the cluster must be up


def cli(*args: str, cwd: Path, path_first: Path | None = None) -> subprocess.CompletedProcess:
    """`peftbench ...` in a fresh process; `path_first`: a folder of stand-ins put first on PATH."""
    env = {**os.environ, "COLUMNS": "250"}
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    command = [sys.executable, "-m", "peftbench", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300, env=env)


def held_profile(tmp_path: Path) -> str:
    """The dev profile whose jobs are submitted held: they stay PENDING until cancelled."""
    data = yaml.safe_load(Path(DEV).read_text())
    data["slurm"]["additional_parameters"] = {"hold": True}
    path = tmp_path / "dev-held.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def cancel_all(sweep_dir: Path) -> None:
    jobs = {job.split("_")[0] for sub in read_submissions(sweep_dir) for job in sub.tasks}
    if jobs:
        subprocess.run(["scancel", *sorted(jobs)], check=False)


def sacct_rows(job: str) -> str:
    return subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", job], capture_output=True, text=True
    ).stdout


def backdate_records(sweep_dir: Path, minutes: int = 10) -> None:
    """As if the submissions were made `minutes` ago: past the grace period for a fresh job."""
    then = (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat(timespec="seconds")
    for path in (sweep_dir / SUBMISSIONS).glob("*.json"):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "submitted_at": then}))


def test_two_sweeps_at_the_same_moment_submit_each_run_once(tmp_path: Path):
    sweep = make_sweep(tmp_path, "race", {"bitfit": {}}, {"max_steps": 2})
    command = [sys.executable, "-m", "peftbench", "sweep", str(sweep), "--cluster", DEV, "--runs-dir", "runs"]
    racers = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    said = sorted(p.communicate(timeout=300)[0] for p in racers)
    assert [p.returncode for p in racers] == [0, 0]
    assert "Nothing to submit" in said[0] and "1 run(s) submitted in 1 array(s)" in said[1]
    sweep_dir = tmp_path / "runs" / "race"
    [submission] = read_submissions(sweep_dir)
    assert len(submission.tasks) == 1 and not (sweep_dir / ".lock").exists()
    wait_until("the run", lambda: all_settled(sweep, tmp_path), timeout=300, every=2)
    assert {s.state for s in states_of(sweep, tmp_path).values()} == {"done"}


def test_a_run_submitted_twice_is_trained_once(tmp_path: Path):
    """Two jobs of one run (e.g. two checkouts of one project folder): one trains, one does not."""
    import submitit

    sweep = make_sweep(tmp_path, "twice", {"bitfit": {}}, {"max_steps": 4})
    plan = load_plan(sweep, DEV, tmp_path / "runs")
    first, second = (submit_runs(plan, plan.runs)[0] for _ in range(2))
    [run_id] = set(first.tasks.values()) | set(second.tasks.values())
    wait_until("both jobs", lambda: all_settled(sweep, tmp_path), timeout=300, every=2)
    outcomes = sorted(
        submitit.SlurmJob(folder=sub.folder, job_id=job).result()
        for sub in (first, second)
        for job in sub.tasks
    )
    assert outcomes[1] == "success" and outcomes[0] in {ALREADY_DONE, TRAINED_ELSEWHERE}, outcomes
    result = read_result(RunPaths(plan.sweep_dir / run_id).result)
    assert result.status == "success" and result.resumed_from_step is None
    assert not (plan.sweep_dir / run_id / ".claim").exists()


def test_a_failed_squeue_does_not_make_pending_runs_lost_or_submit_them_again(tmp_path: Path):
    profile = held_profile(tmp_path)
    sweep = make_sweep(tmp_path, "blind", {"bitfit": {"learning_rate": [1e-3, 1e-2]}}, {"max_steps": 2})
    sweep_dir = tmp_path / "runs" / "blind"
    args = (str(sweep), "--cluster", profile, "--runs-dir", "runs")
    try:
        assert "2 run(s) submitted in 1 array(s)" in cli("sweep", *args, cwd=tmp_path).stdout
        [job] = {j.split("_")[0] for j in read_submissions(sweep_dir)[0].tasks}
        wait_until("sacct to record the array", lambda: sacct_rows(job), timeout=120)
        backdate_records(sweep_dir)  # the two-minute grace for fresh jobs no longer applies
        collected = cli("collect", str(sweep_dir), cwd=tmp_path).stdout
        assert (
            "0 successful of 0 results" in collected
            and "2 run(s) of the sweep have no result yet (2 pending)" in collected
        )
        no_squeue, neither = tmp_path / "no-squeue", tmp_path / "neither"
        failing_commands(no_squeue, "squeue")
        failing_commands(neither, "squeue", "sacct")

        # squeue fails: sacct still lists the pending tasks, as `<job>_[0-1]`; status says whose word it is
        shown = cli("status", *args, cwd=tmp_path, path_first=no_squeue)
        assert "2 pending" in shown.stdout, shown.stdout
        assert shown.returncode == 3, shown.stderr
        [line] = shown.stderr.splitlines()
        assert line.startswith(
            "Scheduler not fully read — squeue: exit 1: squeue: error: slurm_load_jobs error: "
            "Unable to contact"
        )
        assert line.endswith("; shown instead: sacct's states, which can lag the queue by a few seconds")
        again = cli("resubmit", *args, cwd=tmp_path, path_first=no_squeue)
        assert again.returncode == 0 and "Nothing to submit" in again.stdout
        assert len(read_submissions(sweep_dir)) == 1

        # neither answers: unknown, with the command's error; nothing is submitted
        shown = cli("status", *args, cwd=tmp_path, path_first=neither)
        assert "2 unknown" in shown.stdout and "squeue: exit 1" in shown.stdout, shown.stdout
        assert shown.returncode == 3 and "shown instead: no job states" in shown.stderr, shown.stderr
        refused = cli("resubmit", *args, cwd=tmp_path, path_first=neither)
        assert refused.returncode == 1 and "Nothing submitted" in refused.stderr, refused.stderr
        assert "unknown" in refused.stderr and "Traceback" not in refused.stderr
        assert cli("sweep", *args, cwd=tmp_path, path_first=neither).returncode == 1
        assert len(read_submissions(sweep_dir)) == 1
    finally:
        cancel_all(sweep_dir)


CONTROLLER_PID = Path("/run/peftbench-slurm/slurmctld.pid")  # written by slurm/local_up.sh
SLURM_TIMEOUT_S = 10  # Slurm's MessageTimeout (its default; slurm/*.sh leave it): a client's wait


@pytest.fixture
def hung_controller() -> Iterator[Callable[[], None]]:
    """A function that stops the one-node cluster's slurmctld (SIGSTOP: it accepts connections and
    answers nothing, as a wedged controller does); it is always continued (SIGCONT) afterwards."""
    if not CONTROLLER_PID.is_file():
        pytest.skip(f"this cluster was not started by slurm/local_up.sh (no {CONTROLLER_PID})")
    pid = int(CONTROLLER_PID.read_text())
    try:
        yield lambda: os.kill(pid, signal.SIGSTOP)
    finally:
        os.kill(pid, signal.SIGCONT)
        wait_until("slurmctld to answer again", lambda: "UP" in scontrol_ping(), timeout=60, every=0.5)


def scontrol_ping() -> str:
    return subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30).stdout


def timed_cli(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = cli(*args, cwd=cwd)
    return done, time.monotonic() - started


def test_a_hung_controller_costs_one_timeout_per_command_and_the_command_says_so(
    tmp_path: Path, hung_controller: Callable[[], None]
):
    """`status` and `resubmit` each wait out Slurm's timeout once (not once per squeue, scancel or
    sbatch) and say that slurmctld did not answer; sacct, through slurmdbd, still answers."""
    profile = held_profile(tmp_path)
    sweep = make_sweep(tmp_path, "hung", {"bitfit": {"learning_rate": [1e-3, 1e-2]}}, {"max_steps": 2})
    sweep_dir = tmp_path / "runs" / "hung"
    args = (str(sweep), "--cluster", profile, "--runs-dir", "runs")
    plan = load_plan(sweep, profile, tmp_path / "runs")
    try:
        [submission] = submit_runs(plan, plan.runs)
        job = next(iter(submission.tasks)).split("_")[0]
        wait_until("sacct to record the array", lambda: sacct_rows(job), timeout=60)
        backdate_records(sweep_dir)
        # a third point in the grid: a run for `resubmit` to submit
        make_sweep(tmp_path, "hung", {"bitfit": {"learning_rate": [1e-3, 1e-2, 1e-1]}}, {"max_steps": 2})
        hung_controller()

        shown, seconds = timed_cli("status", *args, cwd=tmp_path)
        assert shown.returncode == 3, shown.stdout + shown.stderr
        states, progress = shown.stdout.splitlines()[-2:]  # the states, then GPU-hours (plan/budget.py)
        assert set(states.split(", ")) == {"2 pending", "1 unsubmitted"}, shown.stdout  # sacct's word
        assert progress.startswith("0/3 runs done; "), shown.stdout
        [line] = shown.stderr.splitlines()
        assert line.startswith("Scheduler not fully read — squeue: exit 1: ") and "timed out" in line, line
        assert " s; slurmctld is not asked again in this command); shown instead: sacct's states" in line
        assert SLURM_TIMEOUT_S <= seconds < 2 * SLURM_TIMEOUT_S, seconds

        # resubmit: squeue waits once; sbatch for the new run is not tried after it
        refused, seconds = timed_cli("resubmit", *args, cwd=tmp_path)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        said = " ".join(refused.stderr.split())
        assert said.startswith(
            "Nothing submitted — sbatch not tried: slurmctld did not answer squeue earlier in this command"
        ), said
        assert SLURM_TIMEOUT_S <= seconds < 2 * SLURM_TIMEOUT_S, seconds
        assert len(read_submissions(sweep_dir)) == 1
    finally:
        os.kill(int(CONTROLLER_PID.read_text()), signal.SIGCONT)  # before scancel, which needs it
        cancel_all(sweep_dir)


def test_children_of_a_failed_parent_are_blocked_and_resubmitted_after_it(tmp_path: Path):
    profile = held_profile(tmp_path)
    methods = {
        "full": {},
        "lora_after_full": {"method": "lora", "parent": {"method": "full", "task": "movie_sentiment"}},
    }
    sweep = make_sweep(tmp_path, "orphans", methods, {"max_steps": 2})
    sweep_dir = tmp_path / "runs" / "orphans"
    args = (str(sweep), "--cluster", profile, "--runs-dir", "runs")
    try:
        assert cli("sweep", *args, cwd=tmp_path).returncode == 0
        parent_sub, child_sub = read_submissions(sweep_dir)
        [(parent_job, parent_id)] = parent_sub.tasks.items()
        [child_id] = child_sub.tasks.values()
        subprocess.run(["scancel", parent_job], check=True)  # the parent fails

        def child_blocked():
            state = states_of(sweep, tmp_path)[child_id]
            return state.state == "blocked" and state.slurm_state == "CANCELLED" and state

        blocked = wait_until("Slurm to cancel the child (kill-on-invalid-dep)", child_blocked, timeout=120)
        assert blocked.detail == f"parent {parent_id} failed"
        shown = cli("status", *args, cwd=tmp_path).stdout
        assert f"parent {parent_id} failed" in shown and "1 blocked" in shown

        out = cli("resubmit", *args, cwd=tmp_path)
        assert "2 run(s) submitted in 2 array(s)" in out.stdout, out.stdout + out.stderr
        new_parent, new_child = read_submissions(sweep_dir)[2:]
        [(new_parent_job, _)] = new_parent.tasks.items()
        assert list(new_child.tasks.values()) == [child_id]
        job = subprocess.run(
            ["scontrol", "show", "job", next(iter(new_child.tasks)).split("_")[0]],
            capture_output=True,
            text=True,
        ).stdout
        assert f"Dependency=afterok:{new_parent_job}" in job
        assert {s.state for s in states_of(sweep, tmp_path).values()} == {"pending"}
    finally:
        cancel_all(sweep_dir)


def test_a_claim_from_another_host_whose_slurm_job_ended_is_stale_at_once(tmp_path: Path):
    """A task killed on another node leaves its claim; squeue no longer knows its job."""
    from dataclasses import asdict, replace

    from peftbench.launch.claims import Claim, ClaimHeld, Holder

    path = tmp_path / ".claim"
    ended = replace(Holder.me("array task"), host="node-17", pid=1, slurm_job="999999_0")
    path.write_text(json.dumps(asdict(ended)))
    with Claim(path, "array task") as claim:
        assert "its Slurm job 999999_0 has ended" in claim.broken[0]
    alive = replace(ended, slurm_job=None)  # no job to ask about, fresh heartbeat: alive
    path.write_text(json.dumps(asdict(alive)))
    with pytest.raises(ClaimHeld):
        Claim(path, "array task").acquire()
