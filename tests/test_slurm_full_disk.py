"""A full disk on the REAL localhost Slurm: the runs folder is a small tmpfs and a task fills it.

Its result says the one line (file system, what to free), `status` shows that line, nothing already
written is lost, and `resubmit` after freeing space trains the run to success. The tmpfs helpers are
tests/test_full_disk.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result, write_result
from peftbench.plan.sweep_plan import load_plan
from tests.test_full_disk import tmpfs
from tests.test_results import make_result
from tests.test_slurm import DEV, all_settled, make_sweep, peftbench, slurm_cluster, states_of, wait_until

pytestmark = pytest.mark.slurm
__all__ = ["slurm_cluster", "tmpfs"]  # fixtures: the cluster must be up; a small tmpfs


def test_a_task_that_fills_the_disk_fails_saying_so_and_resubmit_trains_it_once_freed(tmpfs, tmp_path: Path):
    disk = tmpfs("24m", name="runs")  # room for records and logs; not for the ~90 MB checkpoint
    sweep = make_sweep(tmp_path, "fulldisk", {"bitfit": {}, "lora": {}}, {"max_steps": 2})
    plan = load_plan(sweep, DEV, disk.path)
    filler, finished = sorted(plan.runs, key=lambda run: run.label != "bitfit")
    done = RunPaths.of(disk.path, finished).result  # a run an earlier sweep finished
    earlier = make_result("success").model_copy(update={"spec": finished, "run_id": finished.run_id})
    write_result(done, earlier)
    before = done.read_bytes()
    args = (str(sweep), "--cluster", DEV, "--runs-dir", "runs")

    out = peftbench("sweep", *args, cwd=tmp_path)
    assert "1 run(s) submitted in 1 array(s); 1 already done" in out.stdout
    wait_until("the task to fill the disk", lambda: all_settled(sweep, tmp_path), timeout=120, every=1)
    paths = RunPaths.of(disk.path, filler)
    result = read_result(paths.result)
    line = result.error.splitlines()[-1]
    named = RunPaths.of(Path("runs"), filler).root  # as the user gave it: `--runs-dir runs`
    assert result.status == "failed" and line.startswith(f"Cannot write {named}: the tmpfs file system")
    assert f"mounted at {disk.path}" in line and "`peftbench resubmit`" in line
    assert states_of(sweep, tmp_path)[filler.run_id].detail == f"failed: {line}"
    assert done.read_bytes() == before and not [p for p in disk.files() if p.endswith(".tmp")]

    disk.resize("256m")
    out = peftbench("resubmit", *args, cwd=tmp_path)
    assert "1 run(s) submitted in 1 array(s); 1 already done" in out.stdout
    wait_until("the run to train", lambda: all_settled(sweep, tmp_path), timeout=120, every=1)
    assert read_result(paths.result).status == "success" and paths.artifact.is_dir()
    assert done.read_bytes() == before
