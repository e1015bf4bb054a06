"""The planner's figures for a run's end against what CPU runs measure: generation memory and disk.

    make bench-end      (or: .venv/bin/python benchmarks/bench_generation_memory.py --out runs/bench/end.json)

1. Generation memory. For a generation task and an instruction task (BELLE's fixture), each at two
   evaluation batches, a Llama-shaped decoder with random weights (nothing downloaded; SmolLM2's
   vocabulary of 49,152 tokens) generates, in a fresh process, `max_new_tokens` answers after
   prompts of the longest length the planner assumes (`max_length - max_new_tokens`), exactly as
   `tasks/generation.py:generate_texts` calls `model.generate` (greedy, left padding), with
   `min_new_tokens` so that random weights cannot stop early. Measured: the process's resident
   memory sampled every 2 ms during `generate`, its peak less the resident memory just before (the
   model loaded). Estimated: what plan/memory.py adds for generating at that batch, fp32 and no
   engine (`evaluation_activation_bytes`'s generating branch: the prompts' pass, one layer at a
   time, the key-value cache and the last position's logits). Ratio: estimate / measured.
2. Checkpoint sizes. MiniLM (the demo's model) trains 2 steps with `keep_checkpoints` in a fresh
   `peftbench run-one` process for full fine-tuning and LoRA, unsharded and under ZeRO-3 (DeepSpeed
   runs on CPU in one process here). Measured: the bytes of `checkpoints/checkpoint-2/` and of
   `artifact/`. Estimated: plan/disk.py's `run_disk`, from the run's own parameter counts. Ratio:
   estimate / measured.

Writes the figures as JSON (--out) and prints a table. One process at a time.
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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/ holds the fixtures' task specs

HIDDEN, LAYERS, HEADS, VOCAB = 512, 8, 8, 49_152
GENERATION_ARMS = [  # (task, max_length, max_new_tokens, eval batch)
    ("generation", 512, 64, 4),
    ("generation", 512, 64, 16),
    ("instruction", 512, 256, 4),
    ("instruction", 512, 256, 16),
]
DISK_ARMS = [("full", "none"), ("lora", "none"), ("full", "zero3"), ("lora", "zero3")]


def generation_run(task_type: str, max_length: int, new: int, batch: int):
    from tests.test_generation import fixture_files
    from tests.test_instruction import BELLE

    from peftbench.core.spec import ModelRef, RunSpec, TaskSpec, TrainingSettings

    task = BELLE
    if task_type == "generation":
        files = fixture_files("belle_instruct")
        task = TaskSpec(
            name="summary",
            type="generation",
            source=task.source.model_copy(update={"files": files}),
            text_columns=["instruction"],
            target_column="output",
            metric="rougeL",
        )
    settings = {
        "max_length": max_length,
        "max_new_tokens": new,
        "eval_batch_size": batch,
        "precision": "fp32",
    }
    model = ModelRef(name="llama-shaped", source="/nonexistent", family="llama")
    return RunSpec(
        sweep="bench",
        model=model,
        task=task,
        method="lora",
        label="lora",
        params={"r": 8},
        training=TrainingSettings.model_validate(settings),
        seed=0,
    )


def llama_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=4 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=2048,
        architectures=["LlamaForCausalLM"],
    )


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_during(call: Callable[[], None], device: str) -> int:
    """The bytes `call` adds at its peak: CUDA's allocator on a GPU; on the CPU, the process's
    resident memory sampled every 2 ms, less what it was just before."""
    import torch

    if device != "cpu":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        call()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.002)

    before = rss_bytes()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    call()
    done.set()
    sampler.join()
    return peak[0] - before


def measure_generation(
    task_type: str, max_length: int, new: int, batch: int, device: str = "cpu"
) -> dict[str, float | str]:
    """In this process (a fresh one): the model, then one `generate`, its added peak measured by
    `peak_during` (the RSS on the CPU, CUDA's allocator on a GPU: `make gpu-check`)."""
    import torch
    from transformers import LlamaForCausalLM

    from peftbench.plan.generation_memory import generation_bytes
    from peftbench.plan.memory import evaluation_activation_bytes, generating_bytes

    torch.manual_seed(0)
    torch.set_num_threads(1)
    config = llama_config()
    model = LlamaForCausalLM(config).eval().to(device)
    prompt = max_length - new
    ids = torch.randint(10, VOCAB - 10, (batch, prompt), device=device)

    def generate() -> None:
        with torch.no_grad():
            model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                min_new_tokens=new,
                num_beams=1,
                do_sample=False,
                pad_token_id=0,
            )

    start = time.perf_counter()
    measured = peak_during(generate, device)
    seconds = time.perf_counter() - start
    run = generation_run(task_type, max_length, new, batch)
    cache_and_logits = generation_bytes(run, config, "none")
    estimate = generating_bytes(run, config, mixed=False, backend="none")
    loss_pass_and_generating = evaluation_activation_bytes(run, config, mixed=False, backend="none")
    return {
        "task": task_type,
        "device": device,
        "max_length": max_length,
        "max_new_tokens": new,
        "eval_batch_size": batch,
        "kv_cache_and_logits_mb": cache_and_logits / 1e6,
        "estimate_mb": estimate / 1e6,
        "measured_mb": measured / 1e6,
        "ratio": estimate / measured if measured > 0 else float("nan"),
        "evaluation_estimate_with_loss_pass_mb": loss_pass_and_generating / 1e6,
        "generate_seconds": seconds,
    }


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure_disk(method: str, engine: str, work: Path) -> dict[str, float]:
    from tests.conftest import demo_run

    from peftbench.core.results import read_result, write_spec
    from peftbench.plan.disk import run_disk

    out = work / f"{method}-{engine}"
    # fp32 as "auto" resolves on CPU (the planner reads "auto" as a GPU site's bf16)
    settings = {"max_steps": 2, "batch_size": 8, "max_eval_samples": 16, "keep_checkpoints": True}
    settings |= {"precision": "fp32"}
    settings |= {"checkpoint_steps": 2} | ({"distributed": engine} if engine != "none" else {})
    spec = demo_run(method, **settings)
    out.mkdir(parents=True)
    write_spec(out / "spec.json", spec)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "peftbench", "run-one", str(out / "spec.json"), str(out)]
    subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200, check=False)
    result = read_result(out / "result.json")
    if result.status != "success" or result.cost is None:
        return {"method": method, "engine": engine, "error": (result.error or result.status)[-500:]}
    estimate = run_disk(spec, result.cost.total_params, result.cost.trainable_params)
    checkpoint = folder_bytes(out / "checkpoints" / "checkpoint-2")
    artifact = folder_bytes(out / "artifact")
    return {
        "method": method,
        "engine": engine,
        "total_params": result.cost.total_params,
        "trainable_params": result.cost.trainable_params,
        "checkpoint_estimate_mb": estimate.checkpoint / 1e6,
        "checkpoint_measured_mb": checkpoint / 1e6,
        "checkpoint_ratio": estimate.checkpoint / checkpoint,
        "artifact_estimate_mb": estimate.artifact / 1e6,
        "artifact_measured_mb": artifact / 1e6,
        "artifact_ratio": estimate.artifact / artifact,
    }


