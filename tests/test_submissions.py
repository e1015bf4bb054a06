"""Leaderboard files from synthetic test predictions: HuLU, SloBench (Slovene SuperGLUE, SI-NLI)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from peftbench.collect.leaderboards import LEADERBOARDS, task_for, write_submissions
from peftbench.collect.merge import collect, select_cells
from peftbench.core.paths import RunPaths
from peftbench.core.predictions import Prediction, predictions_path, write_predictions
from peftbench.core.results import write_result
from peftbench.core.spec import TaskSpec, TrainingSettings
from tests.test_results import make_result


def put_run(
    sweep: Path,
    task: str,
    labels: list[str],
    seed: int,
    val: float,
    predicted: list[int] | None,
    method: str = "lora",
    ids: bool = True,
    max_eval_samples: int | None = None,
) -> str:
    """A successful run of `task` whose test predictions are `predicted` (none written when None)."""
    base = make_result()
    spec = base.spec.model_copy(
        update={
            "task": TaskSpec(
                name=task, source=base.spec.task.source, text_columns=["sentence"], labels=labels
            ),
            "training": TrainingSettings.model_validate(
                base.spec.training.model_dump() | {"max_eval_samples": max_eval_samples}
            ),
            "seed": seed,
            "label": method,
            "method": method,  # part of the run id: each method its own run
        }
    )
    result = base.model_copy(
        update={
            "spec": spec,
            "run_id": spec.run_id,
            "validation": {"accuracy": val},
            "test": {"accuracy": 0.5},
        }
    )
    paths = RunPaths(sweep / spec.run_id)
    write_result(paths.result, result)
    if predicted is not None:
        rows = [Prediction(index=i, id=(100 + i) if ids else None, label=y) for i, y in enumerate(predicted)]
        write_predictions(predictions_path(paths.root), rows)
    return spec.run_id


def best_of(sweep: Path):
    return select_cells(collect([sweep]).frame).best


def test_hulu_files_use_the_seed_best_on_validation(tmp_path: Path):
    put_run(tmp_path, "hucola", ["unacceptable", "acceptable"], seed=0, val=0.70, predicted=[0, 0, 0])
    put_run(tmp_path, "hucola", ["unacceptable", "acceptable"], seed=1, val=0.90, predicted=[1, 0, 1])
    put_run(tmp_path, "movie_sentiment", ["negative", "positive"], seed=0, val=0.8, predicted=[1, 0])
    out = write_submissions(best_of(tmp_path), "hulu", tmp_path / "out", {"movie_sentiment": "sst"})
    assert out.problems == []
    folder = tmp_path / "out" / "minilm-l6--lora"
    assert sorted(p.name for p in out.written) == ["cola_predicted_labels.json", "sst_predicted_labels.json"]
    assert json.loads((folder / "cola_predicted_labels.json").read_text()) == [
        {"id": "0", "label": "1"},
        {"id": "1", "label": "0"},
        {"id": "2", "label": "1"},
    ]
    sst = json.loads((folder / "sst_predicted_labels.json").read_text())
    assert sst == [{"id": "0", "label": "positive"}, {"id": "1", "label": "negative"}]


def test_slobench_superglue_zip_and_what_it_lacks(tmp_path: Path):
    put_run(tmp_path, "slo_boolq", ["False", "True"], seed=0, val=0.8, predicted=[1, 0])
    put_run(tmp_path, "slo_rte", ["entailment", "not_entailment"], seed=0, val=0.8, predicted=[0, 1, 1])
    out = write_submissions(best_of(tmp_path), "slobench-superglue", tmp_path / "out")
    archive = tmp_path / "out" / "minilm-l6--lora" / "submission.zip"
    assert archive in out.written
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["BoolQ.jsonl", "RTE.jsonl"]  # at the root, nothing else
        boolq = [json.loads(line) for line in z.read("BoolQ.jsonl").decode().splitlines()]
        rte = [json.loads(line) for line in z.read("RTE.jsonl").decode().splitlines()]
    assert boolq == [{"idx": 100, "label": True}, {"idx": 101, "label": False}]
    assert rte[2] == {"idx": 102, "label": "not_entailment"}
    [problem] = out.problems
    assert "no CB, COPA, MultiRC, WSC" in problem and "rejects" in problem


def test_si_nli_is_one_label_per_line(tmp_path: Path):
    put_run(
        tmp_path, "si_nli", ["entailment", "neutral", "contradiction"], seed=0, val=0.8, predicted=[2, 0, 1]
    )
    out = write_submissions(best_of(tmp_path), "slobench-si-nli", tmp_path / "out")
    folder = tmp_path / "out" / "minilm-l6--lora"
    assert (folder / "submission.txt").read_text() == "contradiction\nentailment\nneutral\n"
    with zipfile.ZipFile(folder / "submission.zip") as z:
        assert z.namelist() == ["submission.txt"]
    assert out.problems == []


def test_every_reason_a_file_cannot_be_made_is_reported(tmp_path: Path):
    put_run(tmp_path, "slo_rte", ["yes", "no"], seed=0, val=0.8, predicted=[0], method="lora")  # bad names
    put_run(
        tmp_path, "slo_rte", ["entailment", "not_entailment"], seed=0, val=0.8, predicted=None, method="full"
    )
    put_run(tmp_path, "slo_rte", ["entailment", "not_entailment"], 0, 0.8, [0], method="bitfit", ids=False)
    put_run(tmp_path, "slo_rte", ["entailment", "not_entailment"], 0, 0.8, [0], "ia3", max_eval_samples=1)
    out = write_submissions(best_of(tmp_path), "slobench-superglue", tmp_path / "out")
    assert out.written == []
    text = "\n".join(out.problems)
    assert "label 'yes' is not one RTE accepts: entailment, not_entailment" in text
    assert "test_predictions.jsonl: No such file" in text
    assert "has no id; RTE matches predictions by the data's idx" in text
    assert "test was cut to max_eval_samples=1" in text


def test_tasks_map_by_alias_or_by_override_and_unknown_sweeps_say_so(tmp_path: Path):
    hulu = LEADERBOARDS["hulu"]
    assert task_for(hulu, "hucola", {}).key == "cola" and task_for(hulu, "HuCommitmentBank", {}).key == "cb"
    assert task_for(hulu, "cola", {}) is None  # English CoLA is not HuCoLA unless you say so
    assert task_for(hulu, "my_cola", {"my_cola": "cola"}).key == "cola"
    put_run(tmp_path, "movie_sentiment", ["negative", "positive"], seed=0, val=0.8, predicted=[1])
    out = write_submissions(best_of(tmp_path), "hulu", tmp_path / "out")
    assert out.written == [] and "no task of these results maps to it" in out.problems[0]
    assert "cola (hucola)" in out.problems[0] and "--task ours=theirs" in out.problems[0]
