"""run_one end to end on real data, and what it leaves on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from peftbench.core.paths import RunPaths
from peftbench.core.predictions import read_predictions
from peftbench.core.results import read_result, read_spec
from peftbench.core.spec import DataSource, TaskSpec
from peftbench.methods import METHODS
from peftbench.models.loading import load_tokenizer
from peftbench.run.one import failure_status, run_one
from peftbench.tasks import TASK_TYPES
from tests.conftest import demo_run


def predictions(model, batch) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("method", ["lora", "bitfit", "full", "prompt_tuning"])
def test_run_one_writes_a_result_and_a_reloadable_artifact(method: str, tmp_path: Path):
    spec = demo_run(method, "epistemic_nli", max_steps=2)
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    paths = RunPaths(tmp_path)
    assert read_result(paths.result) == result
    assert read_spec(paths.spec) == spec
    assert set(result.test) >= {
        "accuracy",
        "mcc",
        "f1_macro",
        "precision_macro",
        "recall_macro",
        "loss",
    }
    assert result.cost.trainable_params > 0 and result.cost.total_params > 20_000_000
    assert result.cost.artifact_bytes > 0 and result.cost.train_tokens > 0
    assert result.cost.peak_rss_bytes > 100_000_000
    assert result.provenance.packages["peft"] != "absent"
    assert not paths.checkpoints.exists()

    # Reload onto a fresh base model with a differently seeded head: only the saved weights can
    # make it reproduce the recorded test metric exactly.
    task_type = TASK_TYPES[spec.task.type]
    tokenizer = load_tokenizer(spec.model)
    data = task_type.prepare_data(spec.task, tokenizer, spec.training)
    torch.manual_seed(123)
    reloaded = METHODS[method].load(task_type.load_model(spec.model, spec.task, tokenizer), paths.artifact)
    batch = data.collator([data.test[i] for i in range(len(data.test))])
    logits = predictions(reloaded, batch)
    metrics = task_type.compute_metrics(spec.task, logits, batch["labels"].tolist())
    assert metrics["accuracy"] == result.test["accuracy"]
    assert metrics["mcc"] == pytest.approx(result.test["mcc"])

    # The run's test predictions: one line per test example with its own id, matching the metric.
    written = read_predictions(paths.test_predictions)
    gold = batch["labels"].tolist()
    assert [p.index for p in written] == list(range(len(gold)))
    assert [p.id for p in written] == data.test_ids and None not in data.test_ids
    hits = sum(p.label == g for p, g in zip(written, gold, strict=True))
    assert hits / len(gold) == result.test["accuracy"]


def test_reloaded_lora_adapter_reproduces_the_trained_model(tmp_path: Path):
    """The saved adapter + head, reloaded with plain PeftModel.from_pretrained, predicts identically."""
    from peft import PeftModel

    spec = demo_run("lora", max_steps=3)
    task_type = TASK_TYPES[spec.task.type]
    tokenizer = load_tokenizer(spec.model)
    data = task_type.prepare_data(spec.task, tokenizer, spec.training)
    batch = data.collator([data.test[i] for i in range(8)])
    torch.manual_seed(0)
    model = METHODS["lora"].prepare(
        task_type.load_model(spec.model, spec.task, tokenizer),
        METHODS["lora"].Params.model_validate(spec.params),
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    trained = predictions(model, batch)
    METHODS["lora"].save(model, tmp_path)
    torch.manual_seed(999)
    base = task_type.load_model(spec.model, spec.task, tokenizer).model
    reloaded = PeftModel.from_pretrained(base, tmp_path)
    assert torch.allclose(predictions(reloaded, batch), trained, atol=1e-5)


def test_a_failing_run_writes_a_failed_result_with_the_traceback(tmp_path: Path):
    spec = demo_run("lora")
    broken = TaskSpec(
        name="broken",
        source=DataSource(bundled="movie_sentiment"),
        text_columns=["no_such_column"],
        labels=["a", "b"],
    )
    result = run_one(spec.model_copy(update={"task": broken}), tmp_path)
    assert result.status == "failed"
    assert "no_such_column" in result.error and "Traceback" in result.error
    assert read_result(RunPaths(tmp_path).result).status == "failed"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (MemoryError(), "oom"),
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom"),
        (RuntimeError("NCCL error: out of memory"), "oom"),
        (RuntimeError("shape mismatch"), "failed"),
        (ValueError("OutOfMemoryError is only a word here"), "failed"),
    ],
)
def test_failure_status_goes_by_the_exception_type(error: BaseException, status: str):
    assert failure_status(error) == status


def test_a_job_out_of_requeues_is_a_timeout():
    """The launcher raises OutOfTime (launch/array_task.py, from submitit's error); run_one knows no Slurm."""
    from peftbench.core.errors import OutOfTime

    assert failure_status(OutOfTime("Job not requeued because: timed-out too many times.")) == "timeout"
    assert failure_status(RuntimeError("Job 12_3 (task: 0) timed-out")) == "failed"
