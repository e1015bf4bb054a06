"""The ZeRO-3 model-state estimate against hand-computed figures for two real 7-8B models."""

from __future__ import annotations

import pytest
from transformers import LlamaConfig

from peftbench.memory import count_from_config, zero3_model_states_bytes

# The published architectures (config.json of meta-llama/Llama-2-7b-hf and Llama-3.1-8B).
LLAMA2_7B = LlamaConfig(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    architectures=["LlamaForCausalLM"],
)
LLAMA31_8B = LlamaConfig(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    architectures=["LlamaForCausalLM"],
)


# By hand: 18 bytes × params ÷ GPUs + 4 bytes × (vocab × hidden), i.e. 121.8 / 30.85 GB for Llama-2-7B
# and 146.6 / 38.2 GB for Llama-3.1-8B on one / four GPUs.
@pytest.mark.parametrize(
    ("config", "total", "one_gpu", "four_gpus"),
    [
        (LLAMA2_7B, 6_738_415_616, 121_815_769_088, 30_847_158_272),
        (LLAMA31_8B, 8_030_261_248, 146_646_048_768, 38_237_521_920),
    ],
)
def test_zero3_model_states_match_hand_computed(config, total, one_gpu, four_gpus):
    params = count_from_config(config)
    assert params.total == total
    assert params.largest_layer == config.vocab_size * config.hidden_size
    assert zero3_model_states_bytes(params, 1) == one_gpu
    assert zero3_model_states_bytes(params, 4) == four_gpus
    assert zero3_model_states_bytes(params, 2, nodes=2) == zero3_model_states_bytes(params, 4)
    assert zero3_model_states_bytes(params, 4, offload=True) == 4 * params.largest_layer
