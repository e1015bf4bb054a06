"""ZeRO-3 with the optimizer offloaded to the CPU, end to end, with DeepSpeed's compiled cpu_adam.

The op is built once before the tests (scripts/build_deepspeed_ops.py; CI runs it, the image
prebuilds it): the run must load it without compiling, as a compute node without a compiler would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result, write_spec
from peftbench.tools.doctor import check_deepspeed_ops
from tests.conftest import demo_run


@pytest.fixture(scope="module")
def cpu_adam_built() -> None:
    """cpu_adam loads without compiling (in CI, PEFTBENCH_CHECK_ENV=1, its absence is a failure)."""
    [check] = check_deepspeed_ops()
    if check.status != "ok":
        if os.environ.get("PEFTBENCH_CHECK_ENV") == "1":
            pytest.fail(f"{check}: CI builds it first (scripts/build_deepspeed_ops.py)")
        pytest.skip(f"{check}")


def test_a_zero3_offload_run_trains_with_the_prebuilt_cpu_adam(tmp_path: Path, cpu_adam_built: None):
    spec = demo_run("full", max_steps=2, distributed="zero3_offload", batch_size=8, max_eval_samples=16)
    write_spec(tmp_path / "spec.json", spec)
    # No compiler on PATH, as on a compute node or in the lean image: only ninja, which torch asks
    # whether a built op is current. The ops must load as built (scripts/build_deepspeed_ops.py);
    # compiling one would fail the run. Its own process, as every launcher runs a run.
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "ninja").symlink_to(shutil.which("ninja") or "/usr/bin/ninja")
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX")} | {"PATH": str(tools)}
    done = subprocess.run(
        [sys.executable, "-m", "peftbench", "run-one", str(tmp_path / "spec.json"), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = read_result(RunPaths(tmp_path / "run").result)
    assert result.status == "success", result.error
    assert (result.cost.world_size, result.cost.backend) == (1, "zero3_offload")
    assert result.cost.trainable_params == result.cost.total_params > 20_000_000  # full fine-tuning
    assert "Building extension module cpu_adam" not in done.stderr  # loaded, not compiled
    assert any((RunPaths(tmp_path / "run").artifact).glob("*.safetensors"))
