"""Confidence intervals against values computed by hand (t quantiles from printed tables)."""

from __future__ import annotations

import math

import pytest

from peftbench.collect.stats import bootstrap_interval, interval, overlap, t_interval

T_975_2 = 4.302652730  # Student t, 97.5% quantile, 2 degrees of freedom
T_975_4 = 2.776445105  # ... 4 degrees of freedom
T_95_2 = 2.919985580  # 95% quantile, 2 degrees of freedom (a 90% interval)


def test_t_interval_of_three_seeds_by_hand():
    # mean 0.75; deviations -0.05, 0.05, 0 -> s = 0.05; s/sqrt(3) = 0.0288675
    ci = t_interval([0.70, 0.80, 0.75])
    half = T_975_2 * 0.05 / math.sqrt(3)
    assert ci.mean == pytest.approx(0.75)
    assert ci.std == pytest.approx(0.05)
    assert (ci.low, ci.high) == (pytest.approx(0.75 - half), pytest.approx(0.75 + half))
    assert (round(ci.low, 6), round(ci.high, 6)) == (0.625793, 0.874207)
    assert ci.n == 3 and ci.symmetric


def test_t_interval_of_five_values_and_other_confidence():
    ci = t_interval([1, 2, 3, 4, 5])
    assert ci.high - ci.mean == pytest.approx(T_975_4 * math.sqrt(2.5) / math.sqrt(5))
    ninety = t_interval([0.70, 0.80, 0.75], confidence=0.90)
    assert ninety.high - ninety.mean == pytest.approx(T_95_2 * 0.05 / math.sqrt(3))


def test_one_seed_has_a_mean_but_no_interval_and_missing_values_are_left_out():
    ci = t_interval([0.8, float("nan"), None])
    assert ci.mean == 0.8 and ci.n == 1 and not ci.defined
    assert math.isnan(ci.low) and math.isnan(ci.high) and math.isnan(ci.std)
    assert math.isnan(t_interval([]).mean)


def test_bootstrap_of_two_values_spans_them():
    # resampled means are 0.6, 0.7, 0.8 with chance 1/4, 1/2, 1/4: the 2.5% and 97.5% points are the ends
    ci = bootstrap_interval([0.6, 0.8])
    assert (ci.low, ci.high) == (pytest.approx(0.6), pytest.approx(0.8))
    assert ci.method == "bootstrap" and ci.n == 2


def test_bootstrap_is_reproducible_and_inside_the_data():
    values = [0.71, 0.74, 0.69, 0.80, 0.77]
    a, b = bootstrap_interval(values), interval(values, "bootstrap")
    assert (a.low, a.high) == (b.low, b.high)
    assert min(values) <= a.low <= a.mean <= a.high <= max(values)
    assert bootstrap_interval([0.7, 0.7, 0.7]).low == pytest.approx(0.7)
    assert bootstrap_interval([0.7, 0.8], seed=1).low == pytest.approx(0.7)


def test_unknown_interval_method_names_the_allowed_ones():
    with pytest.raises(ValueError, match="Allowed: t, bootstrap"):
        interval([1, 2], "wald")  # type: ignore[arg-type]


def test_overlap():
    assert overlap(0.1, 0.3, 0.25, 0.4) is True
    assert overlap(0.1, 0.2, 0.3, 0.4) is False
    assert overlap(0.1, 0.2, 0.2, 0.4) is True  # touching ends share a point
    assert overlap(float("nan"), float("nan"), 0.3, 0.4) is None
