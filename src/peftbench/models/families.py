"""What the methods and task types need to know about an architecture family, in one table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FamilyTraits:
    """What the methods and task types need to know about an architecture family."""

    kind: str  # "encoder" | "decoder" | "seq2seq"
    has_biases: bool
    takes_past_key_values: bool = True  # attention accepts a key/value prefix (prefix tuning needs it)


FAMILY_TRAITS: dict[str, FamilyTraits] = {
    "bert": FamilyTraits("encoder", True),
    "roberta": FamilyTraits("encoder", True),
    "xlm-roberta": FamilyTraits("encoder", True),
    "camembert": FamilyTraits("encoder", True),
    "electra": FamilyTraits("encoder", True),
    "deberta-v2": FamilyTraits("encoder", True, takes_past_key_values=False),
    "distilbert": FamilyTraits("encoder", True, takes_past_key_values=False),
    "modernbert": FamilyTraits("encoder", False, takes_past_key_values=False),
    "gpt2": FamilyTraits("decoder", True),
    "gpt_neox": FamilyTraits("decoder", True),
    "llama": FamilyTraits("decoder", False),
    "mistral": FamilyTraits("decoder", False),
    "qwen2": FamilyTraits("decoder", True),
    "gemma": FamilyTraits("decoder", False),
    "t5": FamilyTraits("seq2seq", False),
    "mt5": FamilyTraits("seq2seq", False),
    "bart": FamilyTraits("seq2seq", True),
}
