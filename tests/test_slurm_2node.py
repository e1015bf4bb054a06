"""Multi-node runs on the REAL two-node Slurm cluster on localhost (slurm/local_up_2node.sh).

node1 and node2 are two slurmd daemons, each in its own network namespace with its own address and
host name: a run's two processes meet only over the network (rendezvous at MASTER_ADDR=node1, gloo),
as on a real site. Nothing of Slurm or torch.distributed is mocked; runs are MiniLM cut to 2 steps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result
from peftbench.launch.slurm_records import read_submissions
from peftbench.launch.slurm_state import sweep_status
from peftbench.plan.profiles import PACKAGED
from peftbench.plan.sweep_plan import load_plan
from tests.test_slurm import make_sweep, peftbench, submitit_process, wait_until

pytestmark = pytest.mark.slurm
DEV2 = str(PACKAGED / "dev2.yaml")
DEV2_CONF = "/etc/slurm-dev2/slurm.conf"
ENGINES = {  # full fine-tuning under each engine: the same training, so the same metrics
    "ddp_full": {"method": "full", "distributed": "ddp"},
    "fsdp_full": {"method": "full", "distributed": "fsdp"},
    "zero3_full": {"method": "full", "distributed": "zero3"},
}
SHORT = {
    "max_steps": 2,
    "max_train_samples": 32,
    "max_eval_samples": 16,
    "max_length": 32,
    "learning_rate": 1e-3,
}
TWO_NODES = {"cpus": 1, "mem_gb": 2, "time_min": 10, "nodes": 2, "tasks_per_node": 1}
ONE_NODE = {"cpus": 2, "mem_gb": 2, "time_min": 10, "nodes": 1, "tasks_per_node": 2}


@pytest.fixture(autouse=True)
def two_node_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev2 cluster must be up (in CI, once it started, PEFTBENCH_REQUIRE_TWO_NODES=1: its absence is
    a failure).

    This process's own Slurm queries (sweep_status) go to it too, as the CLI's do (SLURM_CONF).
    """
    monkeypatch.setenv("SLURM_CONF", DEV2_CONF)
    try:
        nodes = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=20
        ).stdout.split("\n")
        up = (
            os.path.isfile(DEV2_CONF)
            and sum(
                line.split()[1].rstrip("*") in {"idle", "mixed", "allocated"}
                for line in nodes
                if line.strip()
            )
            == 2
        )
    except (OSError, subprocess.SubprocessError):
        up = False
    if not up:
        if os.environ.get("PEFTBENCH_REQUIRE_TWO_NODES") == "1":  # CI, once local_up_2node.sh succeeded
            pytest.fail("the two-node Slurm cluster is not up: start it with `bash slurm/local_up_2node.sh`")
        pytest.skip(
            "no two-node Slurm cluster here: `bash slurm/local_up_2node.sh` starts one (root, Debian)"
        )


def states(sweep: Path, tmp_path: Path) -> dict[str, str]:
    plan = load_plan(sweep, DEV2, tmp_path / "runs")
    return {s.run.run_id: s.state for s in sweep_status(plan.runs, plan.runs_dir)}


def settled(sweep: Path, tmp_path: Path) -> bool:
    return not any(state in {"pending", "running"} for state in states(sweep, tmp_path).values())


def test_two_node_ddp_fsdp_and_zero3_equal_one_node_and_write_once_on_rank_0(tmp_path: Path):
    """DDP, FSDP and ZeRO-3 with one process on each of two nodes, and the DDP run with both
    processes on one node: every two-node run's metrics equal the one-node run's (the same world of
    two, the same data split, the same step; only the wire between the ranks differs)."""
    two = make_sweep(tmp_path, "two-nodes", ENGINES, SHORT, resources=TWO_NODES)
    one = make_sweep(tmp_path, "one-node", {"ddp_full": ENGINES["ddp_full"]}, SHORT, resources=ONE_NODE)
    for sweep in (two, one):
        peftbench("sweep", str(sweep), "--cluster", DEV2, "--runs-dir", "runs", cwd=tmp_path)
    for sweep in (two, one):
        wait_until(f"the runs of {sweep.stem}", lambda s=sweep: settled(s, tmp_path), timeout=400, every=3)
    results = {}
    for sweep in (two, one):
        for run_id in read_submissions(tmp_path / "runs" / sweep.stem)[0].tasks.values():
            paths = RunPaths(tmp_path / "runs" / sweep.stem / run_id)
            result = read_result(paths.result)
            assert result.status == "success", result.error
            hosts = result.provenance.hosts
            assert result.cost.world_size == 2 and len(hosts) == 2 and set(hosts) <= {"node1", "node2"}
            assert len(set(hosts)) == (2 if sweep is two else 1), hosts
            # one result, one artifact, one prediction file: rank 0 alone writes
            assert sorted(p.name for p in paths.root.iterdir()) == [
                "artifact",
                "progress.json",
                "result.json",
                "spec.json",
                "test_predictions.jsonl",
            ]
            assert any(paths.artifact.glob("*.safetensors"))
            results[sweep.stem, result.spec.label] = result
    reference = results["one-node", "ddp_full"]
    for label in ENGINES:
        on_two = results["two-nodes", label]
        assert on_two.test == pytest.approx(reference.test, rel=1e-3, abs=1e-4), label
        assert on_two.validation == pytest.approx(reference.validation, rel=1e-3, abs=1e-4), label


def rank_process(job_id: str, rank: int) -> psutil.Process | None:
    """The python process of task `rank` of Slurm job `job_id`."""
    return submitit_process(SLURM_JOB_ID=job_id, SLURM_PROCID=str(rank))


def test_a_node_killed_mid_run_fails_the_run_and_resubmit_brings_it_to_success(tmp_path: Path):
    training = {**SHORT, "max_steps": 12, "checkpoint_steps": 4}  # killed at step 5 or later: resumes at 4
    sweep = make_sweep(
        tmp_path, "lose-a-node", {"ddp_full": ENGINES["ddp_full"]}, training, resources=TWO_NODES
    )
    peftbench("sweep", str(sweep), "--cluster", DEV2, "--runs-dir", "runs", cwd=tmp_path)
    [submission] = read_submissions(tmp_path / "runs" / "lose-a-node")
    [(job_id, run_id)] = submission.tasks.items()
    progress = tmp_path / "runs" / "lose-a-node" / run_id / "progress.json"
    wait_until("the run to be training", progress.exists, timeout=240, every=0.5)
    victim = wait_until("node2's process (rank 1)", lambda: rank_process(job_id, 1))
    assert victim.environ().get("SLURMD_NODENAME") == "node2"
    victim.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until("the run to end", lambda: settled(sweep, tmp_path), timeout=120, every=1)
    assert time.monotonic() - killed_at < TWO_NODES["time_min"] * 60  # ended, not hung
    assert set(states(sweep, tmp_path).values()) <= {"failed", "lost"}
    assert rank_process(job_id, 0) is None  # rank 0 did not stay behind, waiting for its peer

    out = peftbench("resubmit", str(sweep), "--cluster", DEV2, "--runs-dir", "runs", cwd=tmp_path)
    assert "1 run(s) submitted" in out.stdout
    wait_until("the resubmitted run", lambda: settled(sweep, tmp_path), timeout=300, every=2)
    result = read_result(RunPaths(tmp_path / "runs" / "lose-a-node" / run_id).result)
    assert result.status == "success", result.error
    assert result.provenance.hosts == ["node1", "node2"]
    assert result.resumed_from_step in (4, 8)  # from the last checkpoint before the kill, not from scratch
