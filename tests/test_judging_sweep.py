"""A whole sweep judged apart: runs on the localhost Slurm (or the local launcher) while no judge
server runs, every run a success; then a judge started and `peftbench judge`, then `collect`.

The judge is a real HTTP server on localhost speaking chat completions (tests/test_judge.py), a
stand-in for the judge model. The runs are real trainings of a tiny Llama on the BELLE fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peftbench.core.judge_settings import JudgeSettings
from peftbench.core.judging import JudgeIdentity, judged_run
from peftbench.core.results import read_result
from peftbench.plan.profiles import PACKAGED
from tests.conftest import require_slurm, write_yaml
from tests.test_generation import fixture_files
from tests.test_instruction import TAGGED_PROMPT, tagged_judge
from tests.test_judge import chat_server

REPO = Path(__file__).resolve().parents[1]
NOWHERE = "http://127.0.0.1:9/v1"  # nothing answers there while the runs run


def peftbench(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "COLUMNS": "250"}
    out = subprocess.run(
        [sys.executable, "-m", "peftbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=400,
    )
    assert out.returncode == code, out.stdout + out.stderr
    return out


def belle_sweep(tmp_path: Path, tiny_decoder: Path) -> Path:
    task = {
        "name": "belle_fixture",
        "type": "instruction",
        "source": {"files": fixture_files("belle_instruct")},
        "text_columns": ["instruction", "input"],
        "target_column": "output",
        "category_column": "class",
        "metric": "judge",
        "language": "zh",
        "judge": {"url": NOWHERE, "model": "stand-in", "prompt": TAGGED_PROMPT, "max_concurrent": 4},
    }
    data = {
        "name": "judged-apart",
        "models": [{"name": "tiny-llama", "source": str(tiny_decoder), "family": "llama"}],
        "tasks": [task],
        "methods": {"full": {}, "lora": {"r": 4}},
        "training": {
            "max_steps": 1,
            "batch_size": 4,
            "max_length": 64,
            "max_new_tokens": 4,
            "eval_strategy": "no",
        },
        "resources": {"cpus": 1, "mem_gb": 2, "time_min": 10},
    }
    return write_yaml(tmp_path / "judged-apart.yaml", data)


def wait_for_results(folder: Path, n: int, timeout: float = 400) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob("*/result.json"))
        if len(found) == n:
            return found
        time.sleep(2)
    pytest.fail(f"timed out waiting for {n} results in {folder}")


def generate_then_judge(tmp_path: Path, tiny_decoder: Path, cluster: str) -> None:
    sweep = belle_sweep(tmp_path, tiny_decoder)
    dry = peftbench(
        "sweep", str(sweep), "--cluster", cluster, "--runs-dir", "runs", "--dry-run", cwd=tmp_path
    )
    assert "peftbench judge runs/judged-apart" in dry.stdout + dry.stderr
    ran = peftbench("sweep", str(sweep), "--cluster", cluster, "--runs-dir", "runs", cwd=tmp_path)
    if cluster == "local":  # each run's line: no judge figure yet, and no NaN for one
        assert ran.stdout.count("test judge to be judged (`peftbench judge`)") == 2, ran.stdout
    folder = tmp_path / "runs" / "judged-apart"
    results = [read_result(p) for p in wait_for_results(folder, 2)]
    assert [r.status for r in results] == ["success", "success"], [r.error for r in results]
    assert all("judge" not in r.test and "rougeL" in r.test for r in results)

    with chat_server(tagged_judge) as server:
        judged = peftbench("judge", "runs/judged-apart", "--url", server.url, cwd=tmp_path)
        again = peftbench("judge", "runs/judged-apart", "--url", server.url, cwd=tmp_path)
        asked = len(server.requests)
    settings = JudgeSettings(url=server.url, model="stand-in", prompt=TAGGED_PROMPT)
    identity = JudgeIdentity.of(settings)
    assert asked == 2 * (8 + 8)
    assert f"judge {identity.label}: 2 run(s), 32 answer(s): 32 scored now, 0 before, 0 left" in judged.stdout
    assert "0 scored now, 32 before, 0 left" in again.stdout
    for result in results:
        assert judged_run(folder / result.run_id, identity, None).complete

    judge_file = write_yaml(tmp_path / "judge.yaml", {"judge": settings.model_dump(mode="json")})
    shown = peftbench("collect", "runs/judged-apart", "--judge", str(judge_file), cwd=tmp_path)
    assert "belle_fixture (judge)" in shown.stdout and "not yet judged" not in shown.stdout
    unjudged = peftbench("collect", "runs/judged-apart", cwd=tmp_path)  # the sweep's own judge: none yet
    assert "not yet judged by stand-in @ 127.0.0.1:9" in unjudged.stdout


@pytest.mark.slurm
def test_generate_on_slurm_then_judge(tmp_path: Path, tiny_decoder: Path):
    require_slurm()
    generate_then_judge(tmp_path, tiny_decoder, str(PACKAGED / "dev.yaml"))


@pytest.mark.slow
def test_generate_locally_then_judge(tmp_path: Path, tiny_decoder: Path):
    generate_then_judge(tmp_path, tiny_decoder, "local")
