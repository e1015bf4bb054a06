"""Host memory of each process while a model loads under ZeRO-3 and FSDP (2 processes, gloo on CPU).

    .venv/bin/python benchmarks/sharded_loading.py --size 300m --out runs/bench/sharded_loading.json

The question (issue 16): do sharded engines shard *while* loading, or does every process first hold
the whole fp32 model? For a 13B model on an 8-GPU node that is 52 GB against over 400 GB of host
memory. A Llama-shaped model is built from a config (random weights, seeded) and saved once in bf16,
as released checkpoints are; `torchrun --nproc_per_node 2` workers then load it as `run_one` does
(run.one.prepare_engine_before_loading, then the model with its head, in fp32). Each worker samples
its own anonymous resident memory (RssAnon: what the process owns; the mmap'ed weights file is page
cache shared by all processes, reported apart) every 2 ms while loading, and reports the peak
above what it held before.

The bound (`--check`), per process: its shard of the fp32 weights (1/world of them) plus two fp32
copies of the largest single weight (ZeRO-3 gathers one module at a time while reading: the
gathered weight, and on rank 0 the bf16->fp32 converted source; the embedding is the largest) plus
10 % of the model for allocator slack and 16 MiB that loading costs at any size. A process that
held the whole fp32 model while loading would need at least 1.0 x; the sizes here keep the bound
under that (`bound_fraction`).

Measured (docs/benchmarks.md): ZeRO-3 holds. FSDP does not: transformers 5's from_pretrained
loads every weight in every process (its `cpu_ram_efficient_loading` no longer builds the
non-first processes on the meta device), so each FSDP process holds one whole fp32 copy until
the Trainer shards it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SLACK = 0.10  # × the fp32 model: allocator slack in the bound
FIXED = 16 * 2**20  # bytes: what loading costs whatever the size (module objects, DeepSpeed's records)
SIZES = {  # name -> (hidden, intermediate, layers, vocab)
    "60m": (768, 2048, 8, 4096),  # the test's size: small vocabulary, so the bound stays well under 1 x
    "300m": (1024, 2816, 20, 32000),  # ~285M parameters: `make bench`
}
ENGINES = ("zero3", "fsdp")


def resident_bytes() -> tuple[int, int]:
    """This process's resident memory: (anonymous, file-backed) (RssAnon, RssFile), in bytes."""
    found = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("RssAnon:", "RssFile:")):
                found[line.split(":")[0]] = int(line.split()[1]) * 1024
    return found["RssAnon"], found["RssFile"]


class PeakSampler:
    """The highest RssAnon and RssFile seen while in the `with` block, sampled every `every` seconds."""

    def __init__(self, every: float = 0.002):
        self.every, self._stop = every, threading.Event()

    def __enter__(self) -> PeakSampler:
        self.before = self.peak = resident_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._take()
            time.sleep(self.every)

    def _take(self) -> None:
        now = resident_bytes()
        self.peak = (max(self.peak[0], now[0]), max(self.peak[1], now[1]))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()
        self.after = resident_bytes()


