"""(IA)³: the family presets scale keys, values and the feed-forward input, and nothing else trains."""

from __future__ import annotations

import pytest

from peftbench.methods.ia3 import Ia3Params
from tests.method_training import adapted_modules, head_parameters, tiny_llama, train_a_few_steps


def test_ia3_on_bert_scales_key_value_and_the_feed_forward_output_layer():
    trained = train_a_few_steps("ia3", lr=5e-2)
    assert trained.losses[-1] < trained.losses[0]
    vectors = {n for n in trained.changed if ".ia3_l." in n}
    assert adapted_modules(vectors, "ia3_l") == {"key", "value", "dense"}
    dense = {n for n in vectors if ".dense." in n}
    assert len(dense) == 6 and not any(".attention.output." in n for n in dense)  # FFN down projection only
    assert trained.changed == vectors | head_parameters(trained.changed)
    # Feed-forward vectors scale the layer's input (its 1536 features), the others its output (384).
    shapes = {n.split(".ia3_l")[0].rsplit(".", 1)[-1]: tuple(trained.before[n].shape) for n in vectors}
    assert shapes == {"key": (384, 1), "value": (384, 1), "dense": (1, 1536)}


def test_ia3_on_llama_scales_k_v_and_down_proj(tiny_decoder):
    trained = train_a_few_steps("ia3", ref=tiny_llama(tiny_decoder), lr=5e-2)
    vectors = {n for n in trained.changed if ".ia3_l." in n}
    assert adapted_modules(vectors, "ia3_l") == {"k_proj", "v_proj", "down_proj"}
    assert trained.changed == vectors | head_parameters(trained.changed)


def test_ia3_with_named_modules():
    trained = train_a_few_steps("ia3", {"target_modules": ["value"], "feedforward_modules": []}, lr=5e-2)
    assert adapted_modules({n for n in trained.changed if ".ia3_l." in n}, "ia3_l") == {"value"}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"target_modules": ["key"]}, "together"),
        (
            {"target_modules": ["key"], "feedforward_modules": ["dense"]},
            r"\['dense'\] are not in target_modules",
        ),
    ],
)
def test_inconsistent_module_lists_are_refused(bad: dict, message: str):
    with pytest.raises(ValueError, match=message):
        Ia3Params(**bad)
