"""Each method states its traits, and what it prepares agrees with them."""

from __future__ import annotations

import pytest
import torch

from peftbench.core.method_traits import MethodTraits
from peftbench.methods import METHODS
from peftbench.models.families import FAMILY_TRAITS
from peftbench.models.loading import LoadedModel

VIRTUAL = MethodTraits(adds_virtual_tokens=True)
STATED = {
    "full": MethodTraits(trains_all_weights=True, trains_biases=True),
    "bitfit": MethodTraits(trains_biases=True),
    "prompt_tuning": VIRTUAL,
    "p_tuning": VIRTUAL,
    "prefix_tuning": VIRTUAL,
}


def test_every_method_states_its_traits():
    for name, method in METHODS.items():
        assert method.traits == STATED.get(name, MethodTraits()), name


def tiny_bert() -> LoadedModel:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    torch.manual_seed(0)
    return LoadedModel(
        model=BertForSequenceClassification(config),
        source_path="tiny",
        head_modules=("classifier",),
        peft_task_type="SEQ_CLS",
        traits=FAMILY_TRAITS["bert"],
    )


@pytest.mark.parametrize("name", sorted(set(METHODS) - {"qlora"}))  # qlora needs a CUDA GPU
def test_what_a_method_prepares_agrees_with_its_traits(name: str):
    method = METHODS[name]
    model = method.prepare(tiny_bert(), method.Params())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    own = {n for n, _ in model.named_parameters()}
    assert method.traits.trains_all_weights == (trainable == own)
    added = ("classifier", "prompt_encoder", "lora_")  # the head's and the method's own modules
    base_biases = {n for n in trainable if n.endswith(".bias") and not any(a in n for a in added)}
    assert method.traits.trains_biases == bool(base_biases)
    virtual = bool(getattr(model, "active_peft_config", None)) and model.active_peft_config.is_prompt_learning
    assert method.traits.adds_virtual_tokens == virtual
