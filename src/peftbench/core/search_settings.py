"""`search:` of a sweep or a method block: how each cell's grid is searched (core/search.py runs it).

Kept apart from core/search.py so that RunSpec (core/spec.py) can hold it without a cycle.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LAST_RUNG = 0.9  # no rung at or above this share of the budget


class SearchSettings(BaseModel):
    """`search:` of a sweep or of one method block: how its grid is searched (default: the full grid)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["halving"] = Field(
        "halving", description="halving: asynchronous successive halving (ASHA) of each cell's grid."
    )
    eta: int = Field(3, ge=2, description="Keep the top 1/eta at each rung; rungs are eta times apart.")
    min_budget: float = Field(
        0.11, gt=0, lt=1, description="The first rung, as a share of each run's training steps."
    )
    search_seeds: int | None = Field(
        None,
        gt=0,
        description="Search the grid on the first N seeds only; the other seeds train each cell's winner "
        "(default: every seed searches).",
    )
    trains_winner: bool = Field(
        False, description="Set by the plan, not in a sweep file: this run trains its cell's winner."
    )

    def rung_fractions(self) -> list[float]:
        """The rungs as shares of the training budget: min_budget × eta^k below LAST_RUNG (a rung in
        the last tenth of training would save almost nothing: 0.11 × 3² = 0.99 is no rung)."""
        count = math.ceil(math.log(LAST_RUNG / self.min_budget, self.eta) - 1e-9)
        return [self.min_budget * self.eta**k for k in range(max(count, 1))]

    def rung_steps(self, max_steps: int) -> dict[int, int]:
        """Training step -> rung index for a run of `max_steps` steps (each rung at least one step in)."""
        steps: dict[int, int] = {}
        for k, fraction in enumerate(self.rung_fractions()):
            step = max(1, round(fraction * max_steps))
            if step < max_steps:
                steps.setdefault(step, k)
        return steps

    def protocol(self, first_seed: int | None = None) -> str:
        """One line for a report: 'halving, eta 3, first rung 11% of the budget, searched on seed 0'."""
        words = f"halving, eta {self.eta}, first rung {self.min_budget:.0%} of the budget"
        if self.search_seeds is not None and first_seed is not None:
            words += f", searched on seed {first_seed}" + (" and after" if self.search_seeds > 1 else "")
        return words
