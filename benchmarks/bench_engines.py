"""The training engines side by side: one decoder, full fine-tuning and LoRA under each backend.

    .venv/bin/python benchmarks/bench_engines.py                       # 360m: none/fsdp/zero3 + LoRA
    .venv/bin/python benchmarks/bench_engines.py --size 1.7b --arms full:zero3,full:zero3_offload
    .venv/bin/python benchmarks/bench_engines.py --size 7b,13b --arms full:zero3_offload   # what fits?

The issue-6 GPU checks as one script. The model is Llama-shaped and built from a config with random
weights (nothing is downloaded; throughput and memory do not depend on the weights' values), with
MiniLM's offline tokenizer; it trains as a sequence classifier on the bundled movie sentences,
padded to `--max-length` so that every step computes the same number of positions. Each arm is
`peftbench run-one` in a fresh process, world size 1: FSDP and ZeRO-3 still shard, gather and
(offload) move states to host memory, so their overhead and memory show against plain training.

Per arm: tokens/s (positions computed, padding included, and its ratio to the first arm), real
tokens/s as the run records it, peak GPU memory (peak RSS on CPU), trainable parameters, bytes
saved, and model FLOPs utilisation, 6 × parameters × tokens/s ÷ the GPU's dense bf16 peak (known
GPUs below, or --peak-tflops). A failed arm (out of memory, say) is reported with its error, not
raised, so one call can find the largest size that trains. Writes the figures as JSON (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

from peftbench.core.engines import BACKENDS
from peftbench.core.results import read_result, write_spec
from peftbench.core.spec import ModelRef, ResourceRequest, RunSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_tokenizer
from peftbench.plan.expand import refusal
from peftbench.tasks import TASK_CATALOG

REPO = Path(__file__).resolve().parents[1]


class Shape(NamedTuple):
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int


# Llama shapes; parameter counts differ a little from the originals (MiniLM's 30,522-token vocabulary).
SIZES: dict[str, Shape] = {
    "tiny": Shape(64, 128, 2, 4),
    "360m": Shape(960, 2560, 32, 15),  # SmolLM2-360M's shape
    "1b": Shape(2048, 5632, 22, 32),  # TinyLlama-1.1B's shape
    "1.7b": Shape(2048, 8192, 24, 32),  # SmolLM2-1.7B's shape
    "7b": Shape(4096, 11008, 32, 32),  # Llama-2-7B's shape
    "13b": Shape(5120, 13824, 40, 40),  # Llama-2-13B's shape
}
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
# Method variants by name (issue 5's GPU checks: DoRA and QLoRA on a small decoder).
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "dora": ("lora", {"use_dora": True}),
    "rslora": ("lora", {"use_rslora": True}),
}
DEFAULT_ARMS = "full:none,full:fsdp,full:zero3,lora:zero3"
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, per GPU (NVIDIA data sheets)


@dataclass
class Arm:
    """One measured arm: a method under a backend on one model size."""

    size: str
    method: str
    backend: str
    status: str
    error: str | None
    total_params: int
    trainable_params: int
    train_seconds: float
    positions_per_second: float  # samples/s × max_length: every position the model computed
    real_tokens_per_second: float
    peak_gpu_bytes: int | None
    peak_rss_bytes: int
    artifact_bytes: int
    wall_seconds: float
    mfu: float | None

    @classmethod
    def unmeasured(
        cls, size: str, method: str, backend: str, status: str, error: str, wall: float = 0.0
    ) -> Arm:
        """An arm that was refused or left no result."""
        return cls(size, method, backend, status, error, 0, 0, 0.0, 0.0, 0.0, None, 0, 0, wall, None)


def parse_arms(text: str) -> list[tuple[str, str]]:
    """ "full:zero3,lora:fsdp" -> [("full", "zero3"), ("lora", "fsdp")], checked against what exists."""
    arms = []
    for item in text.split(","):
        method, _, backend = item.strip().partition(":")
        backend = backend or "none"
        if method not in METHODS and method not in VARIANTS:
            allowed = ", ".join(sorted([*METHODS, *VARIANTS]))
            raise SystemExit(f"--arms: unknown method {method!r}; allowed: {allowed}")
        if backend not in BACKENDS:
            raise SystemExit(f"--arms: unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
        arms.append((method, backend))
    return arms


def build_model(size: str, folder: Path) -> Path:
    """A random-weight Llama of `size` with MiniLM's tokenizer, saved as a checkpoint folder (bf16)."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    shape = SIZES[size]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        num_key_value_heads=shape.num_attention_heads,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=2,
        tie_word_embeddings=False,
        **shape._asdict(),
    )
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def arm_spec(
    folder: Path, size: str, method: str, backend: str, gpus: int, args: argparse.Namespace
) -> RunSpec:
    family, changes = VARIANTS.get(method, (method, {}))
    training = TrainingSettings(
        eval_strategy="no",
        max_steps=args.steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        padding="max_length",
        learning_rate=1e-5 if method == "full" else 2e-4,
        max_train_samples=args.steps * args.batch_size,
        max_eval_samples=args.eval_samples,
        gradient_checkpointing=args.gradient_checkpointing or None,
        distributed=None if backend == "none" else backend,
    )
    return RunSpec(
        sweep="bench-engines",
        model=ModelRef(name=f"llama-{size}", source=str(folder), family="llama"),
        task=TASK_CATALOG["movie_sentiment"],
        method=family,
        label=f"{method}-{backend}",
        params=METHODS[family].Params.model_validate(changes).model_dump(mode="json", exclude_none=True),
        training=training,
        seed=0,
        resources=ResourceRequest(gpus=gpus),
    )


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def peak_flops(name: str | None, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if name and key in name), None)


