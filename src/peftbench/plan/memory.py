"""GPU memory a run needs, estimated before submission: `peftbench plan` and the submit check.

Per GPU, the estimate adds up
- weights: 2 bytes per parameter in bf16/fp16 runs, 4 in fp32 (frozen and trainable alike);
- training state of each trainable parameter: DeepSpeed's accounting, 16 bytes more in mixed
  precision (fp32 master copy, Adam's two moments, gradients), 12 in fp32 (gradient + moments);
- sharding by engine over N GPUs: none/ddp keep everything on every GPU; zero2 shards the training
  state; zero3 and fsdp shard weights too, and each GPU gathers the largest layer whole (4 bytes
  per parameter of it); zero3_offload keeps only that gathered layer on the GPU. For full
  fine-tuning under ZeRO-3 this is exactly DeepSpeed's `estimate_zero3_model_states_mem_needs`
  (18 bytes per parameter ÷ N + 4 × largest layer);
- activations of the larger of a training micro-batch and an evaluation batch, counted in the
  sequences the model is actually given: batch × sequences per example × max length tokens,
  where a multiple-choice example is one sequence per choice (COPA 2, CommonsenseQA 5; a
  log-likelihood scorer trains on the gold choice alone) and a cloze example one per candidate
  (`max_train_choices` in training, every one in evaluation: ASSUMED_SEQUENCES when the task does
  not bound them). Training (Korthikanti et al. 2022, with a fused attention kernel that stores no
  score matrix): 34 · tokens · hidden bytes per layer in 16-bit (twice that in fp32); with
  gradient checkpointing one layer's worth plus 2 bytes per layer input; plus fp32 logits and
  their gradient for language-model heads (tokens · vocab · 8 bytes; text-generating tasks and
  log-likelihood choice scoring, not a decoder's classification head). Evaluation (no gradients,
  `eval_batch_size`): one layer's worth at a time, plus fp32 logits (4 bytes) for LM heads;
  generation and instruction tasks then generate their answers, which keeps a key-value cache for
  every sequence of the batch (plan/generation_memory.py): the evaluation is the larger of that
  loss pass and the prompt's pass with the cache and the last position's logits. Training state
  stays on the GPU while the final evaluation runs (the Trainer keeps its optimizer), so the
  evaluation peak is weights + training state + evaluation activations, beside the training peak.
Parameter counts come from the model's config alone (its folder, the HF cache or the table shipped
in `models/shapes.json`; never the network), built on torch's meta device (the method is
applied there too, so LoRA's trainable count is exact), so no weights are read. A run fits when the
estimate stays under FILL_FRACTION of the GPU's memory (the rest: CUDA context, allocator
fragmentation, temporary buffers).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peftbench.core.engines import SCALE_OVER_GPUS, WEIGHTS_SLICED_ON_GPUS
from peftbench.plan.generation_memory import config_int, generation_bytes

if TYPE_CHECKING:
    from peftbench.core.spec import ModelRef, RunSpec, TaskSpec


GB = 10**9


FILL_FRACTION = 0.9

ASSUMED_SEQUENCES = 32
"""Sequences per example assumed where the task does not bound them: a cloze_choice task (ReCoRD,
`slo_record`) without `max_train_choices` scores every candidate entity of its passage, and in
evaluation always does; a multiple_choice task with a `choices_column` and no `labels`.

