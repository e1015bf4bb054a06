"""`peftbench fetch` brings BELLE's evaluation set from GitHub at the study's commit, checked by git
blob id and converted into the folder the catalog's BELLE tasks read.

No network: a real `http.server` in a thread serves a folder laid out as raw.githubusercontent.com
(`<owner>/<repo>/<commit>/<path>`), filled with the real upstream files vendored in
tests/fixtures/upstream/belle_eval: the whole eval_prompt.json at 0f856906 (its real blob id, the
pinned one) and 11 of the 1,000 lines of eval_set.json at fd6a876d (a slice, so its blob id is not the
pinned one: the tests that convert it pin the slice's own id, computed here, in place of the
study's; the CLI tests keep the study's and are refused).
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import peftbench.tools.pinned_files as pinned
from peftbench.plan.loading import load_sweep
from peftbench.tasks import TASK_CATALOG
from peftbench.tasks.sources import load_split
from peftbench.tools import belle_eval
from peftbench.tools.doctor import check_hf_cache
from peftbench.tools.fetch import fetch_sweep, missing_local_data
from tests.conftest import REPO, write_yaml

UPSTREAM = REPO / "tests" / "fixtures" / "upstream" / "belle_eval"
EVAL_SET, PROMPTS = pinned.BELLE_EVAL.upstream
SLICE = (UPSTREAM / "eval_set.json").read_bytes()
OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def belle_sweep(folder: Path, test_folder: str = "data/belle_eval") -> Path:
    """A sweep of one BELLE-like row: a package model, fixture training data, the common set as
    `test_source` (the catalog's folder by default): nothing from the hub."""
    fixture = REPO / "tests" / "fixtures" / "belle_instruct"
    task = {
        "name": "belle_trial",
        "type": "instruction",
        "source": {"files": {s: str(fixture / f"{s}.jsonl") for s in ("train", "validation", "test")}},
        "splits": {"train": "train", "validation": "validation", "test": "test"},
        "test_source": {"hub": test_folder},
        "text_columns": ["instruction", "input"],
        "target_column": "output",
        "category_column": "class",
        "metric": "rougeL",
        "language": "zh",
    }
    sweep = {"name": "belle-fetch", "models": ["smollm2-135m"], "tasks": [task], "methods": {"full": {}}}
    return write_yaml(folder / "belle-fetch.yaml", sweep)


def raw_mirror(root: Path, files: dict[pinned.PinnedFile, bytes]) -> Path:
    """A folder laid out as raw.githubusercontent.com: <owner>/<repo>/<commit>/<path>."""
    host = root / "raw.githubusercontent.com"
    for file, data in files.items():
        path = host / file.repository / file.commit / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@contextmanager
def served(folder: Path) -> Iterator[str]:
    """A real HTTP server on a free local port serving `folder`; yields the raw host's base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/raw.githubusercontent.com"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def slice_pinned(monkeypatch: pytest.MonkeyPatch) -> pinned.StudyFiles:
    """The shipped BELLE recipe with the eval set's blob id that of the vendored 11-line slice."""
    recipe = dataclasses.replace(
        pinned.BELLE_EVAL,
        upstream=(dataclasses.replace(EVAL_SET, blob=belle_eval.git_blob_id(SLICE)), PROMPTS),
    )
    monkeypatch.setattr(pinned, "STUDY_FILES", (recipe,))
    return recipe


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return raw_mirror(
        tmp_path / "mirror", {EVAL_SET: SLICE, PROMPTS: (UPSTREAM / "eval_prompt.json").read_bytes()}
    )


def test_the_pinned_files_are_the_studys_versions():
    """Commits and blob ids as LianjiaTech/BELLE's history has them (`git ls-tree fd6a876d
    eval/eval_set.json`, `git ls-tree 0f856906 eval/eval_prompt.json`); the vendored prompt file is
    the whole pinned blob."""
    assert (EVAL_SET.commit, EVAL_SET.path, EVAL_SET.blob) == (
        "fd6a876d3b16b4706ce5c87aab7524c7df12ba04",
        "eval/eval_set.json",
        "0f81196b96100084271b28ffa9fced0fb8557f37",
    )
    assert (PROMPTS.commit, PROMPTS.blob) == (
        "0f856906e5f28004cb4da318d9deac20e511fe72",
        "a98d7ca06ba626c4cff3effb0b6b2d29b39ac6c9",
    )
    assert belle_eval.git_blob_id((UPSTREAM / "eval_prompt.json").read_bytes()) == PROMPTS.blob
    assert EVAL_SET.url(pinned.DEFAULT_RAW_BASE) == (
        "https://raw.githubusercontent.com/LianjiaTech/BELLE/fd6a876d3b16b4706ce5c87aab7524c7df12ba04/"
        "eval/eval_set.json"
    )


def fetched_from_the_mirror(
    tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[str]]:
    """`fetch` of the one-row BELLE sweep, run in `tmp_path` against the served mirror: the folder
    it wrote and the lines it reported."""
    monkeypatch.chdir(tmp_path)
    runs = load_sweep(belle_sweep(tmp_path)).runs
    lines: list[str] = []
    with served(mirror) as base:
        monkeypatch.setenv(pinned.RAW_BASE_VARIABLE, base)
        outcome = fetch_sweep(runs, "belle-fetch.yaml", report=lines.append)
    assert outcome.problems == [], outcome.problems
    assert "BELLE's evaluation set and judge prompts: in data/belle_eval." in (outcome.summary or "")
    return tmp_path / "data" / "belle_eval", lines


def test_fetch_downloads_checks_and_converts_into_the_folder_the_catalog_reads(
    tmp_path: Path, mirror: Path, slice_pinned: pinned.StudyFiles, monkeypatch: pytest.MonkeyPatch
):
    folder, lines = fetched_from_the_mirror(tmp_path, mirror, monkeypatch)
    assert lines == ["fetching BELLE's evaluation set and judge prompts into data/belle_eval"]
    assert sorted(p.name for p in folder.iterdir()) == ["judge_prompts.yaml", "test.jsonl"]  # no temp file
    # Read as the catalog's BELLE rows read their test split (a local folder, the hub offline).
    test = load_split(TASK_CATALOG["belle_2m"], "test")
    upstream = belle_eval.read_items(SLICE.decode("utf-8"))
    assert test["instruction"] == [u["question"] for u in upstream]
    assert test["output"] == [u["std_answer"] for u in upstream]
    assert "closed qa" in test["class"] and not any("\xa0" in c for c in test["class"])
    assert (folder / "judge_prompts.yaml").read_text(encoding="utf-8") == belle_eval.judge_prompts_text(
        belle_eval.read_items((UPSTREAM / "eval_prompt.json").read_text(encoding="utf-8"))
    )


def test_fetch_writes_the_bytes_the_hand_conversion_script_writes(
    tmp_path: Path, mirror: Path, slice_pinned: pinned.StudyFiles, monkeypatch: pytest.MonkeyPatch
):
    folder, _ = fetched_from_the_mirror(tmp_path, mirror, monkeypatch)
    script = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "belle_eval_set.py"), str(UPSTREAM / "eval_set.json"),
         str(tmp_path / "by_hand"), "--prompts", str(UPSTREAM / "eval_prompt.json")],
        capture_output=True, text=True, check=True, env=os.environ | {"PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    assert "11 prompts in 10 classes" in script.stdout
    assert (tmp_path / "by_hand" / "test.jsonl").read_bytes() == (folder / "test.jsonl").read_bytes()
    by_hand = (tmp_path / "by_hand" / "judge_prompts.yaml").read_bytes()
    assert by_hand == (folder / "judge_prompts.yaml").read_bytes()


def test_a_second_fetch_finds_the_files_present_and_downloads_nothing(
    tmp_path: Path, slice_pinned: pinned.StudyFiles, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data" / "belle_eval"
    folder.mkdir(parents=True)
    for name in slice_pinned.outputs:
        (folder / name).write_text("already here\n", encoding="utf-8")
    monkeypatch.setenv(pinned.RAW_BASE_VARIABLE, "http://127.0.0.1:9")  # nothing answers there
    lines: list[str] = []
    outcome = fetch_sweep(load_sweep(belle_sweep(tmp_path)).runs, "belle-fetch.yaml", report=lines.append)
    assert outcome.problems == [] and lines == [
        "BELLE's evaluation set and judge prompts: present in data/belle_eval"
    ]
    assert (folder / "test.jsonl").read_text(encoding="utf-8") == "already here\n"


def test_a_file_whose_blob_id_is_not_the_pinned_one_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The shipped recipe (the study's blob ids) against the 11-line slice served as the full set."""
    monkeypatch.chdir(tmp_path)
    mirror = raw_mirror(
        tmp_path / "mirror", {EVAL_SET: SLICE, PROMPTS: (UPSTREAM / "eval_prompt.json").read_bytes()}
    )
    runs = load_sweep(belle_sweep(tmp_path)).runs
    with served(mirror) as base:
        monkeypatch.setenv(pinned.RAW_BASE_VARIABLE, base)
        outcome = fetch_sweep(runs, "belle-fetch.yaml", report=lambda line: None)
        [problem] = outcome.problems
        assert problem.splitlines()[0] == (
            f"eval/eval_set.json (LianjiaTech/BELLE at fd6a876d) from {EVAL_SET.url(base)}: git blob "
            f"{belle_eval.git_blob_id(SLICE)}, expected 0f81196b96100084271b28ffa9fced0fb8557f37; "
            "nothing written to data/belle_eval"
        )
    assert not (tmp_path / "data").exists()


def test_a_server_down_is_one_line_and_leaves_nothing_half_written(
    tmp_path: Path, slice_pinned: pinned.StudyFiles, mirror: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    runs = load_sweep(belle_sweep(tmp_path)).runs
    with served(mirror) as base:
        pass  # the server has stopped: its port no longer answers
    monkeypatch.setenv(pinned.RAW_BASE_VARIABLE, base)
    outcome = fetch_sweep(runs, "belle-fetch.yaml", report=lambda line: None)
    [problem] = outcome.problems
    assert len(problem.splitlines()) == 1, problem
    assert problem.startswith(
        f"cannot download eval/eval_set.json (LianjiaTech/BELLE at fd6a876d) from {EVAL_SET.url(base)} ("
    )
    assert "ConnectionRefusedError" in problem and problem.endswith("nothing written to data/belle_eval")
    assert not (tmp_path / "data").exists()
    # Only the second file missing upstream: the first is not written either.
    (mirror / "raw.githubusercontent.com" / PROMPTS.repository / PROMPTS.commit / PROMPTS.path).unlink()
    with served(mirror) as base:
        monkeypatch.setenv(pinned.RAW_BASE_VARIABLE, base)
        [problem] = fetch_sweep(runs, "belle-fetch.yaml", report=lambda line: None).problems
    assert "cannot download eval/eval_prompt.json" in problem and "(HTTP 404 " in problem
    assert not (tmp_path / "data").exists()


def study_check(runs: list) -> tuple[str, str]:
    """`doctor --sweep`'s finding on the sweep's study files: status and detail."""
    [study] = [c for c in check_hf_cache(runs) if c.name == "study files"]
    return study.status, study.detail


def test_check_and_doctor_report_the_files_missing_then_present(
    tmp_path: Path, slice_pinned: pinned.StudyFiles, mirror: Path, monkeypatch: pytest.MonkeyPatch
):
    """The folder wherever the sweep names it (here an absolute path): fetch fills it there."""
    folder = tmp_path / "shared" / "belle_eval"
    runs = load_sweep(belle_sweep(tmp_path, str(folder))).runs
    assert missing_local_data(runs) == []  # fetch can get it: not one the user must bring
    check = fetch_sweep(runs, "belle-fetch.yaml", check=True, report=lambda line: None)
    need = f"BELLE's evaluation set and judge prompts in {folder} (used by task belle_trial)"
    assert check.problems == [
        f"{need}: test.jsonl, judge_prompts.yaml missing; run `peftbench fetch belle-fetch.yaml` where "
        "GitHub (or PEFTBENCH_GITHUB_RAW) is reachable"
    ]
    assert study_check(runs) == (
        "fail",
        f"{need}: test.jsonl, judge_prompts.yaml missing (run `peftbench fetch` where GitHub is reachable)",
    )
    assert not folder.exists()  # --check downloads nothing
    with served(mirror) as base:
        monkeypatch.setenv(pinned.RAW_BASE_VARIABLE, base)
        assert fetch_sweep(runs, "belle-fetch.yaml", report=lambda line: None).problems == []
    assert fetch_sweep(runs, "belle-fetch.yaml", check=True, report=lambda line: None).problems == []
    assert study_check(runs) == ("ok", f"{need}: present")
    assert len((folder / "test.jsonl").read_text(encoding="utf-8").splitlines()) == 11


def test_cli_fetch_refuses_the_slice_as_the_studys_set_and_check_names_it(tmp_path: Path, mirror: Path):
    """The command as a user runs it, with the shipped recipe and a mirror given by the variable."""
    sweep = belle_sweep(tmp_path)
    environment = {k: v for k, v in os.environ.items() if k not in OFFLINE} | {"COLUMNS": "300"}
    command = [sys.executable, "-m", "peftbench", "fetch", str(sweep)]
    check = subprocess.run(
        [*command, "--check"], capture_output=True, text=True, cwd=tmp_path, env=environment
    )
    assert check.returncode == 1 and "Traceback" not in check.stderr
    assert "test.jsonl, judge_prompts.yaml missing" in check.stderr
    assert "0 hub item(s) needed" in check.stdout
    with served(mirror) as base:
        out = subprocess.run(
            command, capture_output=True, text=True, cwd=tmp_path,
            env=environment | {pinned.RAW_BASE_VARIABLE: base},
        )  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"expected {EVAL_SET.blob}; nothing written to data/belle_eval" in out.stderr
    assert not (tmp_path / "data").exists()


def test_check_on_the_study_sweep_names_belles_set_and_its_hub_items_not_the_child_runs_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """belle-instruct's FT(math) rows start from another run's model (`run:<id>`): built by that
    run, not a hub id (it used to reach huggingface_hub as one and end in a traceback)."""
    monkeypatch.chdir(tmp_path)
    runs = load_sweep(REPO / "configs" / "sweeps" / "belle-instruct.yaml").runs
    assert any(r.model.source.startswith("run:") for r in runs)
    outcome = fetch_sweep(runs, "belle-instruct.yaml", check=True, report=lambda line: None)
    study, *hub = outcome.problems  # the hub items, unless this machine's HF cache holds LLaMA and BELLE
    assert study.startswith(
        "BELLE's evaluation set and judge prompts in data/belle_eval (used by task belle_0.6m, task "
        "belle_2m, task belle_4m, task belle_math_0.25m): test.jsonl, judge_prompts.yaml missing"
    )
    assert not any("run:" in problem for problem in hub)
