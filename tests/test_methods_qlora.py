"""QLoRA: refused without a GPU; asks for a 4-bit NF4 base; maps onto LoRA.

The 4-bit path itself needs a CUDA GPU and bitsandbytes, neither of which is here: these tests
cover the validation, the loading options and the LoRA mapping on an unquantized base.
"""

from __future__ import annotations

import pytest
import torch

from peftbench.core.errors import ConfigError
from peftbench.methods import METHODS
from peftbench.plan.loading import load_sweep
from tests.method_training import head_parameters, train_a_few_steps

SWEEP = {
    "name": "qlora",
    "models": ["minilm-l6"],
    "tasks": ["movie_sentiment"],
    "methods": {"qlora": {"r": 16, "target_modules": "attention"}},
}


def test_qlora_is_refused_for_a_run_without_gpus(sweep_file):
    path = sweep_file(SWEEP)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    [problem] = [str(p) for p in info.value.problems]
    assert f"{path}: methods.qlora: Method 'qlora' cannot train model 'minilm-l6'" in problem
    assert "QLoRA needs a CUDA GPU (bitsandbytes 4-bit); this run asks for resources.gpus: 0" in problem


def test_qlora_with_a_gpu_is_accepted_with_the_lora_params(sweep_file):
    data = {**SWEEP, "methods": {"qlora": {**SWEEP["methods"]["qlora"], "resources": {"gpus": 1}}}}
    [run] = load_sweep(sweep_file(data)).runs
    assert run.method == "qlora" and run.params["r"] == 16 and run.params["target_modules"] == "attention"


def test_loading_options_ask_for_a_4bit_nf4_base_with_double_quantization():
    options = METHODS["qlora"].loading_options(METHODS["qlora"].Params())
    quantization = options["quantization_config"]
    assert type(quantization).__name__ == "BitsAndBytesConfig"
    assert quantization.load_in_4bit and not quantization.load_in_8bit
    assert quantization.bnb_4bit_quant_type == "nf4" and quantization.bnb_4bit_use_double_quant
    assert quantization.bnb_4bit_compute_dtype == torch.bfloat16
    assert options["device_map"] == {"": 0}
    assert METHODS["lora"].loading_options(METHODS["lora"].Params()) == {}


def test_qlora_trains_lora_and_the_head_on_an_unquantized_base():
    trained = train_a_few_steps("qlora", {"target_modules": "attention"})
    lora = {n for n in trained.changed if ".lora_A." in n or ".lora_B." in n}
    assert len(lora) == 6 * 3 * 2
    assert trained.changed == lora | head_parameters(trained.changed)
