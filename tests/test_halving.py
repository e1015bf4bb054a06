"""Successive halving inside a run: rungs, records in the sweep folder, `halted` (core/search.py,
run/halving.py). The runs are real (MiniLM on the demo's data, a few steps); the other runs of the
cell are their rung records, written as those runs write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftbench.core.paths import RunPaths
from peftbench.core.search import (
    all_rung_records,
    read_rung_record,
    rung_folder,
    rung_record_path,
    survives,
    write_rung_record,
)
from peftbench.core.search_settings import SearchSettings
from peftbench.core.spec import RunSpec
from peftbench.run.one import run_one
from tests.conftest import demo_run

NINTH = SearchSettings(eta=3, min_budget=1 / 9)  # rungs at steps 1 and 3 of 9


def test_rungs_are_min_budget_times_powers_of_eta_short_of_the_end():
    assert SearchSettings(eta=3, min_budget=0.11).rung_fractions() == pytest.approx([0.11, 0.33])
    assert SearchSettings(eta=2, min_budget=0.25).rung_fractions() == [0.25, 0.5]
    assert NINTH.rung_steps(9) == {1: 0, 3: 1}
    assert NINTH.rung_steps(2) == {1: 0}  # rungs that round to the same step count once


@pytest.mark.parametrize(
    ("own", "others", "higher", "expected"),
    [
        (0.5, [0.9], True, True),  # fewer than eta scores: nothing to compare yet
        (0.9, [0.5, 0.7], True, True),  # the best of three
        (0.7, [0.5, 0.9], True, False),
        (0.7, [0.7, 0.9], True, False),
        (0.9, [0.9, 0.5], True, True),  # a tie counts in the run's favour
        (0.2, [0.5, 0.9], False, True),  # lower is better (a loss)
        (0.7, [0.5, 0.9, 0.1, 0.2, 0.3], True, True),  # top 2 of 6
    ],
)
def test_a_run_survives_in_the_top_one_over_eta(own, others, higher, expected):
    assert survives(own, [own, *others], 3, higher) is expected


def searched_run(**training) -> RunSpec:
    spec = demo_run("bitfit", max_steps=9, eval_strategy="no", **training)
    return spec.model_copy(update={"search": NINTH})


def write_rival(sweep_dir: Path, spec: RunSpec, rung: int, name: str, score: float) -> None:
    """Another run of the same cell, as its own rung check left it."""
    rival = spec.model_copy(update={"seed": 100 + len(name)})
    path = rung_record_path(sweep_dir, rival, rung)
    write_rung_record(path, {"run_id": rival.run_id, "rung": rung, "score": score, "decision": "continue"})


def test_a_run_behind_its_cell_at_the_first_rung_is_halted(tmp_path: Path):
    spec = searched_run()
    run_dir = tmp_path / "sweep" / spec.run_id
    for name in ("a", "bb"):
        write_rival(run_dir.parent, spec, 0, name, 2.0)  # better than any accuracy
    result = run_one(spec, run_dir)
    assert result.status == "halted", result.error
    assert "halted at rung 0 (step 1 of 9)" in result.error and "top 1/3 of the 3 score(s)" in result.error
    record = read_rung_record(rung_record_path(run_dir.parent, spec, 0))
    assert record["decision"] == "halt" and record["compared_with"] == 3 and record["step"] == 1
    assert not RunPaths(run_dir).checkpoints.exists()  # a halted run is final: no checkpoint kept
    assert not (rung_folder(run_dir.parent, spec, 1)).exists()
    curve = json.loads(RunPaths(run_dir).validation_curve.read_text())
    assert [p["step"] for p in curve["points"]] == [1]  # the rung's evaluation, in the run's own curve


def test_a_run_alone_at_its_rungs_trains_its_whole_budget(tmp_path: Path):
    spec = searched_run()
    run_dir = tmp_path / "sweep" / spec.run_id
    result = run_one(spec, run_dir)
    assert result.status == "success", result.error
    records = all_rung_records(run_dir.parent)
    assert [(r["rung"], r["step"], r["decision"]) for r in records] == [
        (0, 1, "continue"),
        (1, 3, "continue"),
    ]
    assert {r["run_id"] for r in records} == {spec.run_id}
    curve = json.loads(RunPaths(run_dir).validation_curve.read_text())
    assert [p["step"] for p in curve["points"]] == [
        1,
        3,
    ]  # evaluated at the rungs though eval_strategy is 'no'


def test_a_resumed_run_keeps_a_rung_it_passed(tmp_path: Path):
    """A run requeued from a checkpoint before rung 0 finds its own decision there and keeps it,
    though rivals that would halt it have been recorded since."""
    spec = searched_run()
    run_dir = tmp_path / "sweep" / spec.run_id
    own = rung_record_path(run_dir.parent, spec, 0)
    write_rung_record(own, {"run_id": spec.run_id, "rung": 0, "score": 0.123, "decision": "continue"})
    for name in ("a", "bb", "ccc"):
        write_rival(run_dir.parent, spec, 0, name, 2.0)
    result = run_one(spec, run_dir)
    assert result.status == "success", result.error
    assert read_rung_record(own)["score"] == 0.123  # not re-decided, not rewritten
    assert read_rung_record(rung_record_path(run_dir.parent, spec, 1))["decision"] == "continue"


def test_a_run_that_trains_the_winner_has_no_rungs(tmp_path: Path):
    spec = demo_run("bitfit", max_steps=3, eval_strategy="no")
    spec = spec.model_copy(update={"search": NINTH.model_copy(update={"trains_winner": True})})
    assert run_one(spec, tmp_path / "sweep" / spec.run_id).status == "success"
    assert all_rung_records(tmp_path / "sweep") == []
