"""A torchrun worker for tests/test_sharded_loading.py: a model loaded under an engine, as run_one
loads it, against the same model loaded whole in one process.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/sharded_loading_check.py \
        MODEL_DIR zero3,fsdp OUT_DIR

Each rank first loads the model whole (no engine, seeded) with LoRA applied: the reference. Then,
for each engine in turn, the engine is joined and the model loaded again (seeded), LoRA applied;
under FSDP accelerate shards it as the Trainer's `accelerator.prepare` does on GPUs (broadcasting
rank 0's weights; on CPU with a stand-in for the GPU, see `as_on_a_gpu`). Every
parameter is gathered whole and written to OUT_DIR/rank{R}.json: a digest of its bytes, and
whether it equals the reference.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from benchmarks.sharded_loading import as_on_a_gpu, shard_with_accelerate

from peftbench.core.spec import ModelRef, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.loading import load_for_sequence_classification
from peftbench.run.distributed import process_place
from peftbench.run.one import prepare_engine_before_loading

LORA = METHODS["lora"]


def loaded_with_lora(ref: ModelRef) -> tuple[Any, tuple[str, ...]]:
    torch.manual_seed(0)
    loaded = load_for_sequence_classification(ref, num_labels=2, pad_token_id=0)
    return LORA.prepare(loaded, LORA.Params.model_validate({"r": 4})), loaded.head_modules


def whole_parameters(model: Any, engine: str) -> dict[str, torch.Tensor]:
    """Every parameter's full tensor, gathered across the ranks."""
    if engine == "zero3":
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters())):
            return {name: p.detach().clone() for name, p in model.named_parameters()}
    return {name: p.full_tensor().detach().clone() for name, p in model.named_parameters()}


def under_engine(ref: ModelRef, engine: str, expected: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The model loaded under `engine` as run_one loads it, LoRA applied, gathered and compared."""
    import gc

    with tempfile.TemporaryDirectory() as tmp:
        if engine == "fsdp":
            as_on_a_gpu()  # a stand-in for the GPU (see benchmarks/sharded_loading.py)
        _, args = prepare_engine_before_loading(
            TrainingSettings(batch_size=1, distributed=engine), ref, Path(tmp)
        )
        model, heads = loaded_with_lora(ref)
        on_meta = sum(p.is_meta for p in model.parameters())
        if engine == "fsdp":
            model = shard_with_accelerate(model, args)
        whole = whole_parameters(model, engine)
        del args, model
        gc.collect()  # ZeRO-3 is on while the arguments live (a weak reference): off for what follows
    return {
        "head_modules": list(heads),
        "meta_parameters_after_loading": int(on_meta),
        "digests": {n: hashlib.sha256(t.float().numpy().tobytes()).hexdigest() for n, t in whole.items()},
        "shapes_match": sorted(whole) == sorted(expected)
        and all(whole[n].shape == expected[n].shape for n in whole),
        "equal_to_reference": sorted(
            n for n in whole if n in expected and torch.equal(whole[n], expected[n])
        ),
    }


def main(model_dir: str, engines: list[str], out: Path) -> None:
    ref = ModelRef(name="tiny", source=model_dir, family="llama")
    reference, reference_heads = loaded_with_lora(ref)
    expected = {name: p.detach().clone() for name, p in reference.named_parameters()}
    figures = {"reference_head_modules": list(reference_heads), "parameters": sorted(expected)}
    figures |= {engine: under_engine(ref, engine, expected) for engine in engines}
    (out / f"rank{process_place().rank}.json").write_text(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","), Path(sys.argv[3]))
