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


def test_cancelling_a_blocked_packed_job_resubmits_the_runs_it_held_with_it():
    """Job 7_0 packs a blocked child (its parent failed) and a pending neighbour; 7_1 and 8 stay."""
    from peftbench.launch.slurm_state import RunState, blocked_jobs_and_their_runs

    spec = make_result().spec
    run = {name: spec.model_copy(update={"seed": i}) for i, name in enumerate("abcdef")}
    states = [
        RunState(run["a"], "blocked", "PENDING", "7_0", "parent x failed"),
        RunState(run["b"], "pending", "PENDING", "7_0"),  # packed beside it: ends with the job
        RunState(run["c"], "pending", "PENDING", "7_1"),  # another task of the array: untouched
        RunState(run["d"], "blocked", "CANCELLED", "8"),  # Slurm ended it already: nothing to cancel
        RunState(run["e"], "failed", "FAILED", "9"),
        RunState(run["f"], "running", "RUNNING", "10"),
    ]
    jobs, neighbours = blocked_jobs_and_their_runs(states)
    assert jobs == ["7_0"]
    assert neighbours == [run["b"]]  # a itself is resubmitted as blocked (needs_submission)
    assert [s.run for s in states if s.needs_submission] == [run["a"], run["d"], run["e"]]