An assumption, not a measured statistic: no copy of ReCoRD is on the machine this was written on
to count, and the test fixture (hand-written short passages, at most 6 candidates) is no guide. A
ReCoRD passage is a news article's summary, and every distinct entity it names (people, places,
organisations) is a candidate; the collator pads every example of a batch to the
batch's *most* candidates, so a batch costs its longest candidate list, not the mean one. 32 is a
round figure meant to sit above a typical batch's longest list, chosen to err on the side of
refusing; the planner says it assumed it (plan.sweep_plan.assumed_sequences), and a sweep bounds
training with `max_train_choices` (evaluation still scores every candidate)."""


@dataclass(frozen=True)
class ParameterCount:
    total: int
    largest_layer: int  # the biggest single weight tensor (usually the embedding)


def count_from_config(config: Any) -> ParameterCount:
    """Exact parameter counts of a transformers config, without allocating any weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = (
        AutoModelForCausalLM
        if getattr(config, "is_decoder", False) or _is_causal(config)
        else (AutoModelForSequenceClassification)
    )
    with torch.device("meta"):
        model = auto.from_config(config)
    sizes = {id(p): p.numel() for p in model.parameters()}  # tied weights counted once
    return ParameterCount(total=sum(sizes.values()), largest_layer=max(sizes.values()))


def _is_causal(config: Any) -> bool:
    return any(a.endswith("ForCausalLM") for a in getattr(config, "architectures", None) or [])


