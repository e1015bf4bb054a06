"""slurm/local_up.sh run again while the REAL localhost cluster is busy: it must leave it alone.

Before the fix it took a busy node (allocated, mixed) for a stopped cluster, started a second set of
daemons and overwrote the PID records that local_down.sh stops by, orphaning the running ones.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.test_slurm import slurm_cluster, wait_until  # noqa: F401 (the fixture: the cluster must be up)

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[1]
PIDDIR = Path("/run/peftbench-slurm")


def records() -> dict[str, str]:
    return {p.name: p.read_text().strip() for p in sorted(PIDDIR.glob("*.pid"))}


def node_state() -> str:
    return subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.strip()


def test_starting_a_busy_cluster_again_keeps_its_daemons_and_their_pid_records():
    before = records()
    if not before:
        pytest.skip(f"this cluster was not started by slurm/local_up.sh (no PID records in {PIDDIR})")
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout.strip()
    job = subprocess.run(
        ["sbatch", "--parsable", "-c", cpus, "-o", "/dev/null", "--wrap", "sleep 60"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        wait_until("the node to be allocated", lambda: node_state() in {"allocated", "mixed"}, 60, 0.5)
        out = subprocess.run(
            ["bash", str(ROOT / "slurm" / "local_up.sh")], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert "already up" in out.stdout
        assert records() == before
        for pid in before.values():
            assert Path(f"/proc/{pid}").exists()
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True)
        assert state.stdout.strip() == "RUNNING"  # the job was not lost to a restart
    finally:
        subprocess.run(["scancel", job], check=False)
