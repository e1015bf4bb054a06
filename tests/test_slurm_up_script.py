"""The localhost clusters' start scripts on the REAL machine.

slurm/local_up.sh run again while the one-node cluster is busy must leave it alone: before the fix it
took a busy node (allocated, mixed) for a stopped cluster, started a second set of daemons and
overwrote the PID records that local_down.sh stops by, orphaning the running ones.

`make slurm-up-twonode` must work where it never ran: before the fix the script exported the
two-node cluster's SLURM_CONF before writing that file, sacctmgr retried on it for 60 s and the
script blamed munged and slurmdbd, which were running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_slurm import slurm_cluster, wait_until  # noqa: F401 (the fixture: the cluster must be up)

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[1]
PIDDIR = Path("/run/peftbench-slurm")


def records() -> dict[str, str]:
    return {p.name: p.read_text().strip() for p in sorted(PIDDIR.glob("*.pid"))}


def job_state(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip()


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
        # its own job running, not just the node busy: an earlier test's last job may still be ending
        wait_until("the job to run", lambda: job_state(job) == "RUNNING", 180, 0.5)
        assert node_state() in {"allocated", "mixed"}
        out = subprocess.run(
            ["bash", str(ROOT / "slurm" / "local_up.sh")], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert "already up" in out.stdout
        assert records() == before
        for pid in before.values():
            assert Path(f"/proc/{pid}").exists()
        assert job_state(job) == "RUNNING"  # the job was not lost to a restart
    finally:
        subprocess.run(["scancel", job], check=False)


TWO_NODE_CONF = Path("/etc/slurm-dev2/slurm.conf")
ONE_NODE_CONF = "/etc/slurm/slurm.conf"


def two_node_states() -> list[str]:
    """The two-node cluster's node states (none when its conf is missing or its controller is down)."""
    if not TWO_NODE_CONF.is_file():
        return []
    env = {**os.environ, "SLURM_CONF": str(TWO_NODE_CONF)}
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, env=env, timeout=30
    )
    return sorted(out.stdout.split("\n")[:-1]) if out.returncode == 0 else []


def as_if_it_never_ran() -> None:
    """The two-node cluster down, and what its start wrote gone: conf, node spools, PID records,
    namespaces, and its cluster record in the shared slurmdbd.

    The controller's saved state stays: it holds the next job id. slurmdbd keeps a deleted cluster's
    jobs and shows them again once the cluster is added back, so fresh ids would collide with them.
    """
    down = subprocess.run(
        ["bash", str(ROOT / "slurm" / "local_down_2node.sh")], capture_output=True, text=True
    )
    assert down.returncode == 0, down.stderr
    for folder in [
        TWO_NODE_CONF.parent,
        Path("/run/peftbench-slurm2"),
        *Path("/var/spool").glob("slurmd-dev2-*"),
    ]:
        shutil.rmtree(folder, ignore_errors=True)
    deleted = subprocess.run(
        ["sacctmgr", "-i", "delete", "cluster", "dev2cluster"],
        capture_output=True,
        text=True,
        env={**os.environ, "SLURM_CONF": ONE_NODE_CONF},
        timeout=60,
    )
    assert deleted.returncode == 0, deleted.stderr


def test_the_two_node_cluster_starts_where_it_never_ran_and_leaves_the_one_node_cluster_alone():
    if os.geteuid() != 0:
        pytest.skip("slurm/local_up_2node.sh needs root")
    found = two_node_states()
    was_up = len(found) == 2
    if was_up and found != ["node1 idle", "node2 idle"]:
        pytest.skip(f"the two-node cluster is busy ({found}): not taken down under its jobs")
    if not was_up and os.environ.get("PEFTBENCH_REQUIRE_TWO_NODES") != "1":
        pytest.skip(
            "the two-node cluster is not up here (network namespaces?): "
            "PEFTBENCH_REQUIRE_TWO_NODES=1 runs this test"
        )
    one_node = records()
    one_node_env = {**os.environ, "SLURM_CONF": ONE_NODE_CONF}
    as_if_it_never_ran()
    try:
        assert two_node_states() == [] and not TWO_NODE_CONF.exists()
        clusters = ["sacctmgr", "-n", "-P", "list", "cluster", "format=cluster"]
        listed = subprocess.run(clusters, capture_output=True, text=True, env=one_node_env, timeout=60)
        assert "dev2cluster" not in listed.stdout.split()
        started = time.monotonic()
        up = subprocess.run(
            ["make", "-C", str(ROOT), "slurm-up-twonode"], capture_output=True, text=True, timeout=120
        )
        seconds = time.monotonic() - started
        assert up.returncode == 0, up.stdout + up.stderr
        assert "slurm dev2: up (node1 idle node2 idle" in up.stdout, up.stdout
        assert seconds < 40, seconds  # no 60 s of sacctmgr retrying on a conf not written yet
        assert two_node_states() == ["node1 idle", "node2 idle"]
        env = {**os.environ, "SLURM_CONF": str(TWO_NODE_CONF)}
        hosts = subprocess.run(
            ["srun", "-N", "2", "-n", "2", "-t", "1", "hostname"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert sorted(hosts.stdout.split()) == ["node1", "node2"], hosts.stderr
        assert records() == one_node  # the one-node cluster's daemons, as they were
        assert (
            "dev2cluster" in subprocess.run(clusters, capture_output=True, text=True, env=one_node_env).stdout
        )
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, env=one_node_env)
        assert "UP" in ping.stdout
    finally:  # left as it was found: up (started again if the test failed half way), or down
        script = "local_up_2node.sh" if was_up else "local_down_2node.sh"
        if was_up != (len(two_node_states()) == 2):
            subprocess.run(["bash", str(ROOT / "slurm" / script)], capture_output=True, timeout=120)