def zero3_model_states_bytes(
    params: ParameterCount, gpus_per_node: int, nodes: int = 1, offload: bool = False
) -> int:
    """Per-GPU bytes of ZeRO-3 model states (fp16/bf16 weights + grads, fp32 master, Adam moments).

    With CPU offload of parameters and optimizer, only the largest layer's gathered copy stays on GPU.
    """
    gathered = 4 * params.largest_layer
    if offload:
        return gathered
    return gathered + 18 * params.total // (gpus_per_node * nodes)


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU bytes of one run, by part."""

    weights: int
    training_state: int  # gradients and optimizer states of the trainable parameters
    activations: int
    gpus: int
    backend: str
    trainable: int
    total_params: int
    evaluation_bound: bool = False  # the activations are the evaluation batch's (eval_batch_size)
    training_activations: int = 0
    evaluation_activations: int = 0  # generating tasks: the key-value cache included
    kv_cache: int = 0  # of generating the evaluation's answers (plan/generation_memory.py)

    @property
    def total(self) -> int:
        return self.weights + self.training_state + self.activations

    @property
    def training_peak(self) -> int:
        return self.weights + self.training_state + self.training_activations

    @property
    def evaluation_peak(self) -> int:
        return self.weights + self.training_state + self.evaluation_activations


def estimate_run(
    run: RunSpec,
    config: Any,
    gpus: int,
    backend: str | None = None,
    trainable: int | None = None,
    params: ParameterCount | None = None,
) -> MemoryEstimate:
    """Per-GPU memory of `run` on `gpus` GPUs (default: its own world size and engine).

    `params` and `trainable`, when given, are the counts already made for this model and method
    (counting builds the model on the meta device: the slow part of planning).
    """
    backend = backend or run.training.engine
    params = count_from_config(config) if params is None else params
    trainable = trainable_from_config(run, config) if trainable is None else trainable
    mixed = run.training.precision in ("auto", "bf16", "fp16")
    weight_bytes, state_bytes = (2, 16) if mixed else (4, 12)
    weights, state = weight_bytes * params.total, state_bytes * trainable
    gathered = 4 * params.largest_layer
    if backend == "zero2":
        state //= gpus
    elif backend in WEIGHTS_SLICED_ON_GPUS:
        weights, state = weights // gpus + gathered, state // gpus
    elif backend == "zero3_offload":
        weights, state = gathered, 0
    training = training_activation_bytes(run, config, mixed)
    evaluation = evaluation_activation_bytes(run, config, mixed, backend)
    return MemoryEstimate(
        weights=weights,
        training_state=state,
        activations=max(training, evaluation),
        gpus=gpus,
        backend=backend,
        trainable=trainable,
        total_params=params.total,
        evaluation_bound=evaluation > training,
        training_activations=training,
        evaluation_activations=evaluation,
        kv_cache=generation_bytes(run, config, backend),
    )


def activation_bytes(run: RunSpec, config: Any, mixed: bool) -> int:
    """Bytes of activations at the larger of the training micro-batch and the evaluation batch."""
    return max(training_activation_bytes(run, config, mixed), evaluation_activation_bytes(run, config, mixed))


def training_activation_bytes(run: RunSpec, config: Any, mixed: bool) -> int:
    """Activations kept for the backward pass of one micro-batch (module docstring)."""
    training = run.training
    hidden = config_int(config, "hidden_size", "d_model", "n_embd")
    layers = config_int(config, "num_hidden_layers", "num_layers", "n_layer")
    per_token_layer = _per_token_layer(config, mixed)
    tokens = training.batch_size * forwarded_sequences(run.task, training=True) * training.max_length
    if training.uses_gradient_checkpointing:
        saved = tokens * (per_token_layer + 2 * hidden * layers)
    else:
        saved = tokens * per_token_layer * layers
    logits = tokens * getattr(config, "vocab_size", 0) * 8 if _lm_head(run) else 0
    return saved + logits


def evaluation_activation_bytes(run: RunSpec, config: Any, mixed: bool, backend: str | None = None) -> int:
    """Activations of one evaluation batch: a forward pass without gradients keeps no layer's
    activations once the next layer has its input, so one layer's training figure at a time (an
    upper bound of what a layer holds at once), plus the LM head's fp32 logits without gradient.
    Generating tasks: the larger of that and generating (the prompts' pass, one layer at a time,
    beside the key-value cache and the last position's logits: plan/generation_memory.py).
    """
    training = run.training
    batch = training.eval_batch_size * forwarded_sequences(run.task, training=False)
    tokens = batch * training.max_length
    logits = tokens * getattr(config, "vocab_size", 0) * 4 if _lm_head(run) else 0
    loss_pass = tokens * _per_token_layer(config, mixed) + logits
    return max(loss_pass, generating_bytes(run, config, mixed, backend or training.engine))


def generating_bytes(run: RunSpec, config: Any, mixed: bool, backend: str) -> int:
    """Generating one evaluation batch's answers: the prompts' pass, one layer at a time, beside the
    key-value cache and the last position's logits (plan/generation_memory.py); 0 for task types
    that do not generate."""
    cache_and_logits = generation_bytes(run, config, backend)
    if not cache_and_logits:
        return 0
    training = run.training
    prompts = training.eval_batch_size * max(training.max_length - training.effective_max_new_tokens, 1)
    return prompts * _per_token_layer(config, mixed) + cache_and_logits


def forwarded_sequences(task: TaskSpec, training: bool) -> int:
    """Sequences one example puts through the model (its task type says), ASSUMED_SEQUENCES where
    the task does not bound them."""
    count = assumed_or_counted(task, training)
    return ASSUMED_SEQUENCES if count is None else count


def assumed_or_counted(task: TaskSpec, training: bool) -> int | None:
    """The task type's own count of sequences per example; None where it cannot tell."""
    from peftbench.tasks import TASK_TYPES

    return TASK_TYPES[task.type].sequences_per_example(task, training)


def _per_token_layer(config: Any, mixed: bool) -> int:
    return 34 * config_int(config, "hidden_size", "d_model", "n_embd") * (1 if mixed else 2)


def _lm_head(run: RunSpec) -> bool:
    """Whether the model ends in a language-model head (logits over the vocabulary at every position):
    text-generating tasks and log-likelihood choice scoring. Classification, choice and cloze heads
    on a decoder score from its last hidden state, with a few outputs."""
    return run.task.type in ("generation", "instruction") or (
        run.task.type == "multiple_choice" and run.task.scoring == "loglikelihood"
    )


def trainable_from_config(run: RunSpec, config: Any) -> int:
    """Parameters the run's method trains, counted by applying it to the model on the meta device.

    Methods that cannot be applied without real weights or a tokenizer (prompt tuning from a text)
    fall back to every parameter for a method that trains all weights and 1% of them otherwise.
    """
    import torch

    from peftbench.methods import METHODS
    from peftbench.models.families import FAMILY_TRAITS
    from peftbench.models.loading import LoadedModel

    method = METHODS[run.method]
    model = meta_model(config)
    total = sum({id(p): p.numel() for p in model.parameters()}.values())
    causal = _is_causal(config)
    loaded = LoadedModel(
        model=model,
        source_path=run.model.source,
        head_modules=(),
        peft_task_type="CAUSAL_LM" if causal else "SEQ_CLS",
        traits=FAMILY_TRAITS[run.model.family],
    )
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = method.prepare(loaded, method.Params.model_validate(run.params))
        return sum({id(p): p.numel() for p in prepared.parameters() if p.requires_grad}.values())
    except Exception:
        return total if method.traits.trains_all_weights else total // 100


def meta_model(config: Any) -> Any:
    """The model a config describes, built on torch's meta device: its modules and shapes, no weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = AutoModelForCausalLM if _is_causal(config) else AutoModelForSequenceClassification
    with torch.device("meta"):
        return auto.from_config(config)


@dataclass(frozen=True)
class Fit:
    """Whether a run fits a GPU, and the smallest change that makes it fit when it does not."""

    estimate: MemoryEstimate
    gpu_bytes: int
    suggestion: str | None

    @property
    def fits(self) -> bool:
        return self.estimate.total <= FILL_FRACTION * self.gpu_bytes


def fit_on(
    run: RunSpec,
    config: Any,
    gpu_bytes: int,
    gpus_per_node: int,
    max_nodes: int = 8,
    params: ParameterCount | None = None,
    trainable: int | None = None,
) -> Fit:
    """The run's estimate on its own GPUs; when it does not fit, the smallest GPU count (same engine,
    or ZeRO-3 for an unsharded one), else a smaller per-device batch with gradient accumulation (and
    checkpointing), else ZeRO-3 offload that does. Where only the evaluation does not fit, first the
    largest evaluation batch that does. The model is counted once."""
    params = count_from_config(config) if params is None else params
    trainable = trainable_from_config(run, config) if trainable is None else trainable
    estimate = estimate_run(run, config, run.world_size, trainable=trainable, params=params)
    if estimate.total <= FILL_FRACTION * gpu_bytes:
        return Fit(estimate, gpu_bytes, None)
    smaller_eval = smaller_eval_batch(run, config, estimate, gpu_bytes, params, trainable)
    if smaller_eval is not None:
        return Fit(estimate, gpu_bytes, smaller_eval)
    backend = estimate.backend if estimate.backend in SCALE_OVER_GPUS else "zero3"
    for gpus in range(1, gpus_per_node * max_nodes + 1):
        trial = estimate_run(run, config, gpus, backend, trainable=trainable, params=params)
        if trial.total <= FILL_FRACTION * gpu_bytes:
            nodes = -(-gpus // gpus_per_node)
            per_node = -(-gpus // nodes)
            return Fit(estimate, gpu_bytes, f"distributed: {backend} with gpus: {per_node}, nodes: {nodes}")
    smaller = smaller_batch(run, config, gpu_bytes, params=params, trainable=trainable)
    return Fit(estimate, gpu_bytes, smaller or _offload_or_nothing(run, config, estimate, gpu_bytes, params))


def _offload_or_nothing(
    run: RunSpec, config: Any, estimate: MemoryEstimate, gpu_bytes: int, params: ParameterCount
) -> str:
    """The last suggestions: ZeRO-3 offload where it fits, else what to shorten."""
    offload = estimate_run(run, config, 1, "zero3_offload", trainable=estimate.trainable, params=params)
    if offload.total <= FILL_FRACTION * gpu_bytes:
        return "distributed: zero3_offload (CPU holds weights and optimizer)"
    if estimate.evaluation_bound:
        return "nothing fits: lower eval_batch_size or shorten max_length"
    return "nothing fits: shorten max_length or batch_size, or use gradient_checkpointing"


def smaller_eval_batch(
    run: RunSpec,
    config: Any,
    estimate: MemoryEstimate,
    gpu_bytes: int,
    params: ParameterCount,
    trainable: int,
) -> str | None:
    """The largest evaluation batch whose evaluation fits the run's own GPUs, halving from the run's
    as a run halves it after out-of-memory (run/evaluation_oom.py); None where the evaluation is not
    what does not fit, or even 1 does not."""
    fits_training = estimate.training_peak <= FILL_FRACTION * gpu_bytes
    batch = run.training.eval_batch_size // 2 if estimate.evaluation_bound and fits_training else 0
    while batch >= 1:
        settings = run.training.model_copy(update={"eval_batch_size": batch})
        trial = estimate_run(
            run.model_copy(update={"training": settings}),
            config,
            run.world_size,
            trainable=trainable,
            params=params,
        )
        if trial.total <= FILL_FRACTION * gpu_bytes:
            peak = trial.evaluation_peak / GB
            return f"eval_batch_size: {batch} (evaluation peak about {peak:.1f} GB per GPU)"
        batch //= 2
    return None


def smaller_batch(
    run: RunSpec, config: Any, gpu_bytes: int, params: ParameterCount, trainable: int
) -> str | None:
    """The largest per-device batch that fits the run's own GPUs and engine, with the gradient
    accumulation that keeps its global batch, first as it is, then with gradient checkpointing.

    Activations grow with the per-device batch; weights and training state do not. A run refused for
    its activations (LoRA at 16 × 1024 tokens per GPU on a 7B model) fits this way without more GPUs.
    """
    t = run.training
    for batch, recompute in _smaller_shapes(run):
        shape = {"batch_size": batch, "gradient_checkpointing": recompute}
        trial = run.model_copy(update={"training": t.model_copy(update=shape)})
        estimate = estimate_run(trial, config, run.world_size, trainable=trainable, params=params)
        if estimate.total <= FILL_FRACTION * gpu_bytes:
            return _smaller_batch_advice(run, batch, recompute, estimate.total)
    return None


def _smaller_shapes(run: RunSpec) -> list[tuple[int, bool]]:
    """(per-device batch, gradient checkpointing) to try: each divisor of the batch, largest first,
    without recomputation and then with it; the run as it is is left out (already refused)."""
    t = run.training
    checkpointing = [False, True] if not t.uses_gradient_checkpointing else [True]
    batches = sorted((b for b in range(1, t.batch_size + 1) if t.batch_size % b == 0), reverse=True)
    as_it_is = (t.batch_size, t.uses_gradient_checkpointing)
    return [(b, r) for r in checkpointing for b in batches if (b, r) != as_it_is]


def _smaller_batch_advice(run: RunSpec, batch: int, recompute: bool, total: int) -> str:
    """What to change in the sweep file, and the global batch it keeps."""
    t = run.training
    global_batch = t.batch_size * t.gradient_accumulation_steps * run.world_size
    steps = t.gradient_accumulation_steps * t.batch_size // batch
    changes = [] if batch == t.batch_size else [f"batch_size: {batch}, gradient_accumulation_steps: {steps}"]
    if recompute and not t.uses_gradient_checkpointing:
        changes.append("gradient_checkpointing: true")
    return (
        f"{', '.join(changes)} (about "
        f"{total / GB:.1f} GB per GPU; global batch {batch} × {steps} × "
        f"{run.world_size} GPUs = {global_batch}, as before)"
    )


def load_model_config(ref: ModelRef) -> Any | None:
    """A model's transformers config from its folder or package, the HF cache or the shipped table of
    known models; None when none has it. Never goes to the network (`peftbench fetch` does that)."""
    from peftbench.models.shapes import planning_config

    return planning_config(ref)[0]
