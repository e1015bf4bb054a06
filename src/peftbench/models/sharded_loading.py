"""Loading a model under a sharded engine without any process holding the whole fp32 model first.

`from_pretrained` under DeepSpeed ZeRO-3 (transformers 5.23) reads every checkpoint file into one
state dict on rank 0 and converts it to fp32 before partitioning, and under FSDP every process reads
every weight (docs/benchmarks.md, "Sharded loading"). Two loaders here instead:

- ZeRO-3 (`load_streaming_zero3`): the model is built from its config under zero.Init, so every
  parameter is partitioned as it is created; then each parameter's tensor is read from the
  safetensors file(s) alone, cast to the parameter's dtype, and written inside
  `GatheredParameters([param], modifier_rank=0)`: only rank 0 reads, DeepSpeed broadcasts it and
  partitions it again. A process holds its shard plus one gathered weight at a time.
- FSDP (`build_on_meta`): processes other than rank 0 build the model on the meta device (no
  weight read at all); rank 0 loads as usual, and accelerate's `cpu_ram_efficient_loading`
  broadcasts rank 0's weights once the model is sharded. Rank 0 holds the whole model once.

Checkpoint names are matched to the model's the way `from_pretrained` matches them for a base or
`*ForMaskedLM`/`*ForCausalLM` checkpoint loaded into a model with another head: exactly, or with
or without the model's `base_model_prefix`. What the checkpoint lacks (the new head) is drawn
as `from_pretrained` draws it, from the same random state, and returned as the missing keys.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
MOST = 0.5  # refuse when more than this share of the model's weights finds no checkpoint tensor
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
SMALL_BLOCK = (
    128 * 2**10
)  # glibc's initial mmap threshold: larger blocks are mmap'ed, and unmapped when freed
LARGE_BLOCK = 32 * 2**20  # the most glibc's dynamic threshold rises to (64-bit)


def safetensors_files(path: str) -> list[Path] | None:
    """The checkpoint's safetensors files (one, or the shards its index names); None when the
    folder has none (a `.bin` checkpoint, a hub id): then `from_pretrained` loads it."""
    folder = Path(path)
    if (folder / SINGLE_FILE).is_file():
        return [folder / SINGLE_FILE]
    if (folder / INDEX_FILE).is_file():
        weight_map = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))["weight_map"]
        return [folder / name for name in sorted(set(weight_map.values()))]
    return None


def checkpoint_keys(files: list[Path]) -> dict[str, Path]:
    """Each tensor name of the checkpoint and the file holding it (headers only: no tensor is read)."""
    from safetensors import safe_open

    where: dict[str, Path] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as opened:
            where.update(dict.fromkeys(opened.keys(), file))
    return where


def _candidates(name: str, prefix: str) -> list[str]:
    """Checkpoint names that may hold model weight `name`: itself, and it without or with the prefix."""
    if not prefix:
        return [name]
    if name.startswith(f"{prefix}."):
        return [name, name.removeprefix(f"{prefix}.")]
    return [name, f"{prefix}.{name}"]


def match_parameters(model: nn.Module, keys: dict[str, Path]) -> tuple[dict[str, str], list[str]]:
    """{model parameter name: checkpoint name} for every parameter found, and the missing ones.

    Tied weights are one parameter under several names: it is matched once, by any of them."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    found: dict[str, str] = {}
    missing: list[str] = []
    for aliases in names.values():
        key = next((c for n in aliases for c in _candidates(n, prefix) if c in keys), None)
        if key is None:
            missing.append(aliases[0])
        else:
            found[aliases[0]] = key
    return found, missing


def _full_numel(param: Any) -> int:
    return int(getattr(param, "ds_numel", param.numel()))  # ZeRO-3 keeps the full size in ds_numel


def refuse_unmatched(model: nn.Module, path: str, found: dict[str, str], keys: dict[str, Path]) -> None:
    """Raise when most of the model's weights have no tensor in the checkpoint: training would start
    from a random model. The error names the checkpoint and a few names on either side."""
    params = dict(model.named_parameters())
    total = sum(_full_numel(p) for p in params.values())
    missing = [n for n in params if n not in found]
    if sum(_full_numel(params[n]) for n in missing) <= MOST * total:
        return
    raise ValueError(
        f"Checkpoint {path}: {len(missing)} of the model's {len(params)} weights have no tensor in "
        f"it (e.g. {', '.join(missing[:4])}); the checkpoint has {', '.join(sorted(keys)[:4])}, ... "
        f"Is it a checkpoint of this architecture ({type(model).__name__})?"
    )


