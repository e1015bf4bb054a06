"""The `peftbench` command on the real demo sweep, shrunk: plan, run, table, resume, collect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from peftbench.plan.profiles import PACKAGED
from tests.conftest import REPO

LOCAL = str(PACKAGED / "local.yaml")  # by path, as a lab passes its own profile


def peftbench(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "peftbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=900,
    )


def test_dry_run_prints_the_plan(tiny_demo: Path, tmp_path: Path):
    out = peftbench("sweep", str(tiny_demo), "--cluster", LOCAL, "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "tiny-demo: 8 runs on 'local'" in out.stdout
    assert out.stdout.count("minilm-l6") == 8


def test_previews_and_refusals_create_no_folder(tiny_demo: Path, sweep_file, tmp_path: Path):
    """The local profile's run folder is runs/ under the working directory: none of these may create it."""
    work = tmp_path / "work"
    work.mkdir()
    for verb in ("status", "plan"):
        assert peftbench(verb, str(tiny_demo), "--cluster", LOCAL, cwd=work).returncode == 0
    assert peftbench("sweep", str(tiny_demo), "--cluster", LOCAL, "--dry-run", cwd=work).returncode == 0
    bad = sweep_file(
        {"name": "bad", "models": ["minilm-l6"], "tasks": ["movie_sentiment"], "methods": {"x": 1}}
    )
    assert peftbench("sweep", str(bad), "--cluster", LOCAL, cwd=work).returncode == 2
    assert list(work.iterdir()) == []