def run_arm(spec: RunSpec, out: Path, size: str, peak: float | None, timeout: float) -> Arm:
    """`peftbench run-one` in a fresh process; a refusal or failure comes back as an Arm with its error."""
    backend = spec.training.engine
    name = spec.label.removesuffix(f"-{backend}")
    params = METHODS[spec.method].Params.model_validate(spec.params)
    reason = refusal(spec.method, params, spec.model, spec.task, spec.resources)  # as a sweep refuses
    if reason:
        return Arm.unmeasured(size, name, backend, "refused", reason)
    out.mkdir(parents=True)
    write_spec(out / "spec.json", spec)
    command = [sys.executable, "-m", "peftbench", "run-one", str(out / "spec.json"), str(out)]
    start = time.perf_counter()
    env = {**os.environ, **OFFLINE}
    with open(out / "log.txt", "w", encoding="utf-8") as log, contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, timeout=timeout, env=env)
    wall = time.perf_counter() - start
    if not (out / "result.json").exists():
        return Arm.unmeasured(size, name, backend, "lost", f"no result (timeout {timeout:.0f} s?)", wall)
    result = read_result(out / "result.json")
    cost = result.cost
    positions = cost.train_samples_per_second * spec.training.max_length
    mfu = 6 * cost.total_params * positions / peak if peak and result.status == "success" else None
    return Arm(
        size=size,
        method=name,
        backend=backend,
        status=result.status,
        error=(result.error or "").strip().splitlines()[-1] if result.error else None,
        total_params=cost.total_params,
        trainable_params=cost.trainable_params,
        train_seconds=cost.train_seconds,
        positions_per_second=positions,
        real_tokens_per_second=cost.train_tokens_per_second,
        peak_gpu_bytes=cost.peak_gpu_bytes,
        peak_rss_bytes=cost.peak_rss_bytes,
        artifact_bytes=cost.artifact_bytes,
        wall_seconds=wall,
        mfu=mfu,
    )


def print_report(arms: list[Arm], device: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Engines side by side on {device}")
    for column in ("size", "method", "backend", "status", "params", "trainable", "tokens/s", "× first",
                   "real tok/s", "peak GB", "MFU", "saved MB"):  # fmt: skip
        table.add_column(
            column, justify="left" if column in {"size", "method", "backend", "status"} else "right"
        )
    first = next((a.positions_per_second for a in arms if a.status == "success"), None)
    for a in arms:
        ok = a.status == "success"
        peak = a.peak_gpu_bytes if a.peak_gpu_bytes is not None else a.peak_rss_bytes
        table.add_row(
            a.size, a.method, a.backend, a.status if ok else f"{a.status}: {a.error}",
            f"{a.total_params:,}", f"{a.trainable_params:,}",
            f"{a.positions_per_second:,.0f}" if ok else "",
            f"{a.positions_per_second / first:.2f}" if ok and first else "",
            f"{a.real_tokens_per_second:,.0f}" if ok else "",
            f"{peak / 1e9:.2f}" if ok else "",
            f"{a.mfu:.1%}" if a.mfu is not None else "",
            f"{a.artifact_bytes / 1e6:,.2f}" if ok else "",
        )  # fmt: skip
    Console(width=200).print(table)
    largest = {}
    for a in arms:
        if a.status == "success":
            largest[(a.method, a.backend)] = a.size
    for (method, backend), size in largest.items():
        print(f"largest size that trained: {method} with {backend}: {size}")


def main(argv: list[str] | None = None) -> list[Arm]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="360m", help=f"comma-separated, from {', '.join(SIZES)}")
    parser.add_argument("--arms", default=DEFAULT_ARMS, help="method:backend pairs, comma-separated")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--eval-samples", type=int, default=16)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if not in the list")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per arm")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "engines.json")
    parser.add_argument("--keep", action="store_true", help="keep the model and run folders")
    args = parser.parse_args(argv)
    sizes = args.size.split(",")
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"--size: unknown {unknown}; allowed: {', '.join(SIZES)}")
    arms = parse_arms(args.arms)
    name = gpu_name()
    device = name or "CPU"
    peak = peak_flops(name, args.peak_tflops)
    work = Path(tempfile.mkdtemp(prefix="peftbench-engines-"))
    measured = []
    try:
        for size in sizes:
            folder = build_model(size, work / f"llama-{size}")
            for method, backend in arms:
                spec = arm_spec(folder, size, method, backend, 1 if name else 0, args)
                out = work / "runs" / "bench-engines" / f"{size}-{method}-{backend}"
                measured.append(run_arm(spec, out, size, peak, args.timeout))
                print(f"{size} {method} {backend}: {measured[-1].status}", flush=True)
            if not args.keep:
                shutil.rmtree(folder)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work}")
    print_report(measured, device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figures = {"device": device, "peak_flops": peak, "args": {k: str(v) for k, v in vars(args).items()},
               "arms": [asdict(a) for a in measured]}  # fmt: skip
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return measured


if __name__ == "__main__":
    main()