def _tensors(found: dict[str, str], keys: dict[str, Path]) -> Iterator[tuple[str, Any]]:
    """(model name, checkpoint tensor) one at a time, each file opened once."""
    from safetensors import safe_open

    by_file: dict[Path, list[tuple[str, str]]] = {}
    for name, key in found.items():
        by_file.setdefault(keys[key], []).append((name, key))
    for file, pairs in by_file.items():
        with safe_open(str(file), framework="pt") as opened:
            for name, key in pairs:
                yield name, opened.get_tensor(key)


def config_and_model_kwargs(path: str, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The config `from_pretrained` would build (its keyword arguments applied) and the rest, which
    go to the model's constructor. A given `config=` is used as it is, as `from_pretrained` does."""
    from transformers import AutoConfig

    kwargs = dict(kwargs)
    config = kwargs.pop("config", None)
    if config is not None:
        return config, kwargs
    dtype = kwargs.pop("dtype", None)
    config, rest = AutoConfig.from_pretrained(path, return_unused_kwargs=True, **kwargs)
    return config, {**rest, **({"dtype": dtype} if dtype is not None else {})}


def from_config(model_class: Any, config: Any, **kwargs: Any) -> nn.Module:
    """`model_class` built from `config` (an Auto class or a concrete PreTrainedModel subclass); under
    ZeRO-3 transformers builds it inside zero.Init."""
    if hasattr(model_class, "_model_mapping"):  # AutoModelFor...
        return model_class.from_config(config, **kwargs)
    return model_class._from_config(config, **kwargs)


def load_streaming_zero3(model_class: Any, path: str, kwargs: dict[str, Any]) -> tuple[nn.Module, list[str]]:
    """The model partitioned under ZeRO-3 with the checkpoint's weights, read one tensor at a time on
    rank 0 only; and the missing parameter names (the new head, drawn as from_pretrained draws it)."""
    import deepspeed
    import torch
    import torch.distributed as dist

    files = safetensors_files(path)
    if files is None:
        raise ValueError(f"{path} has no {SINGLE_FILE} or {INDEX_FILE}")
    from transformers.initialization import no_init_weights

    config, model_kwargs = config_and_model_kwargs(path, kwargs)
    drawn_from = torch.get_rng_state()
    with no_init_weights():  # as from_pretrained builds it: nothing drawn for weights about to be read
        model = from_config(model_class, config, **model_kwargs)
    keys = checkpoint_keys(files)
    found, missing = match_parameters(model, keys)
    refuse_unmatched(model, path, found, keys)
    params = dict(model.named_parameters())
    reader = dist.get_rank() == 0
    tensors = _tensors(found, keys) if reader else ((name, None) for name in found)
    with torch.no_grad():
        for name, tensor in tensors:
            param = params[name]
            with deepspeed.zero.GatheredParameters([param], modifier_rank=0):
                if tensor is None:
                    continue
                if tuple(tensor.shape) != tuple(param.shape):
                    raise ValueError(
                        f"Checkpoint {path}: {found[name]} has shape {tuple(tensor.shape)}, "
                        f"the model's {name} {tuple(param.shape)}"
                    )
                param.copy_(tensor.to(param.dtype))
                del tensor
        _copy_buffers(model, keys)
    # The weights the checkpoint lacks (the new head) are drawn as from_pretrained draws them, from
    # the same random state and in the same order: a ZeRO-3 run starts from the model a DDP run of
    # the same seed starts from (transformers initialises what is not marked as loaded, gathered).
    for module in model.modules():  # built under no_init_weights: every module was marked as done
        module._is_hf_initialized = False
    for name in found:
        params[name]._is_hf_initialized = True
    torch.set_rng_state(drawn_from)
    model._initialize_missing_keys(is_quantized=False)
    # Every rank goes on from rank 0's state, so that what is drawn next (a LoRA init) is the same
    # on every rank.
    torch.set_rng_state(from_rank_0(torch.get_rng_state()))
    return model, missing


def _copy_buffers(model: nn.Module, keys: dict[str, Path]) -> None:
    """The checkpoint's persistent buffers, on every rank (ZeRO-3 does not partition buffers)."""
    from safetensors import safe_open

    prefix = getattr(model, "base_model_prefix", "") or ""
    persistent = set(model.state_dict(keep_vars=True)) - {n for n, _ in model.named_parameters()}
    for name, buffer in model.named_buffers():
        key = next((c for c in _candidates(name, prefix) if c in keys), None)
        if name not in persistent or key is None:
            continue
        with safe_open(str(keys[key]), framework="pt") as opened:
            buffer.copy_(opened.get_tensor(key).to(buffer.dtype))
        buffer._is_hf_initialized = True  # read: not to be initialised again


def build_on_meta(model_class: Any, path: str, kwargs: dict[str, Any]) -> nn.Module:
    """The model on the meta device (no weight read, no memory), its non-persistent buffers real.

    accelerate keeps each process's own non-persistent buffers (RoPE's inv_freq, BERT's position
    ids: not in the state dict, so not broadcast); they are made on the CPU and computed by the
    model's own init, as `from_pretrained` does for FSDP's non-first processes."""
    import torch

    config, model_kwargs = config_and_model_kwargs(path, kwargs)
    with torch.device("meta"):
        model = from_config(model_class, config, **model_kwargs)
    for name, buffer in list(model.named_non_persistent_buffers()):
        owner, _, leaf = name.rpartition(".")
        model.get_submodule(owner).register_buffer(
            leaf, torch.zeros_like(buffer, device="cpu"), persistent=False
        )
    model.initialize_weights()
    return model


def from_rank_0(value: Any) -> Any:
    """Rank 0's `value` on every process (a collective: every rank calls it)."""
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def freed_weights_returned() -> Iterator[None]:
    """While loading, every freed weight goes back to the system at once (glibc only; elsewhere a no-op).

    Sharded loading makes and frees one whole weight after another (zero.Init builds a module whole
    then partitions it; gathering a weight to write it makes it whole again). glibc keeps a freed
    block below its dynamic mmap threshold, which rises up to 32 MiB, in the heap: each process
    then kept about one more fp32 copy of every weight under 32 MiB (measured: 1.4-1.6 x the fp32
    model at 60M parameters instead of 0.6 x). A 13B model's weights are mostly above 32 MiB and were
    returned anyway; a fixed threshold makes small models behave the same. Afterwards the
    threshold stays at 32 MiB (where the dynamic one ends up) and the heap is trimmed.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018  (glibc: both exist)
    except (OSError, AttributeError):
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, SMALL_BLOCK)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK)
        libc.malloc_trim(0)


def sharded_engine(path: str, kwargs: dict[str, Any]) -> str | None:
    """ "zero3" or "fsdp" when that engine is on and loads sharded here, else None.

    ZeRO-3: transformers' own switch (the Trainer arguments' DeepSpeed config is alive). FSDP:
    `is_fsdp_enabled()` (the process group formed, ACCELERATE_USE_FSDP and
    FSDP_CPU_RAM_EFFICIENT_LOADING set by the Trainer arguments) on an accelerator. Only plain
    safetensors without a quantization config qualify; anything else goes through `from_pretrained`."""
    from transformers.integrations import is_deepspeed_zero3_enabled, is_fsdp_enabled

    if "quantization_config" in kwargs or "gguf_file" in kwargs or safetensors_files(path) is None:
        return None
    if is_deepspeed_zero3_enabled():
        return "zero3"
    return "fsdp" if is_fsdp_enabled() and accelerate_shards_here() else None


def accelerate_shards_here() -> bool:
    """Whether accelerate will shard the model with FSDP in this process: only on an accelerator.

    On CPU processes accelerate takes a multi-process run as MULTI_CPU (DDP) whatever the FSDP
    plugin says; the Trainer then moves each rank's model as it is, which a model on the meta
    device cannot survive, so there every rank loads the whole model."""
    from accelerate import PartialState

    return PartialState().device.type != "cpu"


def load_sharded(
    model_class: Any, path: str, kwargs: dict[str, Any], load_whole: Any
) -> tuple[nn.Module, list[str]]:
    """The model and its missing parameter names, loaded as the active engine allows.

    `load_whole()` is the ordinary load (`from_pretrained`), returning the same pair: used without a
    sharded engine, and by FSDP's rank 0, whose missing keys every rank then takes (the methods must
    wrap the same head on every rank)."""
    import torch.distributed as dist

    engine = sharded_engine(path, kwargs)
    if engine is None:
        return load_whole()
    with freed_weights_returned():
        if engine == "zero3":
            return load_streaming_zero3(model_class, path, kwargs)
        first = dist.get_rank() == 0
        model, missing = load_whole() if first else (build_on_meta(model_class, path, kwargs), [])
    return model, from_rank_0(sorted(missing))
