"""Confidence intervals for the mean of a few seeds: Student's t by default, a bootstrap when asked.

The seeds of one hyper-parameter point are a small sample (typically 3 to 10 values). For the mean
of so few values the t-interval is the honest default: it widens with the t quantile as n shrinks.
The percentile bootstrap assumes no distribution but, with a handful of seeds, it is too narrow
(it can never reach beyond the observed minimum and maximum); it is offered because reviewers ask
for it, with a fixed seed so a report is reproducible.

With fewer than two values no interval exists: `low`/`high` are NaN and tables say so, rather than
printing a zero-width interval that looks like certainty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

IntervalMethod = Literal["t", "bootstrap"]


INTERVAL_METHODS: tuple[str, ...] = ("t", "bootstrap")


BOOTSTRAP_RESAMPLES = 10_000


BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Interval:
    """Mean of `n` values with a confidence interval [low, high] (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int
    std: float  # sample standard deviation (ddof=1); NaN when n < 2
    method: str = "t"
    confidence: float = 0.95

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def symmetric(self) -> bool:
        return self.defined and math.isclose(self.high - self.mean, self.mean - self.low, abs_tol=1e-12)


def finite(values: Iterable[float]) -> list[float]:
    """The values that are numbers (NaN and None, from runs missing a metric, are left out)."""
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """mean ± t_{(1+c)/2, n-1} · s/√n: Student's t-interval for the mean."""
    from scipy import stats

    x = finite(values)
    n = len(x)
    mean = sum(x) / n if n else math.nan
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, math.nan, "t", confidence)
    std = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, std, "t", confidence)


def bootstrap_interval(
    values: Iterable[float],
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Percentile bootstrap of the mean: `resamples` draws with replacement, a fixed random seed."""
    import numpy as np

    x = np.asarray(finite(values), dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n >= 2 else math.nan
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, std, "bootstrap", confidence)
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    means = x[draws].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(mean, float(low), float(high), n, std, "bootstrap", confidence)


def interval(values: Iterable[float], method: IntervalMethod = "t", confidence: float = 0.95) -> Interval:
    """The interval `method` names ("t" or "bootstrap")."""
    if method == "t":
        return t_interval(values, confidence)
    if method == "bootstrap":
        return bootstrap_interval(values, confidence)
    raise ValueError(f"Unknown interval method {method!r}. Allowed: {', '.join(INTERVAL_METHODS)}.")


def overlap(a_low: float, a_high: float, b_low: float, b_high: float) -> bool | None:
    """Whether [a_low, a_high] and [b_low, b_high] share a point; None when either is undefined."""
    if any(math.isnan(v) for v in (a_low, a_high, b_low, b_high)):
        return None
    return bool(a_low <= b_high and b_low <= a_high)
