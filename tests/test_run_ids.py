"""Run ids are the folders of every result ever written: no refactoring may change them.

`tests/golden/run_ids.json` holds, for every shipped sweep and every reduced study sweep, the ids
its expansion gave when the file was made, in order. A change to RunSpec, to the expansion or to a
default that would move a run to another folder fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftbench.plan.loading import load_sweep

REPO = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((REPO / "tests" / "golden" / "run_ids.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("sweep", sorted(GOLDEN))
def test_run_ids_are_unchanged(sweep: str):
    path = REPO / sweep
    assert [r.run_id for r in load_sweep(path).runs] == GOLDEN[sweep]


def test_every_shipped_sweep_has_golden_ids():
    shipped = {str(p.relative_to(REPO)) for p in (REPO / "configs" / "sweeps").glob("*.yaml")}
    assert shipped <= set(GOLDEN)
