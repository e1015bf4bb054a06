"""Measuring what a run costs: memory peaks, parameter counts, bytes on disk, device."""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters. peft wrappers keep a frozen copy of the head: counted once."""
    trainable = total = 0
    for name, p in model.named_parameters():
        if ".original_module." in name:
            continue
        count = getattr(p, "ds_numel", None) or p.numel()  # a ZeRO-3 parameter holds only its shard
        total += count
        if p.requires_grad:
            trainable += count
    return trainable, total


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def reset_gpu_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_gpu_bytes() -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def gpus_of_run(world_size: int) -> int:
    """GPUs a run occupies: one per process in a multi-process run, else those this process sees."""
    import torch

    if not torch.cuda.is_available():
        return 0
    return world_size if world_size > 1 else torch.cuda.device_count()
