"""The engines a run can train under, named once: for the schema, the planner, the run and the benchmarks."""

from __future__ import annotations

import typing
from typing import Literal

Engine = Literal["none", "ddp", "fsdp", "zero2", "zero3", "zero3_offload"]
BACKENDS: tuple[str, ...] = typing.get_args(Engine)
MULTI_PROCESS_BACKENDS = tuple(b for b in BACKENDS if b != "none")  # what shares one run's work
DEEPSPEED_BACKENDS = ("zero2", "zero3", "zero3_offload")
SHARDED = ("fsdp", "zero3", "zero3_offload")  # each process holds a slice of every weight
# The planner's subsets: weights sliced over the GPUs and kept on them (offload moves them to the
# host), and the engines whose per-GPU memory falls as GPUs are added (a suggestion keeps them).
WEIGHTS_SLICED_ON_GPUS = ("zero3", "fsdp")
SCALE_OVER_GPUS = ("zero2", "zero3", "fsdp")
# DeepSpeed's compiled ops each engine needs (built at image build, or by scripts/build_deepspeed_ops.py)
DEEPSPEED_OPS: dict[str, tuple[str, ...]] = {"zero3_offload": ("cpu_adam",)}
