"""What collect and the report make of a searched sweep: the choice among full-budget runs only,
the protocol, the cost against the full grid, the halving picture (collect/search_summary.py,
collect/halving_plot.py). The sweep is a real plan run through the local launcher; training is stood
in for by results and rung records written as runs write them (tests/test_halving.py trains)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from peftbench.collect.merge import collect, select_cells
from peftbench.collect.report import write_report
from peftbench.collect.search_summary import protocol_lines, search_cells
from peftbench.core.results import Cost, RunResult, write_result
from peftbench.core.search import rung_record_path, write_rung_record
from peftbench.launch.local import run_local
from tests.test_search_local import searched_sweep

# lr -> validation of the searching seed; 1e-2 is halted at rung 0. The winner (1e-3) does worse on
# the later seeds (0.5): ranked on every seed it would lose to 1e-4, ranked as searched it wins.
SEARCH_VALIDATION = {1.0e-4: 0.65, 1.0e-3: 0.8}
LATER_SEED_VALIDATION = 0.5


def execute(spec, paths, on_progress):
    lr, searching = spec.training.learning_rate, spec.search is not None
    halted = searching and lr == 1.0e-2
    if searching:
        write_rung_record(
            rung_record_path(paths.root.parent, spec, 0),
            {
                "run_id": spec.run_id,
                "rung": 0,
                "budget": 0.11,
                "score": 0.3 if halted else 0.6,
                "decision": "x",
            },
        )
    score = SEARCH_VALIDATION.get(lr, 0.0) if searching else LATER_SEED_VALIDATION
    result = RunResult(
        run_id=spec.run_id,
        status="halted" if halted else "success",
        spec=spec,
        validation={} if halted else {"accuracy": score},
        test={} if halted else {"accuracy": score - 0.1},
        cost=Cost(wall_seconds=1.0 if halted else 9.0),
        error="Traceback ...\npeftbench.core.search.Halted: halted at rung 0 (step 1 of 9): behind"
        if halted
        else None,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:09+00:00",
    )
    write_result(paths.result, result)
    return result


@pytest.fixture
def searched(tmp_path: Path) -> Path:
    run_local(searched_sweep(tmp_path), tmp_path / "runs", Console(quiet=True), execute)
    return tmp_path / "runs" / "searched"


def test_the_point_is_chosen_on_the_searching_seed_among_full_budget_runs(searched: Path):
    best = select_cells(collect([searched]).frame).best
    assert len(best) == 2
    for _, cell in best.iterrows():
        assert cell["learning_rate"] == 1.0e-3 and cell["n_seeds"] == 3  # the winner, with the later seeds
        assert cell["validation"] == pytest.approx((0.8 + 0.5 + 0.5) / 3)


def test_the_cost_against_the_full_grid_is_measured_per_cell(searched: Path):
    cells = search_cells(collect([searched]).frame)
    assert len(cells) == 2
    cell = cells.iloc[0]
    assert (cell["points"], cell["seeds"], cell["runs"], cell["halted"]) == (3, 3, 5, 1)
    assert cell["hours"] == pytest.approx((1 + 4 * 9) / 3600)
    assert cell["full_grid_hours"] == pytest.approx(3 * 3 * 9 / 3600)
    [line] = protocol_lines(cells)
    assert "2 cell(s) searched by halving, eta 3, first rung 11% of the budget, searched on seed 0" in line
    assert "2 run(s) halted" in line and f"({37 / 81:.0%})" in line


def test_the_report_states_the_protocol_draws_the_halving_and_lists_halted_runs(
    searched: Path, tmp_path: Path
):
    outcome = write_report([searched], tmp_path / "report")
    page = outcome.html.read_text(encoding="utf-8")
    assert 'id="search"' in page and "searched on seed 0" in page
    assert (tmp_path / "report" / "plots" / "halving.png").stat().st_size > 0
    assert 'id="plot-halving"' in page
    assert "halted at rung 0 (step 1 of 9): behind" in page and "Halted:" not in page


def test_a_sweep_without_search_has_no_search_section(tmp_path: Path):
    assert search_cells(collect([tmp_path]).frame).empty
