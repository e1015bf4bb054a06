"""The local launcher: a process per run, skips finished runs, records killed ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
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


def test_a_signal_between_runs_stops_the_sweep_and_restores_the_handlers(tmp_path: Path):
    """A real SIGTERM to this process while the second of three runs executes: the third never starts."""
    runs = [demo_run("lora"), demo_run("bitfit"), demo_run("full")]
    seen = []

    def execute(spec, paths, on_progress):
        seen.append(spec.run_id)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises StopRequested here, long before this ends
        result = make_result().model_copy(update={"run_id": spec.run_id, "spec": spec})
        write_result(paths.result, result)
        return result

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    summary = run_local(runs, tmp_path, Console(quiet=True), execute)
    assert seen == [runs[0].run_id, runs[1].run_id]
    assert summary.stopped is not None and summary.stopped.signal_name == "SIGTERM"
    assert summary.ran == 2 and summary.not_started == 1
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    message = summary.stop_message(tmp_path / "demo")
    assert message.startswith("Stopped by SIGTERM: no run was in progress; 1 run(s) not started.")


def _launch(sweep: Path, runs: Path) -> subprocess.Popen:
    """`peftbench sweep` in its own process group, as a shell starts a foreground job."""
    command = [sys.executable, "-m", "peftbench", "sweep", str(sweep), "--runs-dir", str(runs)]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )


def _run_process(launcher: subprocess.Popen, timeout: float = 180) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(launcher.pid).children(recursive=True):
            if "run-one" in " ".join(child.cmdline()):
                return child
        assert launcher.poll() is None, launcher.communicate()
        time.sleep(0.2)
    raise AssertionError("no run's process started")


@pytest.mark.parametrize(
    ("signum", "status", "whom"),
    [(signal.SIGINT, "interrupted", "group"), (signal.SIGTERM, "killed", "launcher")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_stopped_sweep_says_so_records_the_run_and_status_and_collect_count_it(
    tiny_demo: Path, tmp_path: Path, signum: int, status: str, whom: str
):
    """Ctrl-C reaches the whole foreground group; `kill PID` reaches only the launcher, which must
    stop its run's process itself (no orphan keeps training)."""
    runs = tmp_path / "runs"
    launcher = _launch(tiny_demo, runs)
    victim = _run_process(launcher)
    time.sleep(2)
    if whom == "group":
        os.killpg(launcher.pid, signum)
    else:
        launcher.send_signal(signum)
    stdout, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode == 128 + signum, stdout + stderr
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    name = signal.Signals(signum).name
    assert lines[0].startswith(f"Stopped by {name}: run ") and f"recorded as '{status}'" in lines[0]
    assert "run(s) not started" in lines[0]
    run_id = lines[0].split("run ", 1)[1].split()[0]
    result = read_result(runs / "tiny-demo" / run_id / "result.json")
    assert result.status == status and f"launcher got {name}" in result.error

    shown = subprocess.run(
        [sys.executable, "-m", "peftbench", "status", str(tiny_demo), "--runs-dir", str(runs)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    counts, progress = shown.stdout.splitlines()[-2:]  # the states, then GPU-hours spent (plan/budget.py)
    assert f"1 {status}" in counts and progress.startswith("0/8 runs done; "), shown.stdout
    collected = subprocess.run(
        [sys.executable, "-m", "peftbench", "collect", str(runs / "tiny-demo")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr
    assert f"0 successful of 1 results (1 {status})" in collected.stdout


def test_the_log_of_a_run_is_plain_text_and_reads_as_a_story(tmp_path: Path):
    """transformers writes its LOAD REPORT heading in ANSI bold even into a file: log.txt must not keep
    it. Progress bars are off in a file (no "Map: 0%|" fragments); the run tells, in order, what it
    loaded, its logging steps and evaluations, its checkpoints, what it saved and its result."""
    spec = demo_run("bitfit", max_steps=12, eval_strategy="steps", eval_steps=6)
    result = run_in_subprocess(spec, RunPaths.of(tmp_path, spec))
    log = RunPaths.of(tmp_path, spec).log.read_text(encoding="utf-8")
    assert result.status == "success", result.error
    assert "LOAD REPORT" in log  # the line that carried the escape codes is there ...
    assert "\x1b" not in log  # ... without them
    for fragment in ("%|", "examples/s", "it/s]", "Generating train split", "Map:", "Loading weights"):
        assert fragment not in log, f"a progress bar's {fragment!r} in log.txt:\n{log}"
    assert "{'train_runtime'" not in log  # the Trainer's raw dicts are told in words instead
    story = [line[len("[peftbench] ") :] for line in log.splitlines() if line.startswith("[peftbench] ")]
    expected = [
        "data: train 48, validation 32, test 32 examples",
        f"model: loading {spec.model.name} from ",
        "method bitfit: ",
        "training: 12 steps",
        "step 6/12: validation accuracy ",
        "step 6/12: checkpoint saved in ",
        "step 10/12: ",  # the Trainer's logging step: loss, learning rate, gradient norm
        "step 12/12: validation accuracy ",
        "training done at step 12/12: ",
        "saved: the bitfit artifact in ",
        "result: success; validation accuracy ",
        "result: test accuracy ",
        "cost: ",
    ]
    told = iter(story)
    for start in expected:  # each in this order (other lines may come between)
        assert any(line.startswith(start) for line in told), f"{start!r} not in order:\n" + "\n".join(story)
    assert "loss" in next(line for line in story if line.startswith("step 10/12: "))


def test_plain_text_stream_strips_colour_and_cursor_codes():
    import io

    from peftbench.run.plain_text import PlainTextStream

    out = io.StringIO()
    stream = PlainTextStream(out)
    text = "\x1b[1mBertModel LOAD REPORT\x1b[0m from: x\n"
    assert stream.write(text) == len(text)  # what the caller handed over counts as written
    stream.writelines(["\x1b[1;36m1\x1b[0m done\x1b[2K\n"])
    assert out.getvalue() == "BertModel LOAD REPORT from: x\n1 done\n" and not stream.isatty()
