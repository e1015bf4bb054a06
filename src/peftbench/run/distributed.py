"""Data-parallel and sharded training through the existing engines: DDP, FSDP, DeepSpeed ZeRO.

A run learns its place in the job from the torch.distributed environment variables (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): on Slurm the launcher exports them from
submitit's TorchDistributedEnvironment in every task; `torchrun` sets them too. The engine is
handed to the Hugging Face Trainer (`deepspeed=` a resolved config, or `fsdp=` + `fsdp_config`);
nothing here is parallelism of our own.

The engine settings live in `engine_configs/` (also reachable as `configs/distributed/`). Their
"auto" values are resolved here, from the run's settings and the model, before the Trainer sees
them, so that the config that ran is the config recorded, tested against DeepSpeed's own parser
and compared with a golden file.
"""

from __future__ import annotations

import copy
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.core.engines import DEEPSPEED_BACKENDS

if TYPE_CHECKING:
    from peftbench.core.spec import TrainingSettings


ENGINE_CONFIGS = Path(__file__).parent / "engine_configs"


ADAM_BETAS = (0.9, 0.999)  # the Trainer's defaults, which the DeepSpeed optimizer must match


ADAM_EPSILON = 1e-8


MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class ProcessPlace:
    """This process's place in a (possibly one-process) job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_place(environ: dict[str, str] | None = None) -> ProcessPlace:
    env = os.environ if environ is None else environ
    return ProcessPlace(
        rank=int(env.get("RANK", 0)),
        local_rank=int(env.get("LOCAL_RANK", 0)),
        world_size=int(env.get("WORLD_SIZE", 1)),
    )


def max_over_ranks(value: int | None) -> int | None:
    """The largest `value` of all processes (peak memory of the run); `value` itself in one process."""
    import torch
    import torch.distributed as dist

    if value is None or not _several_processes():
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def hosts_of_ranks() -> list[str]:
    """Every process's host name, in rank order (a collective: every rank must call it)."""
    import torch.distributed as dist

    host = socket.gethostname()
    if not _several_processes():
        return [host]
    hosts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(hosts, host)
    return [str(h) for h in hosts]


