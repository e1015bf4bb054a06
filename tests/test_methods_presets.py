"""Every family's module presets (LoRA 'attention', IA3) name modules its real architecture has.

Each family is built from its transformers config on the meta device: the real module tree,
no weights, no download.
"""

from __future__ import annotations

import re

import pytest
import torch

from peftbench.methods.ia3 import ending_pattern
from peftbench.models.families import FAMILY_TRAITS


def module_names(family: str) -> list[str]:
    from transformers import AutoConfig, AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(AutoConfig.for_model(family))
    return [name for name, module in model.named_modules() if not list(module.children())]


@pytest.mark.parametrize("family", sorted(FAMILY_TRAITS))
def test_presets_match_modules_of_the_family(family: str):
    names = module_names(family)
    traits = FAMILY_TRAITS[family]
    for module in traits.attention_modules:
        assert any(n == module or n.endswith(f".{module}") for n in names), f"{family}: no module {module}"
    attention, feedforward = traits.ia3_attention, traits.ia3_feedforward
    for ending in (*attention, *feedforward):
        assert any(re.fullmatch(ending_pattern([ending]), f".{n}") for n in names), f"{family}: {ending}"
    ffn = [n for n in names if re.fullmatch(ending_pattern(feedforward), f".{n}")]
    assert ffn and not any("attention" in n or "attn" in n for n in ffn), f"{family}: {ffn}"