def test_bad_sweep_and_bad_cluster_fail_together_before_anything_runs(sweep_file, tmp_path: Path):
    bad = sweep_file(
        {
            "name": "bad",
            "models": ["minilm-l6"],
            "tasks": ["movie_sentiment"],
            "methods": {"lroa": {}},
        }
    )
    out = peftbench("sweep", str(bad), "--cluster", "arnes-typo", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 2
    assert "Unknown method 'lroa'" in out.stderr and "No profile for cluster 'arnes-typo'" in out.stderr
    assert "2 problems found" in out.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
@pytest.mark.beside_the_rest  # the suite's longest test: it evens out make test's two sessions
def test_the_demo_end_to_end_then_resume_then_collect(tiny_demo: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    out = peftbench("sweep", str(tiny_demo), "--cluster", "local", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stdout + out.stderr
    table = [line for line in out.stdout.splitlines() if line.startswith("| minilm-l6 |")]
    assert {line.split(" | ")[1] for line in table} == {"full", "lora", "bitfit", "prompt_tuning"}
    assert "movie_sentiment (accuracy)" in out.stdout and "tweet_sentiment (accuracy)" in out.stdout
    assert "| majority class |" in out.stdout  # chance per task, from the runs' majority_rate
    results = sorted((runs / "tiny-demo").glob("*/result.json"))
    assert len(results) == 8
    for name in ("results.parquet", "results.csv", "table.md"):
        assert (runs / "tiny-demo" / name).is_file()

    again = peftbench("sweep", str(tiny_demo), "--cluster", "local", "--runs-dir", str(runs))
    assert again.returncode == 0 and "8 of 8 runs already have a success result: skipped" in again.stdout
    assert [p.stat().st_mtime_ns for p in results] == [
        p.stat().st_mtime_ns for p in sorted((runs / "tiny-demo").glob("*/result.json"))
    ]

    collected = peftbench("collect", str(runs / "tiny-demo"))
    assert collected.returncode == 0 and "8 successful of 8 results" in collected.stdout


def test_collect_in_the_middle_of_a_sweep_says_what_has_no_result_yet(tmp_path: Path):
    from peftbench.core.paths import RunPaths
    from peftbench.core.results import write_result, write_spec
    from tests.test_results import make_result

    done = make_result()
    sweep_dir = tmp_path / done.spec.sweep
    write_result(RunPaths(sweep_dir / done.run_id).result, done)
    started = done.spec.model_copy(update={"seed": 5})  # started here, killed before its result
    write_spec(RunPaths(sweep_dir / started.run_id).spec, started)
    out = peftbench("collect", str(sweep_dir), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 successful of 1 results" in out.stdout
    assert "1 run(s) of the sweep have no result yet (1 no job record)" in out.stdout


@pytest.mark.parametrize("verb", ["sweep", "doctor", "fetch"])
def test_help_shows_no_value_type_after_a_flag(verb: str):
    out = peftbench(verb, "--help")
    assert out.returncode == 0, out.stderr
    assert "<bool>" not in out.stdout
    flag = {"sweep": "--dry-run", "doctor": "--require-gpu", "fetch": "--check"}[verb]
    assert flag in out.stdout and "--help" in out.stdout


def test_make_help_lists_every_target_in_one_aligned_column():
    import re
    import shutil

    if shutil.which("make") is None:
        pytest.skip("no make on PATH")
    out = subprocess.run(["make", "-s", "help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    documented = re.findall(r"^([a-z-]+):.*## ", (REPO / "Makefile").read_text(), flags=re.MULTILINE)
    assert [line.split()[1] for line in lines] == documented and "bench-engines" in documented
    columns = {re.match(r"  make \S+\s+", line).end() for line in lines}
    assert len(columns) == 1, lines  # every description starts in the same column


def table_rows(text: str, marker: str) -> list[list[str]]:
    """The cells of each row of a rendered table that holds `marker`."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if marker in line]


def test_plan_shows_each_runs_memory_and_refuses_what_does_not_fit(sweep_file, tmp_path: Path):
    import yaml
    from typer.testing import CliRunner

    from peftbench.cli import app

    vega = yaml.safe_load((PACKAGED / "vega.yaml").read_text())
    vega["slurm"]["gpu_types"]["a100"]["memory_gb"] = 1  # no run of a base model fits
    small = tmp_path / "small-gpus.yaml"
    small.write_text(yaml.safe_dump({**vega, "name": "small-gpus"}))
    sweep = sweep_file(
        {
            "name": "gpu",
            "models": ["xlm-roberta-base"],
            "tasks": ["movie_sentiment"],
            "methods": {"full": {"resources": {"gpus": 1}}, "lora": {"resources": {"gpus": 1}}},
        }
    )
    runs = ["--runs-dir", str(tmp_path / "runs")]
    fits = CliRunner().invoke(app, ["plan", str(sweep), "--cluster", "vega", *runs])
    assert fits.exit_code == 0, fits.output
    assert "gpu: GPU memory per GPU, estimated ('vega')" in fits.stdout
    memory, times = fits.stdout.split("gpu: time per run, estimated ('vega')")
    rows = table_rows(memory, "xlm-roberta-base")
    assert [(row[3], row[-1]) for row in rows] == [("full", "yes"), ("lora", "yes")]
    assert [(row[3], row[4]) for row in table_rows(times, "xlm-roberta-base")] == [
        ("full", "1× a100"),
        ("lora", "1× a100"),
    ]
    refused = CliRunner().invoke(app, ["plan", str(sweep), "--cluster", str(small), *runs])
    assert refused.exit_code == 2
    rows = table_rows(refused.stdout.split("time per run")[0], "xlm-roberta-base")
    assert [row[-1][:4] for row in rows] == ["no: ", "no: "]
    assert "2 run(s) do not fit their GPUs: `sweep` refuses to submit them." in refused.stderr
    assert not (tmp_path / "runs").exists()


def test_status_shows_each_run_in_its_state_then_the_totals(sweep_file, tmp_path: Path):
    from typer.testing import CliRunner

    from peftbench.cli import app
    from peftbench.core.paths import RunPaths
    from peftbench.core.results import write_result
    from peftbench.plan.loading import load_sweep
    from tests.test_results import make_result

    sweep = sweep_file(
        {
            "name": "s",
            "models": ["minilm-l6"],
            "tasks": ["movie_sentiment"],
            "methods": {"full": {}, "lora": {}},
        }
    )
    full, lora = load_sweep(sweep).runs
    for run, status in ((full, "success"), (lora, "failed")):
        result = make_result(status, error="ValueError: [bad]").model_copy(
            update={"spec": run, "run_id": run.run_id}
        )
        write_result(RunPaths(tmp_path / "runs" / "s" / run.run_id).result, result)
    runs = ["--cluster", LOCAL, "--runs-dir", str(tmp_path / "runs")]
    shown = CliRunner().invoke(app, ["status", str(sweep), *runs])
    assert shown.exit_code == 0, shown.output
    rows = table_rows(shown.stdout, "minilm-l6")
    assert [(row[0], row[3], row[5], row[-1]) for row in rows] == [
        (full.run_id, "full", "done", ""),
        (lora.run_id, "lora", "failed", "failed: ValueError: [bad]"),
    ]
    assert shown.stdout.splitlines()[-2] == "1 done, 1 failed"
    assert shown.stdout.splitlines()[-1].startswith("1/2 runs done; ")  # then spent and estimated GPU-hours
    grouped = CliRunner().invoke(app, ["status", str(sweep), "--by", "method", *runs])
    assert grouped.exit_code == 0 and "s: 2 runs by method" in grouped.stdout
    assert [
        row[:6] for row in table_rows(grouped.stdout, "│ full") + table_rows(grouped.stdout, "│ lora")
    ] == [
        ["full", "1", "", "", "", ""],
        ["lora", "", "", "", "", "1"],
    ]
