"""The ZeRO-3 model-state estimate against hand-computed figures for two real 7-8B models."""

from __future__ import annotations

import pytest
from transformers import LlamaConfig

from peftbench.plan.memory import count_from_config, zero3_model_states_bytes
from peftbench.plan.profiles import PACKAGED

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


def _llama_run(tmp_path, method: str, distributed: str | None, gpus: int, **params):
    """A run of Llama-2-7B (its config only, in a local folder) on a classification task."""
    from peftbench.core.spec import ModelRef, ResourceRequest, RunSpec, TrainingSettings
    from peftbench.tasks import TASK_CATALOG

    folder = tmp_path / "llama-2-7b"
    LLAMA2_7B.save_pretrained(folder)
    return RunSpec(
        sweep="plan",
        model=ModelRef(name="llama-2-7b", source=str(folder), family="llama"),
        task=TASK_CATALOG["movie_sentiment"],
        method=method,
        label=method,
        params=params,
        training=TrainingSettings(batch_size=4, max_length=512, precision="bf16", distributed=distributed),
        seed=0,
        resources=ResourceRequest(gpus=gpus),
    )


def test_full_fine_tuning_under_zero3_is_deepspeeds_estimate_plus_activations(tmp_path):
    from peftbench.plan.memory import activation_bytes, estimate_run

    run = _llama_run(tmp_path, "full", "zero3", 4)
    estimate = estimate_run(run, LLAMA2_7B, 4)
    assert estimate.weights + estimate.training_state == zero3_model_states_bytes(
        count_from_config(LLAMA2_7B), 4
    )
    # 34 bytes per token per hidden unit per layer in bf16, + fp32 logits and their gradient
    tokens = 4 * 512
    assert activation_bytes(run, LLAMA2_7B, mixed=True) == tokens * 34 * 4096 * 32 + tokens * 32000 * 8
    assert estimate.trainable == estimate.total_params == 6_738_415_616


def test_lora_trainable_count_comes_from_applying_it_on_the_meta_device(tmp_path):
    from peftbench.plan.memory import estimate_run

    run = _llama_run(tmp_path, "lora", None, 1, r=8, target_modules=["q_proj", "v_proj"])
    estimate = estimate_run(run, LLAMA2_7B, 1)
    assert estimate.trainable == 32 * 2 * 8 * (4096 + 4096)  # layers × (q, v) × r × (in + out)
    assert estimate.weights == 2 * 6_738_415_616


def test_the_planner_refuses_what_cannot_fit_and_names_the_smallest_fit(tmp_path, sweep_file):
    from peftbench.core.errors import ConfigError
    from peftbench.plan.sweep_plan import load_plan

    _llama_run(tmp_path, "full", None, 1)  # writes the config folder
    profile = (PACKAGED / "vega.yaml").read_text().replace("FILL_ME", "x")
    (tmp_path / "vega.yaml").write_text(profile)
    sweep = sweep_file(
        {
            "name": "big",
            "models": [{"name": "llama-2-7b", "source": str(tmp_path / "llama-2-7b"), "family": "llama"}],
            "tasks": ["movie_sentiment"],
            "methods": {
                "full": {"distributed": "zero3", "resources": {"gpus": 1}},
                "lora": {"r": 8, "target_modules": ["q_proj", "v_proj"], "resources": {"gpus": 1}},
            },
            "training": {"batch_size": 4, "max_length": 512, "precision": "bf16"},
        }
    )
    with pytest.raises(ConfigError) as info:
        load_plan(sweep, str(tmp_path / "vega.yaml"))
    [problem] = info.value.problems
    assert problem.key == "methods.full"
    # 121.8 GB of model states + 9.7 GB of activations on one 40 GB A100. By hand, per GPU on N:
    # 121.8 / N + 0.5 (gathered embedding) + 9.7: N = 4 gives 40.6 GB, N = 5 gives 34.6 GB, under
    # the 36 GB (90 %) limit; 5 GPUs on nodes of 4 is 2 nodes of 3.
    assert "needs about 131.5 GB per GPU" in problem.message
    assert "(weights 14.0, training state 107.8, activations 9.7)" in problem.message
    assert "Smallest that fits: distributed: zero3 with gpus: 3, nodes: 2" in problem.message
    plan = load_plan(sweep, str(tmp_path / "vega.yaml"), check_memory=False)
    assert len(plan.runs) == 2
