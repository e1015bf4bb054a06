"""The Slurm state reader's own parts, without a cluster: array ids, failed queries, result files.

The `squeue`/`sacct` here are stand-ins first on PATH that fail: a fault to inject, which the real
cluster does not produce on demand (tests/test_slurm_faults.py runs the same faults on it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.results import write_result
from peftbench.launch.slurm_state import expand_job_ids, query_states, sweep_status
from tests.test_results import make_result


@pytest.mark.parametrize(
    ("field", "ids"),
    [
        ("30_[0-1%2]", ["30_0", "30_1"]),
        ("30_[0,3-5]", ["30_0", "30_3", "30_4", "30_5"]),
        ("30_[7]", ["30_7"]),
        ("30_4", ["30_4"]),
        ("31", ["31"]),
    ],
)
def test_compressed_array_ids_are_expanded(field: str, ids: list[str]):
    assert expand_job_ids(field) == ids


def failing_commands(folder: Path, *names: str, message: str = "slurm_load_jobs error: Unable to contact"):
    folder.mkdir(exist_ok=True)
    for name in names:
        script = folder / name
        script.write_text(f"#!/bin/sh\necho '{name}: error: {message}' >&2\nexit 1\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_a_failed_query_leaves_its_jobs_unknown_and_says_why(tmp_path: Path, monkeypatch):
    failing_commands(tmp_path / "bin", "squeue", "sacct")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    answer = query_states(["30_0", "30_1"])
    assert answer.states == {}
    assert answer.is_unknown("30_0") and answer.is_unknown("30_1")
    assert any(e.startswith("squeue: exit 1: squeue: error: slurm_load_jobs") for e in answer.errors)
    assert any(e.startswith("sacct: exit 1") for e in answer.errors)


def test_a_missing_scheduler_command_is_an_error_too(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no squeue, no sacct at all
    answer = query_states(["30_0"])
    assert answer.is_unknown("30_0") and len(answer.errors) == 2


def test_an_unreadable_result_is_said_so_and_is_not_done(tmp_path: Path):
    result = make_result()
    paths = RunPaths.of(tmp_path, result.spec)
    write_result(paths.result, result)
    paths.result.write_text('{"run_id": "cut sh')
    [state] = sweep_status([result.spec], tmp_path)
    assert state.state == "unreadable" and state.needs_submission
    assert state.detail.startswith(f"unreadable result: {paths.result}:") and "line 1" in state.detail


def test_a_query_that_hangs_is_cut_and_said_so(tmp_path: Path, monkeypatch):
    """slurmctld down: squeue hangs until its own timeout. Ours is shorter and says so."""
    import peftbench.launch.slurm_state as slurm_state

    hanging = tmp_path / "bin" / "squeue"
    hanging.parent.mkdir()
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    failing_commands(tmp_path / "bin", "sacct")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(slurm_state, "QUERY_TIMEOUT_S", 1)
    answer = query_states(["30_0"])
    assert answer.is_unknown("30_0") and "squeue: no answer in 1 s" in answer.errors


def test_every_scheduler_state_maps_to_one_of_ours_and_live_ones_are_pending_or_running():
    from peftbench.launch.slurm_state import LIVE_STATES, SLURM_STATES, STATES

    assert set(SLURM_STATES.values()) <= set(STATES)
    assert {SLURM_STATES[s] for s in LIVE_STATES} == {"pending", "running"}
    assert SLURM_STATES["PENDING"] == "pending" and SLURM_STATES["OUT_OF_MEMORY"] == "failed"
    assert "COMPLETED" not in SLURM_STATES  # a job that completed without a result is lost


def test_a_job_that_ended_without_a_result_is_failed_or_lost_as_the_scheduler_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """No result, a job sacct knows: the state table decides (and an old job with no row is lost)."""
    from peftbench.core.files import write_json_atomic
    from peftbench.launch.slurm_records import SUBMISSIONS

    runs = [make_result().spec.model_copy(update={"seed": i, "sweep": "s"}) for i in range(4)]
    answers = {"40_0": "OUT_OF_MEMORY", "40_1": "COMPLETED", "40_2": "RUNNING"}  # 40_3: no row
    lines = "\n".join(f"{job}|{state}" for job, state in answers.items())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, out in (("sacct", lines), ("squeue", "")):
        (bin_dir / name).write_text(f"#!/bin/sh\nprintf '{out}\\n'\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    record = {
        "cluster": "dev",
        "submitted_at": "2020-01-01T00:00:00+00:00",
        "shape": {},
        "folder": str(tmp_path / "s" / ".slurm" / "%j"),
        "tasks": {f"40_{i}": run.run_id for i, run in enumerate(runs)},
    }
    write_json_atomic(tmp_path / "s" / SUBMISSIONS / "1-40.json", record)
    states = [(s.state, s.slurm_state) for s in sweep_status(runs, tmp_path)]
    assert states == [
        ("failed", "OUT_OF_MEMORY"),
        ("lost", "COMPLETED"),
        ("running", "RUNNING"),
        ("lost", "no record"),
    ]
