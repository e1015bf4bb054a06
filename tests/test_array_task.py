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


def test_a_job_out_of_requeues_reaches_the_run_as_out_of_time(monkeypatch: pytest.MonkeyPatch):
    """submitit's handler raises its own error when no requeue is left; the run sees core's OutOfTime
    (run_one makes it a `timeout` result). Another ending of the handler passes as it is."""
    import signal

    from submitit.core.utils import UncompletedJobError

    from peftbench.core.errors import OutOfTime
    from peftbench.launch.array_task import out_of_time_as_a_run_error
    from peftbench.run.one import failure_status

    said = ["Job not requeued because: timed-out too many times."]

    def submitits_handler(signum, frame):  # what submitit installs before the task's call
        raise UncompletedJobError(said[0])

    before = signal.signal(signal.SIGUSR2, submitits_handler)
    try:
        out_of_time_as_a_run_error()
        with pytest.raises(OutOfTime) as ended:
            signal.raise_signal(signal.SIGUSR2)
        assert failure_status(ended.value) == "timeout" and str(ended.value) == said[0]
        said[0] = "Job not requeued because: preempted and not checkpointable."
        with pytest.raises(UncompletedJobError):
            signal.raise_signal(signal.SIGUSR2)
    finally:
        signal.signal(signal.SIGUSR2, before)


def test_outside_a_submitit_job_the_signal_is_left_as_it_is():
    import signal

    from peftbench.launch.array_task import out_of_time_as_a_run_error

    before = signal.getsignal(signal.SIGUSR2)
    out_of_time_as_a_run_error()
    assert signal.getsignal(signal.SIGUSR2) == before
