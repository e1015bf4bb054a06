"""The key-value cache of generating test answers in the memory estimate (plan/generation_memory.py):
hand-computed figures for LLaMA-13B, each engine's bytes per cached value, the cache a real
`generate` keeps on the tiny decoder, and the evaluation batch the planner suggests."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, BartConfig, LlamaConfig

from peftbench.core.spec import ModelRef, TrainingSettings
from peftbench.models.shapes import planning_config
from peftbench.plan.generation_memory import (
    cache_value_bytes,
    cached_tokens,
    generation_bytes,
    kv_bytes_per_token,
)
from peftbench.plan.memory import GB, estimate_run, fit_on
from tests.conftest import demo_run
from tests.test_generation import run_spec
from tests.test_instruction import BELLE

LLAMA_13B = ModelRef(name="llama-13b", source="huggyllama/llama-13b", family="llama")


def belle(model: ModelRef = LLAMA_13B, **training):
    settings = {"max_length": 1536, "max_new_tokens": 512, "eval_batch_size": 16, "precision": "fp16"}
    return run_spec(model, BELLE, method="lora", **(settings | training))


def test_llama_13b_in_fp16_caches_0_8_mb_a_token_and_20_gb_for_16_answers_of_1536_tokens():
    """The issue's figures: 2 (K, V) × 40 layers × 5,120 × 2 bytes; 16 × 1,536 tokens."""
    config, _ = planning_config(LLAMA_13B)
    assert kv_bytes_per_token(config, 2) == 2 * 40 * 5120 * 2 == 819_200
    run = belle(distributed="zero3")
    assert cached_tokens(run, config) == 1536
    cache = 16 * 1536 * 819_200
    assert round(cache / GB, 1) == 20.1
    assert generation_bytes(run, config, "zero3") == cache + 16 * config.vocab_size * 8


def test_bytes_per_cached_value_follow_the_weights_generate_runs_on():
    """generate runs outside autocast: fp32 weights (unsharded engines) cache in fp32; DeepSpeed's
    bf16/fp16 model and FSDP's mixed-precision gather cache in 2 bytes; fp32 runs in 4 everywhere."""
    assert [
        cache_value_bytes(b, "bf16") for b in ("none", "ddp", "fsdp", "zero2", "zero3", "zero3_offload")
    ] == [
        4,
        4,
        2,
        2,
        2,
        2,
    ]
    assert {cache_value_bytes(b, "fp32") for b in ("none", "ddp", "fsdp", "zero3")} == {4}


def test_grouped_query_attention_caches_only_its_key_value_heads_and_seq2seq_adds_the_answer():
    gqa = LlamaConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8)
    assert kv_bytes_per_token(gqa, 2) == 2 * 32 * 8 * 128 * 2
    bart = BartConfig(d_model=768, decoder_layers=6, encoder_layers=6, decoder_attention_heads=12)
    seq2seq = belle(max_length=512, max_new_tokens=64)
    assert kv_bytes_per_token(bart, 4) == 2 * 6 * 768 * 4
    assert cached_tokens(seq2seq, bart) == 512 + 64


def test_tasks_that_do_not_generate_add_no_cache():
    run = demo_run("lora")
    config = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
    assert generation_bytes(run, config, "none") == 0


def test_the_formula_is_the_cache_a_real_generate_keeps(tiny_decoder: Path):
    """The tiny Llama (grouped-query: 2 key-value heads of 4) generates 5 tokens after 7-token prompts
    for 3 sequences; its DynamicCache holds the 7 + 5 - 1 positions it fed (the last token is only
    emitted), in fp32, exactly what the formula gives for that many tokens."""
    model = AutoModelForCausalLM.from_pretrained(tiny_decoder, dtype=torch.float32).eval()
    ids = torch.randint(10, 200, (3, 7))
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=5,
            min_new_tokens=5,
            do_sample=False,
            return_dict_in_generate=True,
            pad_token_id=0,
        )
    cache = out.past_key_values
    held = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
    assert held == 3 * (7 + 5 - 1) * kv_bytes_per_token(model.config, cache_value_bytes("ddp", "bf16"))


def test_the_plan_suggests_the_evaluation_batch_whose_generation_fits(tmp_path: Path):
    """LLaMA-13B LoRA at BELLE's lengths on a 40 GB A100: training (batch 1) fits, generating 8
    answers of 1,024 tokens does not; the halvings a run would try name the batch that fits."""
    config, _ = planning_config(LLAMA_13B)
    run = belle(max_length=1024, eval_batch_size=8, batch_size=1, distributed="ddp")
    estimate = estimate_run(run, config, 1)
    assert estimate.evaluation_bound and estimate.kv_cache > 0
    assert estimate.training_peak < 36 * GB < estimate.evaluation_peak == estimate.total
    fit = fit_on(run, config, 40 * GB, 4)
    assert not fit.fits
    assert fit.suggestion is not None and fit.suggestion.startswith(
        "eval_batch_size: 4 (evaluation peak about"
    )
    smaller = run.model_copy(update={"training": run.training.model_copy(update={"eval_batch_size": 4})})
    assert fit_on(smaller, config, 40 * GB, 4).fits
    assert (
        TrainingSettings.model_fields["eval_batch_size"].default == 128
    )  # the default the halving starts from
