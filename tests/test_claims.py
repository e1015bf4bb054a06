"""Claims made of plain files (peftbench.launch.claims): one holder, stale holders detected and broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from peftbench.launch.claims import STALE_AFTER_S, Claim, ClaimHeld, Holder, read_holder


def plant(path: Path, holder: Holder, age_s: float = 0.0) -> None:
    """A claim file as another process (or host) would have left it, `age_s` since its last heartbeat."""
    path.write_text(json.dumps(asdict(holder)))
    then = time.time() - age_s
    os.utime(path, (then, then))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_claim_is_refused_naming_the_holder_and_released_on_exit(tmp_path: Path):
    path = tmp_path / ".lock"
    with Claim(path, "peftbench sweep a.yaml") as first:
        assert read_holder(path) == first.holder
        with pytest.raises(ClaimHeld) as info:
            Claim(path, "peftbench sweep b.yaml").acquire()
        message = str(info.value)
        assert (
            str(path) in message and "peftbench sweep a.yaml" in message and f"pid {os.getpid()}" in message
        )
    assert not path.exists()
    taken = Claim(path, "peftbench sweep b.yaml").acquire()
    with taken:  # a claim already taken is entered as it is, not taken twice
        assert read_holder(path) == taken.holder
    assert not path.exists()


def test_a_waiting_claim_gets_it_when_the_holder_lets_go(tmp_path: Path):
    path = tmp_path / ".lock"
    first = Claim(path, "first").acquire()
    threading.Timer(0.5, first.release).start()
    started = time.monotonic()
    with Claim(path, "second", wait_s=10, poll_s=0.1) as second:
        assert 0.3 < time.monotonic() - started < 5 and read_holder(path).command == "second"
        assert second.broken == []


def test_a_dead_process_s_claim_on_this_host_is_broken_with_a_message(tmp_path: Path):
    path = tmp_path / ".lock"
    gone = replace(Holder.me("peftbench sweep s.yaml"), pid=dead_pid())
    plant(path, gone)
    with Claim(path, "peftbench resubmit s.yaml") as claim:
        [line] = claim.broken
        assert f"pid {gone.pid} no longer runs" in line and "peftbench sweep s.yaml" in line
        assert read_holder(path).pid == os.getpid()


def test_another_host_s_claim_is_stale_only_without_heartbeat(tmp_path: Path):
    path = tmp_path / ".lock"
    elsewhere = replace(Holder.me("task"), host="node-17", pid=1)
    plant(path, elsewhere, age_s=60)
    with pytest.raises(ClaimHeld, match="host node-17"):
        Claim(path, "me").acquire()
    plant(path, elsewhere, age_s=STALE_AFTER_S + 60)
    with Claim(path, "me") as claim:
        assert "no heartbeat from node-17" in claim.broken[0]


def test_tasks_of_one_slurm_job_share_its_claim(tmp_path: Path, monkeypatch):
    path = tmp_path / ".claim"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    rank0 = replace(Holder.me("rank 0"), pid=os.getppid())  # alive: another process of this node
    plant(path, rank0)
    with Claim(path, "rank 1", per_job=True) as claim:
        assert not claim.owned and claim.holder == rank0
    assert read_holder(path) == rank0  # only its maker removes it
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")  # another task: another run's worth of work
    with pytest.raises(ClaimHeld, match="Slurm job 77_3"):
        Claim(path, "task 4", per_job=True).acquire()


RACER = """
import sys, time
from peftbench.launch.claims import Claim, ClaimHeld
time.sleep(float(sys.argv[2]) - time.time())
try:
    Claim(sys.argv[1], "racer").acquire()  # held while the others try
    print("won", flush=True)
    time.sleep(1)
except ClaimHeld:
    print("lost")
"""


def test_of_many_processes_racing_exactly_one_wins(tmp_path: Path):
    start = str(time.time() + 1.5)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / ".lock"), start], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    said = sorted(p.communicate(timeout=60)[0].strip() for p in racers)
    assert said == ["lost"] * 5 + ["won"]
