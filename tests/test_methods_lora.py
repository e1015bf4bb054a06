"""LoRA variants: the target-module presets per family, rsLoRA, DoRA, and run ids of older runs."""

from __future__ import annotations

import math

import pytest
import torch

from peftbench.methods.lora import LoraParams
from peftbench.models.families import FAMILY_TRAITS
from tests.method_training import (
    adapted_modules,
    head_parameters,
    load_base,
    tiny_llama,
    train_a_few_steps,
)


def test_attention_preset_on_bert_adapts_query_key_value_only():
    trained = train_a_few_steps("lora", {"target_modules": "attention"})
    assert trained.losses[-1] < trained.losses[0]
    lora = {n for n in trained.changed if ".lora_" in n}
    assert adapted_modules(lora, "lora_") == {"query", "key", "value"}
    assert len(lora) == 6 * 3 * 2  # layers x modules x (A, B)
    assert head_parameters(trained.changed) and trained.changed == lora | head_parameters(trained.changed)


def test_attention_preset_on_llama_adapts_the_four_projections(tiny_decoder):
    trained = train_a_few_steps("lora", {"target_modules": "attention"}, ref=tiny_llama(tiny_decoder))
    lora = {n for n in trained.changed if ".lora_" in n}
    assert adapted_modules(lora, "lora_") == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert {n.split(".modules_to_save")[0] for n in head_parameters(trained.changed)} == {
        "base_model.model.score"
    }
    assert trained.changed == lora | head_parameters(trained.changed)


def test_all_linear_adapts_every_linear_layer_but_the_head():
    trained = train_a_few_steps("lora", {"target_modules": "all-linear"}, steps=2)
    base, _ = load_base()
    linear = {n for n, m in base.model.named_modules() if isinstance(m, torch.nn.Linear)}
    adapted = {
        n.split(".lora_A.")[0].removeprefix("base_model.model.") for n in trained.changed if ".lora_A." in n
    }
    assert adapted == linear - {"classifier"}
    assert len(adapted) == 6 * 6 + 1  # per layer q, k, v and three dense; the pooler


def test_rslora_scales_by_the_square_root_of_the_rank():
    trained = train_a_few_steps("lora", {"r": 4, "lora_alpha": 8, "use_rslora": True}, steps=1)
    query = trained.model.base_model.model.bert.encoder.layer[0].attention.self.query
    assert query.scaling["default"] == pytest.approx(8 / math.sqrt(4))
    plain = train_a_few_steps("lora", {"r": 4, "lora_alpha": 8}, steps=1)
    assert plain.model.base_model.model.bert.encoder.layer[0].attention.self.query.scaling["default"] == 2


def test_dora_also_trains_the_magnitudes():
    trained = train_a_few_steps("lora", {"target_modules": ["query", "value"], "use_dora": True})
    magnitudes = {n for n in trained.changed if "lora_magnitude_vector" in n}
    assert adapted_modules(magnitudes, "lora_magnitude_vector") == {"query", "value"}
    lora = {n for n in trained.changed if ".lora_A." in n or ".lora_B." in n}
    assert trained.changed == lora | magnitudes | head_parameters(trained.changed)


def test_new_switches_left_unset_keep_the_params_of_older_runs():
    """Run ids hash the params: the dump of the defaults must be what it was before rsLoRA/DoRA."""
    assert LoraParams().model_dump(mode="json") == {
        "r": 8,
        "lora_alpha": 16.0,
        "lora_dropout": 0.1,
        "target_modules": None,
        "bias": "none",
    }
    assert LoraParams(use_dora=True).model_dump(mode="json")["use_dora"] is True
    assert "use_rslora" not in LoraParams(use_dora=False).model_dump(mode="json")


def test_attention_preset_needs_a_known_family():
    from peftbench.methods.lora import target_modules_for

    class Unknown(torch.nn.Module):
        config = type("Config", (), {"model_type": "rwkv"})()

    with pytest.raises(ValueError, match=r"no preset for model type 'rwkv'.*give the module names"):
        target_modules_for("attention", Unknown())
    assert all(traits.attention_modules for traits in FAMILY_TRAITS.values())


def test_peft_default_targets_on_bertic_train_what_the_study_counted():
    """BERTić's Table 2: 1,200,386 trainable for LoRA (r=16, bias lora_only, peft's default targets:
    ELECTRA's query and value) and 110,618,882 for full fine-tuning, both with the 2-class head. The
    model is ELECTRA-base built from the shipped config (shapes.json) on the meta device: no weights."""
    from transformers import AutoConfig, ElectraForSequenceClassification

    from peftbench.methods import METHODS
    from peftbench.models.loading import LoadedModel, head_modules
    from peftbench.models.shapes import shipped_shapes
    from peftbench.run.accounting import count_parameters

    facts = dict(shipped_shapes()["classla/bcms-bertic"])
    config = AutoConfig.for_model(facts.pop("model_type"), **facts, num_labels=2)
    study = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "bias": "lora_only"}
    counted = {}
    for label, method, params in [("full", "full", {}), ("lora", "lora", study)]:
        with torch.device("meta"):
            model = ElectraForSequenceClassification(config)
        head = head_modules([n for n, _ in model.named_parameters() if n.startswith("classifier.")])
        loaded = LoadedModel(model, "config", head, "SEQ_CLS", FAMILY_TRAITS["electra"])
        chosen = METHODS[method]
        counted[label] = count_parameters(chosen.prepare(loaded, chosen.Params.model_validate(params)))[0]
    assert counted == {"full": 110_618_882, "lora": 1_200_386}
