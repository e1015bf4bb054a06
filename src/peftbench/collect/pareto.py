"""The Pareto front of (cost, score) points: the cells no other cell beats on both at once."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pareto_front(costs: Sequence[float], scores: Sequence[float], higher_is_better: bool = True) -> list[int]:
    """Indices of the non-dominated points, cheapest first. Lower cost is always better.

    A point is dominated when another costs no more and scores no worse, and is strictly better
    on one of the two. Points with a missing (NaN) cost or score are never on the front.
    """
    sign = 1.0 if higher_is_better else -1.0
    points = [
        (float(c), sign * float(s), i)
        for i, (c, s) in enumerate(zip(costs, scores, strict=True))
        if not (math.isnan(float(c)) or math.isnan(float(s)))
    ]
    # Cheapest first; at equal cost the best score first, so the others at that cost are dominated.
    points.sort(key=lambda p: (p[0], -p[1], p[2]))
    front, best = [], -math.inf
    for _cost, score, index in points:
        if score > best:
            front.append(index)
            best = score
    return front
