"""The local launcher: a process per run, skips finished runs, records killed ones."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import psutil
from rich.console import Console

from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result, write_result
from peftbench.launch.local import run_in_subprocess, run_local
from tests.conftest import demo_run
from tests.test_results import make_result


def test_runs_with_a_success_result_are_skipped(tmp_path: Path):
    done, todo = demo_run("lora"), demo_run("bitfit")
    write_result(RunPaths.of(tmp_path, done).result, make_result())
    seen = []

    def execute(spec, paths, on_progress):
        seen.append(spec.run_id)
        result = make_result().model_copy(update={"run_id": spec.run_id, "spec": spec})
        write_result(paths.result, result)
        return result

    summary = run_local([done, todo], tmp_path, Console(quiet=True), execute)
    assert seen == [todo.run_id] and summary.skipped == 1 and summary.ran == 1 and not summary.failed


def test_a_run_killed_mid_training_leaves_a_killed_result_and_its_log(tmp_path: Path):
    spec = demo_run("full", max_train_samples=2000, max_steps=500)
    paths = RunPaths.of(tmp_path, spec)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run_in_subprocess(spec, paths)))
    worker.start()
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:
        for child in psutil.Process().children(recursive=True):
            if "run-one" in " ".join(child.cmdline()):
                victim = child
        time.sleep(0.2)
    assert victim is not None, "the run's process never started"
    time.sleep(3)
    victim.send_signal(signal.SIGKILL)
    worker.join(timeout=60)
    result = outcome["result"]
    assert result.status == "killed" and "SIGKILL" in result.error and str(paths.log) in result.error
    assert read_result(paths.result).status == "killed"
    assert paths.spec.is_file()
