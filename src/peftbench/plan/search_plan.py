"""A method block's `search:` (its own, else the sweep's), checked before anything runs, and which
seeds search the grid and which train the winner (core/search.py runs the halving itself).

Refused, each naming its key: eta below 2 and min_budget outside (0, 1) (SearchSettings' bounds), a
grid of one point (nothing to search), `training.target_validation` (a run stopped at a target is
not comparable at the rungs), and `trains_winner` written in a file (the plan sets it). Noted, not
refused: a first rung that comes within the warm-up (`early_rung_notes`).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from peftbench.core.errors import Problem
from peftbench.core.search_settings import SearchSettings
from peftbench.core.spec import RunSpec
from peftbench.plan.problems import check_keys, pydantic_problems


def block_search(
    value: Any,
    written: bool,
    sweep_search: SearchSettings | None,
    where: tuple[str, str],
    problems: list[Problem],
) -> SearchSettings | None:
    """`methods.<label>.search` validated (`search: null` is the full grid), else the sweep's `search:`
    when the block does not write one (`written`); None: the full grid. `where`: (file, label)."""
    if not written:
        return sweep_search
    if value is None:
        return None
    file, label = where
    loc = ("methods", label, "search")
    if not isinstance(value, dict):
        message = f"Give search as {{strategy: halving, eta: 3, min_budget: 0.11}} (got {value!r})."
        problems.append(
            Problem(file, f"methods.{label}.search", message, None, tuple(SearchSettings.model_fields))
        )
        return None
    found = check_keys(file, value, SearchSettings, loc)
    if found:
        problems.extend(found)
        return None
    try:
        return SearchSettings.model_validate(value)
    except ValidationError as err:
        problems.extend(pydantic_problems(file, err, loc))
        return None


def search_problems(
    file: str, label: str, own: bool, search: SearchSettings | None, points: list[Any]
) -> list[Problem]:
    """What makes a block's search impossible; `own`: the block wrote `search:` itself (else the sweep)."""
    if search is None:
        return []
    key = f"methods.{label}.search" if own else "search"
    problems = []
    if search.trains_winner:
        problems.append(
            Problem(file, f"{key}.trains_winner", "The plan sets trains_winner; leave it out.", True)
        )
    if len(points) == 1:
        message = (
            f"Halving needs a grid of at least two points, and methods.{label} has one: give a key a list "
            "of values, or leave search out for this block."
        )
        problems.append(Problem(file, key, message))
    if any(p.training.target_validation is not None for p in points):
        message = (
            f"Halving cannot be combined with training.target_validation (methods.{label}): a run stopped "
            "at a target cannot be compared at the rungs; leave one of them out."
        )
        problems.append(Problem(file, key, message))
    return problems


def split_seeds(search: SearchSettings | None, seeds: list[int]) -> tuple[list[int], list[int]]:
    """(seeds that search the grid, seeds that train each cell's winner)."""
    if search is None or search.search_seeds is None:
        return seeds, []
    return seeds[: search.search_seeds], seeds[search.search_seeds :]


def winner_search(search: SearchSettings) -> SearchSettings:
    """The search settings of a run that trains its cell's winner on a later seed."""
    return search.model_copy(update={"trains_winner": True})


EARLY_RUNG = (
    "the first rung ({rung}) comes within the warm-up ({warmup}): the runs are compared before they "
    "learn. Measured on a CPU grid (docs/benchmarks.md, 5b): a first rung at the warm-up's last step "
    "chose as well as the full grid in 2 of 4 cells, one at a third of the steps in 4 of 4. Raise "
    "min_budget until the first rung comes after the warm-up (warmup_ratio {ratio:g})."
)


def early_rung_notes(runs: list[RunSpec], file: str) -> list[Problem]:
    """One note per searched block whose first rung is at or before the warm-up's last step (by
    steps where `max_steps` gives them, else as shares of the budget)."""
    notes: dict[str, Problem] = {}
    for run in runs:
        search = run.search
        if search is None or search.trains_winner or run.label in notes:
            continue
        ratio, steps = run.training.warmup_ratio, run.training.max_steps
        if steps is not None:
            first, warmup = min(search.rung_steps(steps), default=steps), math.ceil(ratio * steps)
            rung, within = f"step {first} of {steps}", f"{warmup} steps"
        else:
            first, warmup = search.min_budget, ratio
            rung, within = f"{first:.0%} of the budget", f"{warmup:.0%} of it"
        if first <= warmup:
            message = EARLY_RUNG.format(rung=rung, warmup=within, ratio=ratio)
            notes[run.label] = Problem(file, f"methods.{run.label}.search", message, search.min_budget)
    return list(notes.values())
