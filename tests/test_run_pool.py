"""The fork pool of a packed task (launch/run_pool.py): k at a time, a dying job ends alone."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from peftbench.launch.run_pool import ForkPool

LOADED_BEFORE_THE_FORK = {"tokenizer": "loaded once"}  # what a child finds without loading it


def test_jobs_run_slots_at_a_time_and_a_killed_or_failing_one_ends_alone(tmp_path: Path):
    def write(name: str, code: int = 0, pause: float = 0.3):
        def job() -> int:
            time.sleep(pause)
            (tmp_path / name).write_text(f"{os.getpid()} {LOADED_BEFORE_THE_FORK['tokenizer']}")
            return code

        return job

    def killed() -> int:
        os.kill(os.getpid(), signal.SIGKILL)
        return 0

    def raises() -> int:
        raise RuntimeError("a failing run")

    started, most = [], [0]
    pool = ForkPool(slots=2, poll_s=0.05)

    def on_start(key: str) -> bool:
        started.append(key)
        most[0] = max(most[0], len(pool.running) + 1)
        return key != "skipped"

    jobs = [("a", write("a")), ("killed", killed), ("raises", raises), ("skipped", write("s"))]
    jobs.append(("b", write("b")))
    ended = {e.key: e for e in pool.run(jobs, on_start=on_start)}
    assert started == ["a", "killed", "raises", "skipped", "b"] and most[0] == 2
    assert ended.keys() == {"a", "killed", "raises", "b"}  # "skipped" never forked
    assert ended["a"].exit_code == ended["b"].exit_code == 0
    assert ended["killed"].exit_code == -signal.SIGKILL and "signal SIGKILL" in ended["killed"].why
    assert ended["raises"].exit_code == 1 and "exited with status 1" in ended["raises"].why
    for name in ("a", "b"):  # each in its own process, with what the parent had loaded
        pid, said = (tmp_path / name).read_text().split(" ", 1)
        assert int(pid) == ended[name].pid != os.getpid() and said == "loaded once"
    assert not (tmp_path / "s").exists() and not pool.running
