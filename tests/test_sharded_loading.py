"""Sharded loading measured: under ZeRO-3 no process should hold the whole fp32 model while it loads.

Two real processes (torchrun, gloo on CPU) load a 60M-parameter Llama built from a config and saved
once in bf16, exactly as run_one loads it (benchmarks/sharded_loading.py; its docstring states the
bound and why). The few-hundred-million-parameter measurement, and FSDP's (which does not hold:
every FSDP process loads the whole model, docs/benchmarks.md), are `make bench`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import sharded_loading


@pytest.mark.xfail(
    strict=True,
    reason="measured: each ZeRO-3 process peaks at about 1.2 x the fp32 model while loading "
    "(transformers 5.23, deepspeed 0.19.8); the weights end partitioned, but the loading order is "
    "not yet fixed (docs/benchmarks.md). Strict: once it holds, this marker must go.",
)
def test_zero3_processes_hold_their_shard_not_the_whole_model_while_loading(tmp_path: Path):
    parameters, largest = sharded_loading.build_model("60m", tmp_path / "model")
    bound = sharded_loading.bound_fraction(parameters, largest)
    assert bound < 0.85  # a process holding the whole fp32 model (>= 1.0 x) cannot pass
    ranks = sharded_loading.measure(tmp_path / "model", "zero3", tmp_path / "zero3")
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    for r in ranks:
        assert r["parameters"] >= parameters  # the whole model is there (plus its 2-label head) ...
        assert r["held_parameters"] == 0  # ... partitioned: each process holds only its shard
        peak = r["loading_peak_bytes"] / (parameters * 4)
        assert 0 < peak < bound, f"rank {r['rank']} held {peak:.2f} x the fp32 model while loading"
    assert sharded_loading.bound_problems("zero3", ranks, parameters, largest) == []
