"""Prompt tuning, p-tuning and prefix tuning: only the prompt (and the head) train, on BERT and Llama."""

from __future__ import annotations

import pytest
import torch

from peftbench.core.errors import ConfigError
from peftbench.core.spec import ModelRef
from peftbench.models.loading import load_tokenizer
from peftbench.plan.loading import load_sweep
from tests.method_training import MINILM, head_parameters, tiny_llama, train_a_few_steps


@pytest.mark.parametrize("model", ["minilm", "llama"])
def test_prefix_tuning_trains_the_prefix_only(model: str, tiny_decoder):
    ref = MINILM if model == "minilm" else tiny_llama(tiny_decoder)
    trained = train_a_few_steps("prefix_tuning", {"num_virtual_tokens": 5}, ref=ref, lr=5e-2)
    assert trained.losses[-1] < trained.losses[0]
    assert trained.changed == {"prompt_encoder.default.embedding.weight"} | head_parameters(trained.changed)
    layers = trained.model.config.num_hidden_layers
    # One key and one value vector per layer for each virtual token.
    assert trained.before["prompt_encoder.default.embedding.weight"].shape == (
        5,
        2
        * layers
        * trained.model.config.hidden_size
        // (trained.model.config.num_attention_heads)
        * (
            getattr(trained.model.config, "num_key_value_heads", None)
            or trained.model.config.num_attention_heads
        ),
    )


def test_prefix_tuning_through_an_mlp_trains_the_mlp():
    trained = train_a_few_steps(
        "prefix_tuning", {"num_virtual_tokens": 5, "encoder_hidden_size": 16}, lr=5e-2
    )
    prompt = {n for n in trained.changed if n.startswith("prompt_encoder.")}
    assert any(".transform." in n for n in prompt)
    assert trained.changed == prompt | head_parameters(trained.changed)


@pytest.mark.parametrize("model", ["minilm", "llama"])
def test_p_tuning_trains_the_prompt_encoder_only(model: str, tiny_decoder):
    ref = MINILM if model == "minilm" else tiny_llama(tiny_decoder)
    trained = train_a_few_steps("p_tuning", {"num_virtual_tokens": 5, "encoder_hidden_size": 16}, ref=ref)
    prompt = {n for n in trained.changed if n.startswith("prompt_encoder.default.")}
    assert "prompt_encoder.default.embedding.weight" in prompt
    assert any(".mlp_head." in n for n in prompt)
    assert trained.changed == prompt | head_parameters(trained.changed)


def test_prompt_tuning_from_text_starts_from_the_text_embeddings():
    text = "Is this review positive or negative?"
    trained = train_a_few_steps("prompt_tuning", {"num_virtual_tokens": 6, "init": "text", "init_text": text})
    start = trained.before["prompt_encoder.default.embedding.weight"]
    ids = load_tokenizer(MINILM)(text)["input_ids"][:6]  # peft keeps the tokenizer's [CLS]
    assert len(ids) == 6
    words = trained.model.base_model.bert.embeddings.word_embeddings.weight
    assert torch.equal(start, words[ids].detach())
    assert trained.changed == {"prompt_encoder.default.embedding.weight"} | head_parameters(trained.changed)


def test_prompt_tuning_text_init_needs_the_text():
    from peftbench.methods.prompts import PromptTuningParams

    with pytest.raises(ValueError, match="init 'text' needs init_text"):
        PromptTuningParams(init="text")


def test_prefix_tuning_is_refused_for_families_without_past_key_values(sweep_file):
    deberta = ModelRef(name="mdeberta", source="microsoft/mdeberta-v3-base", family="deberta-v2")
    data = {
        "name": "prefix",
        "models": [deberta.model_dump(), "minilm-l6"],
        "tasks": ["movie_sentiment"],
        "methods": {"prefix": {"method": "prefix_tuning"}},
    }
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep_file(data))
    [problem] = [str(p) for p in info.value.problems]
    assert "sweep.yaml: methods.prefix:" in problem and "'mdeberta' (family deberta-v2)" in problem
    assert "past_key_values" in problem and "use p_tuning or prompt_tuning" in problem
