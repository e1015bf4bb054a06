"""Everything peftbench knows about an architecture family (transformers `model_type`), in one table.

The methods read their per-family presets here (LoRA's `target_modules: attention`, IA3's modules),
the task types and the planner read the kind and traits: adding a family is one row.
"""

from __future__ import annotations

from dataclasses import dataclass

_BERT_ATTENTION = ("query", "key", "value")
_LLAMA_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
_BERT_FEEDFORWARD = (r"layer\.\d+\.output\.dense",)  # not attention.output.dense


@dataclass(frozen=True)
class FamilyTraits:
    """What the methods and task types need to know about an architecture family.

    `ia3_attention` and `ia3_feedforward` are module-name endings (regex) that IA3 rescales on
    their output and on their input; where a family fuses its attention projections into one layer
    (gpt2, gpt_neox, modernbert), that layer is scaled whole.
    """

    kind: str  # "encoder" | "decoder" | "seq2seq"
    has_biases: bool
    attention_modules: tuple[str, ...]  # LoRA's `target_modules: attention` preset
    ia3_attention: tuple[str, ...]
    ia3_feedforward: tuple[str, ...]
    takes_past_key_values: bool = True  # attention accepts a key/value prefix (prefix tuning needs it)


def _bert_like(kind: str = "encoder") -> FamilyTraits:
    return FamilyTraits(kind, True, _BERT_ATTENTION, ("key", "value"), _BERT_FEEDFORWARD)


def _llama_like(has_biases: bool) -> FamilyTraits:
    return FamilyTraits("decoder", has_biases, _LLAMA_ATTENTION, ("k_proj", "v_proj"), ("down_proj",))


FAMILY_TRAITS: dict[str, FamilyTraits] = {
    "bert": _bert_like(),
    "roberta": _bert_like(),
    "xlm-roberta": _bert_like(),
    "camembert": _bert_like(),
    "electra": _bert_like(),
    "deberta-v2": FamilyTraits(
        "encoder",
        True,
        ("query_proj", "key_proj", "value_proj"),
        ("key_proj", "value_proj"),
        _BERT_FEEDFORWARD,
        takes_past_key_values=False,
    ),
    "distilbert": FamilyTraits(
        "encoder",
        True,
        ("q_lin", "k_lin", "v_lin"),
        ("k_lin", "v_lin"),
        ("lin2",),
        takes_past_key_values=False,
    ),
    "modernbert": FamilyTraits(
        "encoder", False, ("Wqkv",), ("attn.Wqkv",), ("mlp.Wo",), takes_past_key_values=False
    ),
    "gpt2": FamilyTraits("decoder", True, ("c_attn",), ("c_attn",), (r"mlp\.c_proj",)),
    "gpt_neox": FamilyTraits("decoder", True, ("query_key_value",), ("query_key_value",), ("dense_4h_to_h",)),
    "llama": _llama_like(has_biases=False),
    "mistral": _llama_like(has_biases=False),
    "qwen2": _llama_like(has_biases=True),
    "gemma": _llama_like(has_biases=False),
    "t5": FamilyTraits("seq2seq", False, ("q", "k", "v", "o"), ("k", "v"), ("wo",)),
    "mt5": FamilyTraits("seq2seq", False, ("q", "k", "v", "o"), ("k", "v"), ("wo",)),
    "bart": FamilyTraits(
        "seq2seq", True, ("q_proj", "k_proj", "v_proj", "out_proj"), ("k_proj", "v_proj"), ("fc2",)
    ),
}


def family_traits(model_type: str, wanted: str) -> FamilyTraits:
    """The row of `model_type`, or a ValueError naming what `wanted` needs and the families known."""
    if model_type not in FAMILY_TRAITS:
        raise ValueError(
            f"{wanted} has no preset for model type {model_type!r} "
            f"(presets: {', '.join(sorted(FAMILY_TRAITS))})"
        )
    return FAMILY_TRAITS[model_type]
