"""How many runs an array task packs (plan/packing.py), and the packing the planner refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import BertConfig

from peftbench.core.errors import ConfigError
from peftbench.core.spec import ModelRef, ResourceRequest, RunSpec, TrainingSettings
from peftbench.plan.loading import load_cluster, load_sweep
from peftbench.plan.packing import CUDA_CONTEXT_BYTES, needs_planned_memory, pack_size, packing_problems
from peftbench.plan.placement import plan_runs
from peftbench.plan.sweep_plan import memory_rows
from peftbench.tasks import TASK_CATALOG

VEGA = load_cluster("vega")  # a100: 40 GB, 32 CPU cores per GPU


def bert_base_run(tmp_path: Path, method: str = "full", **resources) -> RunSpec:
    """Full fine-tuning of BERT-base (its published config only, in a local folder): the studies' size."""
    folder = tmp_path / "bert-base"
    if not folder.exists():
        BertConfig().save_pretrained(folder)
    return RunSpec(
        sweep="pack",
        model=ModelRef(name="bert-base", source=str(folder), family="bert"),
        task=TASK_CATALOG["movie_sentiment"],
        method=method,
        label=method,
        params={},
        training=TrainingSettings(batch_size=32, max_length=128),
        seed=0,
        resources=ResourceRequest(**{"gpus": 1, **resources}),
    )


def planner_estimates(runs: list[RunSpec]) -> dict[str, int | None]:
    """The planner's per-GPU estimate of each run, as load_plan hands it to packing."""
    return {row.run.run_id: row.estimate.total if row.estimate else None for row in memory_rows(runs, VEGA)}


def test_auto_packs_as_many_bert_base_runs_as_fit_a_40_gb_gpu(tmp_path):
    run = bert_base_run(tmp_path, runs_per_gpu="auto")
    # By hand, mixed precision: 109,483,778 parameters × (2 weight + 16 training-state bytes), plus
    # activations 32 × 128 tokens × 34 × 768 bytes × 12 layers, plus a CUDA context per process.
    planned = 109_483_778 * 18 + 32 * 128 * 34 * 768 * 12
    assert pack_size(run, VEGA, planned) == int(0.9 * 40e9 // (planned + CUDA_CONTEXT_BYTES)) == 9
    [placed] = plan_runs([run], VEGA, planner_estimates([run])).values()  # the planner's own: the same
    assert placed.runs_per_task == placed.shape.runs_per_task == 9


def test_auto_is_capped_by_the_cores_of_a_gpu_and_is_one_per_core_on_a_cpu_node(tmp_path):
    run = bert_base_run(tmp_path, runs_per_gpu="auto")
    assert pack_size(run, VEGA, 10**6) == 32  # tiny runs: one CPU core each, 32 come with an A100
    on_cpu = run.model_copy(update={"resources": ResourceRequest(cpus=3, runs_per_gpu="auto")})
    assert pack_size(on_cpu, VEGA, None) == 3
    unset = run.model_copy(update={"resources": ResourceRequest(gpus=1)})
    assert pack_size(unset, VEGA, 10**6) == 1
    assert pack_size(run, VEGA, None) == 1  # model size unknown here: not packed


def test_too_many_runs_for_the_gpu_and_a_packed_distributed_run_are_refused(tmp_path):
    greedy = bert_base_run(tmp_path, runs_per_gpu=12)
    ddp = bert_base_run(tmp_path, gpus=2, runs_per_gpu="auto").model_copy(
        update={"training": TrainingSettings(distributed="ddp")}
    )
    assert needs_planned_memory(greedy) and not needs_planned_memory(ddp)
    found = packing_problems([greedy, ddp], VEGA, "s.yaml", planner_estimates([greedy]))
    problems = {p.key: str(p) for p in found}
    assert problems.keys() == {"methods.full.resources.runs_per_gpu"}
    [said] = problems.values()
    assert "12 runs of bert-base" in said and "at most 9 fit" in said
    problems = packing_problems([ddp], VEGA, "s.yaml", {})
    assert len(problems) == 1 and "distributed run" in problems[0].message
    assert packing_problems([greedy], VEGA, "s.yaml", {greedy.run_id: None}) == []  # size unknown here


@pytest.mark.parametrize("value", ["lots", 0])
def test_runs_per_gpu_must_be_auto_or_a_positive_number(sweep_file, value):
    path = sweep_file(
        {
            "name": "p",
            "models": ["minilm-l6"],
            "tasks": ["movie_sentiment"],
            "methods": {"lora": {"resources": {"runs_per_gpu": value}}},
        }
    )
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    said = str(err.value)
    assert str(path) in said and "methods.lora.resources.runs_per_gpu" in said and "auto" in said, said
