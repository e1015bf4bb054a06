"""Halving inside packed array tasks (resources.runs_per_gpu; launch/array_task.PackTask: runs forked
side by side): search runs that leave the top 1/eta at their rung end `halted` beside each other, not
failed or killed by the pool; a packed task of the run that trains the winner trains the cell's best
full-budget point. Real training (MiniLM, tiny sizes), each pack in a fresh interpreter as a Slurm
task would run it; the Slurm round trip of halving itself is tests/test_search_children.py's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result, write_spec
from peftbench.core.search import resolved_run_id
from peftbench.launch.slurm_state import sweep_status
from peftbench.plan.loading import load_sweep
from tests.conftest import REPO, TINY_TRAINING, write_yaml

# Three packed tasks, one after another: the first two points side by side (fewer than eta scores
# at the rung: both go on); then a record above any accuracy at that rung, so that the next two,
# packed together, are both behind it (rank 2 or worse of 4 or more, eta 3) and halt; then the task
# of the run that trains the winner on seed 1.
PACKS = """
import sys
from pathlib import Path

from peftbench.core.results import read_spec
from peftbench.core.search import rung_folder, write_rung_record
from peftbench.launch.array_task import PackTask

sweep = Path(sys.argv[1])
first, second, third, fourth, winner = (Path(p) for p in sys.argv[2:])


def pack(*files):
    return PackTask()([str(f) for f in files], [str(sweep / read_spec(f).run_id) for f in files])


print("first", pack(first, second))
above_all = {"run_id": "above-all", "score": 2.0}
write_rung_record(rung_folder(sweep, read_spec(third), 0) / "above-all.json", above_all)
print("second", pack(third, fourth))
print("winner", pack(winner))
"""


@pytest.mark.slow
def test_packed_search_runs_halt_side_by_side_and_a_packed_task_trains_the_winner(tmp_path: Path):
    data = {
        "name": "packed-search",
        "models": ["minilm-l6"],
        "tasks": ["movie_sentiment"],
        "seeds": [0, 1],
        "search": {"eta": 3, "min_budget": 0.34, "search_seeds": 1},  # one rung, at step 1 of 3
        "methods": {"lora": {"learning_rate": [1.0e-4, 1.0e-3, 3.0e-3, 1.0e-2]}},
        "training": {**TINY_TRAINING, "max_steps": 3, "eval_strategy": "no"},
    }
    runs = load_sweep(write_yaml(tmp_path / "packed-search.yaml", data)).runs
    search = sorted((r for r in runs if not r.search.trains_winner), key=lambda r: r.training.learning_rate)
    [winner] = [r for r in runs if r.search.trains_winner]
    files = []
    for spec in [*search, winner]:
        files.append(tmp_path / f"{spec.run_id}.json")
        write_spec(files[-1], spec)
    sweep_dir = tmp_path / "runs" / "packed-search"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", PACKS, str(sweep_dir), *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "first ['success', 'success']" in done.stdout and "second ['halted', 'halted']" in done.stdout
    assert "winner ['success']" in done.stdout

    results = [read_result(RunPaths(sweep_dir / r.run_id).result) for r in search]
    assert [r.status for r in results] == ["success", "success", "halted", "halted"]
    assert all("rung 0" in (r.error or "") for r in results[2:])
    best = max(sorted(results[:2], key=lambda r: r.run_id), key=lambda r: r.validation["accuracy"])
    became = resolved_run_id(RunPaths(sweep_dir / winner.run_id))
    trained = read_result(RunPaths(sweep_dir / became).result)
    assert trained.status == "success" and trained.spec.seed == 1 and trained.spec.search is None
    assert trained.spec.training.learning_rate == best.spec.training.learning_rate
    states = {s.run.run_id: s.state for s in sweep_status(runs, tmp_path / "runs")}
    assert sorted(states.values()) == ["done", "done", "done", "halted", "halted"]