def sum_over_ranks(value: float | None) -> float | None:
    """The sum of `value` over all processes (energy of the run's GPUs); `value` itself in one process.
    None on any rank (no counter there) is None for all."""
    import torch
    import torch.distributed as dist

    if not _several_processes():
        return value
    mark = float("nan") if value is None else value
    tensor = torch.tensor([mark], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    total = float(tensor.item())
    return None if total != total else total


def _several_processes() -> bool:
    """Whether torch.distributed is up with more than this process (else a collective is a no-op)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() != 1


def _collective_device() -> Any:
    """Where a collective's tensor lives: this process's GPU under NCCL, the CPU under gloo."""
    import torch

    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else None


def ensure_process_group_env() -> None:
    """Give a lone process the variables an engine needs to form a world of one.

    DeepSpeed and FSDP always initialise torch.distributed; a run started by hand or by the local
    launcher has no launcher to set RANK and friends, so this sets them for a single process.
    """
    if "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(
        RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )


def join_deepspeed_group() -> None:
    """Form DeepSpeed's process group now, before the model loads.

    ZeRO-3's zero.Init (which from_pretrained enters) reads the world size from DeepSpeed's own
    comm layer; formed later by the Trainer, it would still see a world of one and reject the
    batch sizes. gloo on CPU, NCCL on GPUs.
    """
    import deepspeed
    import torch

    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")


def announce_fsdp() -> None:
    """Say FSDP is on before the model loads, as `accelerate launch --use_fsdp` does
    (ACCELERATE_USE_FSDP); the Trainer's Accelerator would say it only after loading.

    With the process group formed (by the Trainer arguments) and `cpu_ram_efficient_loading` (which
    the arguments export as FSDP_CPU_RAM_EFFICIENT_LOADING), transformers' `is_fsdp_enabled()` is
    then true while loading: processes other than rank 0 build the model on the meta device and
    accelerate broadcasts rank 0's weights when it shards the model (models/sharded_loading.py).
    Not on CPU: accelerate runs FSDP there as DDP, and a rank's model left on meta (transformers
    leaves a new head there too) cannot be moved.
    """
    from peftbench.models import sharded_loading

    if sharded_loading.accelerate_shards_here():
        os.environ["ACCELERATE_USE_FSDP"] = "true"


def engine_template(backend: str) -> dict[str, Any]:
    """The shipped settings of an engine, "auto" values unresolved."""
    name = "fsdp" if backend == "fsdp" else backend
    return json.loads((ENGINE_CONFIGS / f"{name}.json").read_text(encoding="utf-8"))


def deepspeed_config(
    backend: str, training: TrainingSettings, world_size: int, hidden_size: int | None, precision: str
) -> dict[str, Any]:
    """A DeepSpeed config with every "auto" resolved from the run, as the Trainer would resolve it.

    `precision` is the resolved one ("bf16", "fp16" or "fp32"). The bucket sizes follow the
    Trainer's rule (hidden², 0.9 hidden², 10 hidden); without a hidden size they stay DeepSpeed's
    defaults (the keys are dropped).
    """
    config = copy.deepcopy(engine_template(backend))
    values: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": training.batch_size,
        "gradient_accumulation_steps": training.gradient_accumulation_steps,
        "train_batch_size": world_size * training.batch_size * training.gradient_accumulation_steps,
        "gradient_clipping": MAX_GRAD_NORM,
        "bf16.enabled": precision == "bf16",
        "fp16.enabled": precision == "fp16",
        "optimizer.params.lr": training.learning_rate,
        "optimizer.params.betas": list(ADAM_BETAS),
        "optimizer.params.eps": ADAM_EPSILON,
        "optimizer.params.weight_decay": training.weight_decay,
    }
    if hidden_size is not None:
        values |= {
            "zero_optimization.reduce_bucket_size": hidden_size * hidden_size,
            "zero_optimization.stage3_prefetch_bucket_size": int(0.9 * hidden_size * hidden_size),
            "zero_optimization.stage3_param_persistence_threshold": 10 * hidden_size,
        }
    _resolve_auto(config, values, "")
    return config


def _resolve_auto(node: dict[str, Any], values: dict[str, Any], prefix: str) -> None:
    for key in list(node):
        path = f"{prefix}{key}"
        if isinstance(node[key], dict):
            _resolve_auto(node[key], values, f"{path}.")
        elif node[key] == "auto":
            if path in values:
                node[key] = values[path]
            else:
                del node[key]  # an "auto" we cannot know: DeepSpeed's own default applies


def fsdp_arguments(model_config: Any) -> dict[str, Any]:
    """`fsdp` and `fsdp_config` for TrainingArguments: the model's own blocks are the wrap units."""
    settings = copy.deepcopy(engine_template("fsdp"))
    config = settings["fsdp_config"]
    if config.get("transformer_layer_cls_to_wrap") == "auto":
        config["transformer_layer_cls_to_wrap"] = wrap_classes(model_config)
    return {"fsdp": settings["fsdp"], "fsdp_config": config}


def wrap_classes(model_config: Any) -> list[str]:
    """The transformer block classes of an architecture (its `_no_split_modules`), from its config."""
    from transformers import AutoModel

    names = getattr(AutoModel._model_mapping[type(model_config)], "_no_split_modules", None)
    if not names:
        raise ValueError(f"{model_config.model_type} names no transformer block class to wrap with FSDP")
    return sorted(set(names))


def engine_arguments(
    backend: str | None, training: TrainingSettings, model_config: Any, world_size: int, precision: str
) -> dict[str, Any]:
    """The TrainingArguments keywords that select the engine (empty for none and plain DDP).

    Built from the model's config, before the model loads: with ZeRO-3 the TrainingArguments must
    exist first, so that `from_pretrained` partitions the weights as it reads them (zero.Init).
    """
    if backend in DEEPSPEED_BACKENDS:
        hidden = getattr(model_config, "hidden_size", None)
        return {"deepspeed": deepspeed_config(backend, training, world_size, hidden, precision)}
    if backend == "fsdp":
        return fsdp_arguments(model_config)
    return {}