def in_fresh_process(arm: list[str]) -> dict:
    """One arm in a fresh interpreter (nothing an earlier arm allocated counts), its row as JSON."""
    command = [sys.executable, __file__, "--arm", *arm]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        return {"arm": arm, "error": done.stderr[-1500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "end.json")
    parser.add_argument("--arm", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--skip-disk", action="store_true", help="Only the generation arms.")
    parser.add_argument("--skip-generation", action="store_true", help="Only the disk arms.")
    args = parser.parse_args()
    if args.arm:
        kind, *rest = args.arm
        if kind == "generation":
            device = rest[4] if len(rest) > 4 else "cpu"
            print(json.dumps(measure_generation(rest[0], *map(int, rest[1:4]), device=device)))
        else:
            print(json.dumps(measure_disk(rest[0], rest[1], Path(rest[2]))))
        return
    figures: dict[str, list] = {"generation": [], "disk": []}
    for task, length, new, batch in [] if args.skip_generation else GENERATION_ARMS:
        row = in_fresh_process(["generation", task, str(length), str(new), str(batch)])
        figures["generation"].append(row)
        print(json.dumps(row), flush=True)
    if not args.skip_disk:
        with tempfile.TemporaryDirectory() as work:
            for method, engine in DISK_ARMS:
                row = in_fresh_process(["disk", method, engine, work])
                figures["disk"].append(row)
                print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
