"""GPU memory of generating the test answers, the part of a run's end training does not show.

Generation and instruction tasks evaluate by `generate` (tasks/generation.py: `generate_texts`, the
Trainer's `per_device_eval_batch_size` prompts at a time), which keeps a key-value cache for every
sequence of the batch. Per GPU it holds

    2 (K and V) · decoder layers · key-value heads · head size · bytes · batch · cached tokens

where the cached tokens are `max_length` for a decoder (the prompt gets `max_length -
max_new_tokens` of it, the answer the rest) and `max_length + max_new_tokens` for an
encoder-decoder (cross-attention keeps the encoder's `max_length` states, self-attention the
answer's). Grouped-query attention caches `num_key_value_heads` heads, not all of them. LLaMA-13B
in fp16 (40 layers, 40 heads of 128): 2 · 40 · 5,120 · 2 bytes ≈ 0.8 MB per token, ≈ 20 GB for 16 ×
1,536 tokens.

Bytes per cached value, by engine: `generate` runs outside the Trainer's autocast, so the cache has
the dtype of the weights it runs on. Weights load in fp32 (models/loading.py), and an unsharded run
(none, ddp) keeps them so even in bf16/fp16: 4 bytes. DeepSpeed (zero2/zero3/zero3_offload) holds
the model in bf16/fp16 in a mixed-precision run, and FSDP's mixed-precision policy (accelerate's
`param_dtype`) casts the gathered weights to it: 2 bytes. fp32 runs: 4 bytes everywhere. No engine
shards the cache: each process generates its own batch whole, sharded or not.

Beside the cache, generating materialises the logits of the last position only (transformers
computes `logits_to_keep=1` while generating), in fp32, and a sampled answer their probabilities:
`batch · vocab · 8` bytes. The prompt's forward pass (prefill) holds one layer's activations at a
time, as any evaluation batch; the loss pass over the same split (`split_loss`) is the ordinary
evaluation estimate (plan/memory.py). This module imports nothing of plan's other modules, so
memory.py can add it to every estimate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.core.engines import DEEPSPEED_BACKENDS

if TYPE_CHECKING:
    from peftbench.core.spec import RunSpec

GENERATING_TASK_TYPES = ("generation", "instruction")  # those that evaluate by `generate`


def config_int(config: Any, *names: str) -> int:
    """The first of `names` the config sets to an integer (configs name the same size differently)."""
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"{type(config).__name__} has none of {names}")


def cache_value_bytes(backend: str, precision: str) -> int:
    """Bytes of one cached key or value element under `backend` (module docstring)."""
    mixed = precision in ("auto", "bf16", "fp16")
    if not mixed:
        return 4
    return 2 if backend in (*DEEPSPEED_BACKENDS, "fsdp") else 4


def cached_tokens(run: RunSpec, config: Any) -> int:
    """Tokens each sequence of a generation batch keeps in the cache at its longest."""
    training = run.training
    if getattr(config, "is_encoder_decoder", False):
        return training.max_length + training.effective_max_new_tokens
    return training.max_length


def kv_bytes_per_token(config: Any, value_bytes: int) -> int:
    """Key-value cache bytes of one token over all decoder layers."""
    layers = config_int(
        config, "decoder_layers", "num_decoder_layers", "num_hidden_layers", "num_layers", "n_layer"
    )
    heads = config_int(config, "num_attention_heads", "decoder_attention_heads", "n_head", "num_heads")
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or getattr(config, "d_kv", None)  # T5: d_kv
    head_dim = head_dim or config_int(config, "hidden_size", "d_model", "n_embd") // heads
    return 2 * layers * kv_heads * head_dim * value_bytes


def generation_bytes(run: RunSpec, config: Any, backend: str, eval_batch_size: int | None = None) -> int:
    """Per-GPU bytes `generate` adds for `run` at `eval_batch_size` (default: the run's): the key-value
    cache and the last position's logits; 0 for task types that do not generate."""
    if run.task.type not in GENERATING_TASK_TYPES:
        return 0
    batch = eval_batch_size or run.training.eval_batch_size
    per_token = kv_bytes_per_token(config, cache_value_bytes(backend, run.training.precision))
    logits = batch * getattr(config, "vocab_size", 0) * 8
    return batch * cached_tokens(run, config) * per_token + logits
