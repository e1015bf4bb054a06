"""What an array task does before training: nothing for a run already done, nothing for a run
another live job is training. (The real jobs: tests/test_slurm_faults.py.)"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.results import write_result, write_spec
from peftbench.launch.array_task import ALREADY_DONE, TRAINED_ELSEWHERE, RunTask
from peftbench.launch.claims import Holder, read_holder
from tests.test_results import make_result


@pytest.fixture
def as_array_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "90")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")


def test_a_run_with_a_success_result_is_not_trained_again(tmp_path: Path, as_array_task, capfd):
    done = make_result()
    paths = RunPaths(tmp_path / done.run_id)
    write_spec(paths.spec, done.spec)
    write_result(paths.result, done)
    before = paths.result.read_bytes()
    assert RunTask()(str(paths.spec), str(paths.root)) == ALREADY_DONE
    assert paths.result.read_bytes() == before and not paths.claim.exists()
    assert ALREADY_DONE in capfd.readouterr().err


def test_a_run_another_live_job_trains_is_left_to_it(tmp_path: Path, as_array_task, capfd):
    spec = make_result().spec
    paths = RunPaths(tmp_path / spec.run_id)
    write_spec(paths.spec, spec)
    other = replace(Holder.me("array task"), slurm_job="88_0")  # alive: this very process, another job
    paths.claim.write_text(json.dumps(asdict(other)))
    assert RunTask()(str(paths.spec), str(paths.root)) == TRAINED_ELSEWHERE
    assert not paths.result.exists() and read_holder(paths.claim) == other
    err = capfd.readouterr().err
    assert TRAINED_ELSEWHERE in err and "Slurm job 88_0" in err and f"pid {os.getpid()}" in err


def test_a_packed_run_gets_its_energy_share_written_into_its_result(tmp_path: Path):
    from peftbench.core.results import read_result
    from peftbench.launch.array_task import _record_energy_share
    from peftbench.run.energy import PACKED_NOTE, SHARE_NOTE

    done = make_result()
    done = done.model_copy(update={"cost": done.cost.model_copy(update={"energy_note": PACKED_NOTE})})
    paths = RunPaths(tmp_path / done.run_id)
    write_result(paths.result, done)
    _record_energy_share(paths, 0.125)  # what the task's sampler shared out to this run's process
    after = read_result(paths.result)
    assert (after.cost.energy_wh, after.cost.energy_note) == (0.125, SHARE_NOTE)
    assert after.model_copy(update={"cost": done.cost}) == done  # nothing else changed
