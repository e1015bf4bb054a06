"""Our Slovene SuperGLUE submission scored by SloBENCH's own evaluation code, beside our own scores.

SloBENCH's scorer (github.com/clarinsi/slobench-eval-docker, evaluation_scripts/eval_question_answering/
qa_eval.py) is not vendored: give a checkout of that repository in `SLOBENCH_EVAL_DOCKER` and this
test imports its per-task functions from there (without it, the test is skipped and says why). The
same checkout ships real Slovene SuperGLUE rows in SuperGLUE's own schema (`qa_train.zip`,
`qa_validation.zip`: BoolQ 18, CB 56, COPA 100, RTE 29, WSC 104 validation rows), laid out here as
the catalog's folder (`data/slo_superglue/SuperGLUE-HumanT/json/<Task>/{train,val}.jsonl`) and read
through the catalog tasks, offline. MultiRC is left out: our export has no MultiRC (it says so), so
the scorer's six-task average is not computed; each task's own scorer function is.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from peftbench.collect.leaderboards import write_submissions
from peftbench.collect.merge import collect, select_cells
from peftbench.core.results import RunResult
from peftbench.run.one import run_one
from peftbench.tasks.catalog import SLO_SUPERGLUE
from tests.conftest import demo_run

QA = Path("evaluation_scripts") / "eval_question_answering"
TASKS = {"BoolQ": "slo_boolq", "CB": "slo_cb", "COPA": "slo_copa", "RTE": "slo_rte", "WSC": "slo_wsc"}


def checkout() -> Path:
    folder = os.environ.get("SLOBENCH_EVAL_DOCKER")
    if not folder or not (Path(folder) / QA / "qa_eval.py").is_file():
        pytest.skip("SLOBENCH_EVAL_DOCKER is not a checkout of clarinsi/slobench-eval-docker")
    return Path(folder)


def their_scorer(root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("slobench_qa_eval", root / QA / "qa_eval.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def lay_out(root: Path, data: Path) -> None:
    """SloBENCH's zips (<Task>.jsonl at the root) as the catalog's folders: <Task>/train.jsonl, val.jsonl."""
    for archive, split in (("qa_train.zip", "train"), ("qa_validation.zip", "val")):
        with zipfile.ZipFile(root / QA / archive) as z:
            for task in TASKS:
                folder = data / task
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{split}.jsonl").write_bytes(z.read(f"{task}.jsonl"))


def run_in(runs: Path, task: str) -> RunResult:
    spec = demo_run("lora", task, max_eval_samples=None, max_steps=2)
    result = run_one(spec, runs / spec.run_id)
    assert result.status == "success", result.error
    return result


@pytest.mark.slow  # five real runs evaluated on the whole validation sets: about 110 s on 2 CPU cores
def test_our_slobench_submission_scores_the_same_under_slobenchs_own_scorer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = checkout()
    scorer = their_scorer(root)
    monkeypatch.chdir(tmp_path)
    lay_out(root, tmp_path / SLO_SUPERGLUE)
    results = [run_in(tmp_path / "runs", task) for task in TASKS.values()]
    best = select_cells(collect([tmp_path / "runs"]).frame).best
    outcome = write_submissions(best, "slobench-superglue", tmp_path / "out")
    assert [p for p in outcome.problems if "MultiRC" not in p] == []
    [folder] = {p.parent for p in outcome.written}
    ours = {r.spec.task.name: r.test for r in results}
    reference = tmp_path / SLO_SUPERGLUE
    theirs = {b: getattr(scorer, b)(reference / b / "val.jsonl", folder / f"{b}.jsonl") for b in TASKS}
    theirs["CB"], theirs["CB F1"] = theirs["CB"]  # CB: accuracy and macro-F1
    ours_as_theirs = {b: ours[t]["accuracy"] for b, t in TASKS.items()} | {
        "CB F1": ours["slo_cb"]["f1_macro"]
    }
    assert theirs == pytest.approx(ours_as_theirs)