def build_model(size: str, folder: Path) -> tuple[int, int]:
    """A Llama-shaped model of `size` with random weights saved to `folder`: its parameter count and
    that of its largest weight."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, intermediate, layers, vocab = SIZES[size]
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        max_position_embeddings=512,
        tie_word_embeddings=True,  # the loaded classifier has no LM head: the same count either side
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    count, largest = sum(p.numel() for p in model.parameters()), max(p.numel() for p in model.parameters())
    # Saved in bf16, as released checkpoints are: loading in fp32 (as runs do) then makes a private
    # fp32 copy of every weight it reads, which is what sharded loading must keep to a process's shard.
    model.to(torch.bfloat16).save_pretrained(folder)
    return count, largest


def load_as_a_run(model_dir: str, engine: str) -> dict[str, Any]:
    """One worker: the engine joined and Trainer arguments made, then the model loaded, as run_one does."""
    from peftbench.core.spec import ModelRef, TrainingSettings
    from peftbench.models.loading import load_config, load_for_sequence_classification
    from peftbench.run.distributed import process_place
    from peftbench.run.one import prepare_engine_before_loading

    ref = ModelRef(name="sharded-loading", source=model_dir, family="llama")
    training = TrainingSettings(batch_size=1, distributed=engine)
    load_config(ref)  # the config read (as the engine arguments read it) before the sampling starts
    with tempfile.TemporaryDirectory() as out:
        # The Trainer arguments must stay alive while loading: ZeRO-3's zero.Init is on only while
        # they are (transformers holds their DeepSpeed config by a weak reference).
        _, arguments = prepare_engine_before_loading(training, ref, Path(out))
        with PeakSampler() as sampler:
            loaded = load_for_sequence_classification(ref, num_labels=2, pad_token_id=0)
        place = process_place()
        return {
            "rank": place.rank,
            "world_size": place.world_size,
            "before_bytes": sampler.before[0],
            "loading_peak_bytes": sampler.peak[0] - sampler.before[0],
            "after_bytes": sampler.after[0] - sampler.before[0],
            "file_peak_bytes": sampler.peak[1] - sampler.before[1],
            # ZeRO-3 leaves each parameter's full size in ds_numel (its numel() is 0 once partitioned)
            "parameters": sum(getattr(p, "ds_numel", p.numel()) for p in loaded.model.parameters()),
            "held_parameters": sum(p.numel() for p in loaded.model.parameters()),
            "arguments": type(arguments).__name__,
        }


def measure(model_dir: Path, engine: str, out: Path, timeout: float = 600) -> list[dict[str, Any]]:
    """Both workers' figures for one engine (torchrun, 2 processes, gloo)."""
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        __file__, "--worker", str(model_dir), "--engine", engine, "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"torchrun {engine} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def bound_fraction(parameters: int, largest: int, world_size: int = 2) -> float:
    """A process's loading peak allowed, as a fraction of the whole fp32 model (module docstring)."""
    return 1 / world_size + 2 * largest / parameters + SLACK + FIXED / (4 * parameters)


def bound_problems(engine: str, ranks: list[dict[str, Any]], parameters: int, largest: int) -> list[str]:
    """Which processes broke the bound (empty: all within it)."""
    fp32, problems = parameters * 4, []
    for r in ranks:
        limit = bound_fraction(parameters, largest, int(r["world_size"]))
        if r["loading_peak_bytes"] > limit * fp32:
            problems.append(
                f"{engine} rank {r['rank']}: {r['loading_peak_bytes'] / 2**20:.0f} MiB while loading > "
                f"{limit:.2f} x the fp32 model ({fp32 / 2**20:.0f} MiB)"
            )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="300m", choices=list(SIZES))
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--out", type=Path, default=Path("runs/bench/sharded_loading.json"))
    parser.add_argument("--check", action="store_true", help="exit 1 when a process breaks its bound")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a torchrun worker: the model folder
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        figures = load_as_a_run(args.worker, args.engine)
        (args.out / f"rank{figures['rank']}.json").write_text(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        parameters, largest = build_model(args.size, model_dir)
        fp32 = parameters * 4
        report: dict[str, Any] = {
            "size": args.size,
            "parameters": parameters,
            "largest_weight": largest,
            "fp32_bytes": fp32,
            "bound_fraction": bound_fraction(parameters, largest),
            "engines": {},
        }
        problems: list[str] = []
        for engine in args.engines.split(","):
            ranks = measure(model_dir, engine, Path(tmp) / engine)
            report["engines"][engine] = ranks
            problems += bound_problems(engine, ranks, parameters, largest)
            for r in ranks:
                peak = int(r["loading_peak_bytes"])
                mapped = int(r["file_peak_bytes"])
                print(
                    f"{engine} rank {r['rank']}: {peak / 2**20:.0f} MiB own ({peak / fp32:.2f} × fp32 "
                    f"model), {mapped / 2**20:.0f} MiB of mapped files ({mapped / fp32:.2f} ×)"
                )
        report["problems"] = problems
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"{parameters / 1e6:.0f}M parameters, fp32 {fp32 / 2**20:.0f} MiB; written to {args.out}")
    for line in problems:
        print(f"over the bound ({report['bound_fraction']:.2f} x): {line}")
    if args.check and problems:
        sys.exit("\n".join(problems))


if __name__ == "__main__":
    main()
