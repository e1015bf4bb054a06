"""What a cluster profile says about speed and cost: peak FLOP/s per device, efficiency per engine,
power, the time margin of `time_min: auto` and the allocation (`cost:` in a profile, docs/cost.md).

Every figure has a default, so a profile without `cost:` still gets an estimate, each default named
where it is used. The peaks are NVIDIA's data-sheet figures for the SXM parts, *dense* (the data
sheets print tensor-core figures "with sparsity", twice these): A100 (A100 data sheet, 2021): BF16/FP16
312 TFLOPS, FP32 19.5, 400 W; H100 SXM (H100 data sheet, 2023): BF16/FP16 989, FP32 67, 700 W; H200
SXM (H200 data sheet, 2024): the same compute as the H100 SXM, up to 700 W. fp32 training counts the
plain FP32 figure (torch leaves TF32 matmuls off by default).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from peftbench.core.engines import BACKENDS
from peftbench.core.spec import StrictModel

Precision = str  # "bf16" | "fp16" | "fp32" (a run's "auto" resolves to bf16 on a GPU, fp32 on a CPU)
PRECISIONS = ("bf16", "fp16", "fp32")

DEFAULT_PEAK_TFLOPS: dict[str, dict[Precision, float]] = {
    "a100": {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5},
    "h100": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
    "h200": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
}
"""Dense TFLOPS per GPU (module docstring). A GPU type named by none of these falls back to FALLBACK_GPU."""

FALLBACK_GPU = "a100"
DEFAULT_POWER_W = {"a100": 400.0, "h100": 700.0, "h200": 700.0}
"""The data sheets' maximum board power (TDP) per GPU: the energy figure is an upper bound."""

CPU_PEAK_TFLOPS_PER_CORE = 0.096
"""fp32 matmul of one core of the machine this was written on (AMD EPYC; `python benchmarks/bench_estimate.py
--peak`): a placeholder for a CPU profile that measures none of its own."""

DEFAULT_EFFICIENCY: dict[str, float] = {
    "none": 0.3,
    "ddp": 0.3,
    "fsdp": 0.25,
    "zero2": 0.25,
    "zero3": 0.2,
    "zero3_offload": 0.1,
}
"""Share of the peak a run reaches before any calibration, by engine. Large-model pre-training reaches
30-55% MFU on A100s (Chowdhery et al. 2022, PaLM, table 3: 46.2%; Narayanan et al. 2021, Megatron-LM:
52%); fine-tuning small models reaches less (short sequences, small matrices, evaluation and data
loading in the same wall time), and each sharded engine gives some up to communication. These are
guesses within that range, replaced by measured efficiencies as soon as one run finishes
(plan/calibration.py): the estimate says which it used."""

Efficiency = Annotated[float, Field(gt=0, le=1)]


class CostSettings(StrictModel):
    """A site's speed and allocation, for the time estimate (`sweep --dry-run`, `plan`, `time_min: auto`)."""

    peak_tflops: dict[str, dict[Precision, Annotated[float, Field(gt=0)]]] = Field(
        default_factory=dict,
        description="Device -> precision -> dense peak TFLOPS of one device: a GPU type of slurm.gpu_types, "
        "or 'cpu' (per core). Missing types fall back to the shipped A100/H100/H200 figures.",
    )
    power_w: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="Device -> board power in W, for the energy estimate."
    )
    efficiency: dict[str, Efficiency] = Field(
        default_factory=dict,
        description="Engine -> share of the peak a run reaches, in (0, 1], before runs calibrate it.",
    )
    time_margin: float = Field(
        1.5, ge=1, description="time_min: auto asks for the estimate of the slowest run times this."
    )
    budget_gpu_hours: float | None = Field(
        None, gt=0, description="GPU-hours left to all sweeps under runs_dir; a sweep over it is refused."
    )

    @field_validator("efficiency")
    @classmethod
    def _engines_known(cls, efficiency: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(efficiency) - set(BACKENDS))
        if unknown:
            raise ValueError(f"efficiency is per engine: {unknown} is none of {list(BACKENDS)}")
        return efficiency

    @field_validator("peak_tflops")
    @classmethod
    def _precisions_known(cls, peaks: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        unknown = sorted({p for by in peaks.values() for p in by} - set(PRECISIONS))
        if unknown:
            raise ValueError(f"peak_tflops is per precision: {unknown} is none of {list(PRECISIONS)}")
        return peaks
