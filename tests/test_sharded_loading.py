"""Sharded loading (models/sharded_loading.py): under ZeRO-3 and FSDP no process but FSDP's rank 0
holds the whole fp32 model while it loads, and the weights that arrive are those of a whole load.

Real processes (torchrun, 2 ranks, gloo on CPU) load models built from a config and saved once, as
run_one loads them. The memory bounds are stated in benchmarks/sharded_loading.py (its docstring
says why); its few-hundred-million-parameter measurement is `make sharded-loading`. FSDP needs a
stand-in for the GPU, which accelerate requires before it shards (`as_on_a_gpu` there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from benchmarks import sharded_loading
from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification, LlamaModel

from peftbench.models.sharded_loading import (
    checkpoint_keys,
    match_parameters,
    refuse_unmatched,
    safetensors_files,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = LlamaConfig(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    pad_token_id=0,
)


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base LlamaModel (no `model.` prefix, no head) saved in bf16 as four shards with an index."""
    folder = tmp_path_factory.mktemp("tiny-base")
    torch.manual_seed(0)
    LlamaModel(TINY).to(torch.bfloat16).save_pretrained(folder, max_shard_size="50KB")
    return folder


def test_checkpoint_names_match_with_or_without_the_base_model_prefix(base_checkpoint: Path):
    files = safetensors_files(str(base_checkpoint))
    assert files is not None and len(files) == 4  # the index's shards
    keys = checkpoint_keys(files)
    model = LlamaForSequenceClassification(TINY)
    found, missing = match_parameters(model, keys)
    assert missing == ["score.weight"]  # the new head keeps its init
    assert found["model.embed_tokens.weight"] == "embed_tokens.weight"
    assert len(found) == len(list(model.parameters())) - 1
    assert safetensors_files(str(base_checkpoint / "nowhere")) is None  # from_pretrained's job


def test_tied_weights_are_matched_once(tmp_path: Path):
    tied = LlamaForCausalLM(LlamaConfig(**{**TINY.to_dict(), "tie_word_embeddings": True}))
    tied.save_pretrained(tmp_path)  # saves the embedding once, without lm_head.weight
    found, missing = match_parameters(tied, checkpoint_keys(safetensors_files(str(tmp_path)) or []))
    assert missing == [] and "lm_head.weight" not in found.values()


def test_a_checkpoint_of_another_model_is_refused_by_name(base_checkpoint: Path, tmp_path: Path):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    ).save_pretrained(tmp_path)
    keys = checkpoint_keys(safetensors_files(str(tmp_path)) or [])
    model = LlamaForSequenceClassification(TINY)
    found, _ = match_parameters(model, keys)
    with pytest.raises(
        ValueError, match=rf"Checkpoint {tmp_path}: \d+ of the model's \d+ weights .*embed_tokens"
    ):
        refuse_unmatched(model, str(tmp_path), found, keys)


def test_zero3_and_fsdp_give_the_weights_of_a_whole_load(base_checkpoint: Path, tmp_path: Path):
    """Both engines against `from_pretrained` in one process, LoRA applied: a base checkpoint in four
    shards loaded into LlamaForSequenceClassification (prefix added, bf16 cast to fp32)."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(ROOT / "tests" / "sharded_loading_check.py"), str(base_checkpoint), "zero3,fsdp", str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    parameters = set(ranks[0]["parameters"])
    drawn = {n for n in parameters if "lora_A" in n or ".score." in n}  # random init, seeded
    assert len(drawn) == 6 and ranks[0]["reference_head_modules"] == ["score"]
    for engine in ("zero3", "fsdp"):
        for r in ranks:
            assert r[engine]["shapes_match"] and r[engine]["head_modules"] == ["score"]
            # Every weight, the randomly initialised head and LoRA's A too: the same seed gives the
            # same starting model under every engine (FSDP broadcasts rank 0's from_pretrained load;
            # ZeRO-3 draws the head as from_pretrained does).
            assert set(r[engine]["equal_to_reference"]) == parameters, engine
        assert ranks[0][engine]["digests"] == ranks[1][engine]["digests"], engine  # the same on every rank
    assert [r["fsdp"]["meta_parameters_after_loading"] for r in ranks] == [0, len(parameters)]


def test_each_process_holds_its_shard_not_the_whole_model_while_loading(tmp_path: Path):
    parameters, largest = sharded_loading.build_model("60m", tmp_path / "model")
    bound = sharded_loading.bound_fraction(parameters, largest)
    assert bound < 0.85  # a process holding the whole fp32 model (>= 1.0 x) cannot pass
    for engine in sharded_loading.ENGINES:
        ranks = sharded_loading.measure(tmp_path / "model", engine, tmp_path / engine)
        assert sorted(r["rank"] for r in ranks) == [0, 1]
        for r in ranks:
            assert r["parameters"] >= parameters  # the whole model is there (plus its 2-label head) ...
            assert r["held_parameters"] <= r["parameters"] / 2 + 4096  # ... each process holds its shard
            peak = r["loading_peak_bytes"] / (parameters * 4)
            assert peak > 0, f"{engine} rank {r['rank']}: nothing measured"
        assert sharded_loading.bound_problems(engine, ranks, parameters, largest) == []
