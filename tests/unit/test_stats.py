"""Poisson statistics against values a statistician checks by hand or in a table."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from rapidrelease.stats import (
    binomial_tail_at_least,
    equal_rate_tail,
    holm_adjusted,
    lower_bound,
    mean_detected,
    organisms_detected,
    tail_at_least,
    upper_bound,
)


def test_upper_bound_of_zero_is_the_rule_of_three() -> None:
    # observing nothing, the 95 % upper bound of a Poisson mean is -ln(0.05) = 2.996 (the "rule of three")
    assert upper_bound(0, 0.95) == pytest.approx(-math.log(0.05), rel=1e-9)


@pytest.mark.parametrize("count", [1, 5, 20, 100])
def test_upper_bound_equals_the_chi_square_form(count: int) -> None:
    # Garwood's exact interval: upper = chi2(0.95, 2k + 2) / 2
    assert upper_bound(count, 0.95) == pytest.approx(stats.chi2.ppf(0.95, 2 * count + 2) / 2, rel=1e-9)


@pytest.mark.parametrize(("count", "mean"), [(1, 0.5), (3, 2.0), (10, 4.0), (50, 40.0)])
def test_tail_equals_the_survival_function(count: int, mean: float) -> None:
    assert tail_at_least(count, mean) == pytest.approx(stats.poisson.sf(count - 1, mean), rel=1e-9)


def test_tail_edges() -> None:
    assert tail_at_least(0, 3.0) == 1.0
    assert tail_at_least(2, 0.0) == 0.0


def test_three_copies_are_the_single_read_detection_limit() -> None:
    # a detector that needs one read sees it with 95 % probability at a mean of 3.0 reads
    assert mean_detected(1, 0.95) == pytest.approx(2.9957, abs=1e-4)
    # needing three reads, the mean must be 6.30 (P(X >= 3 | 6.30) = 0.95)
    assert mean_detected(3, 0.95) == pytest.approx(6.2958, abs=1e-4)
    assert stats.poisson.sf(2, mean_detected(3, 0.95)) == pytest.approx(0.95, abs=1e-9)


def test_lower_bound_is_the_exact_poisson_lower_limit() -> None:
    assert lower_bound(0) == 0.0
    assert lower_bound(112) == pytest.approx(95.18, abs=0.01)
    # the chi-square form: χ²(0.05; 2x) / 2
    assert lower_bound(500) == pytest.approx(stats.chi2.ppf(0.05, 1000) / 2)


@pytest.mark.parametrize(("successes", "trials", "p"), [(1, 1, 0.5), (9, 10, 1 / 3), (30, 200, 0.1)])
def test_binomial_tail_equals_the_survival_function(successes: int, trials: int, p: float) -> None:
    assert binomial_tail_at_least(successes, trials, p) == pytest.approx(
        stats.binom.sf(successes - 1, trials, p)
    )


def test_holm_adjusts_in_the_order_given_and_is_monotone() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 × 0.005, 3 × 0.01, max(2 × 0.03, ·), max(0.04, ·)
    assert holm_adjusted([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjusted([0.5, 0.9]) == [1.0, 1.0] and holm_adjusted([]) == []


def test_equal_rate_tail_is_binomial_without_spread_and_wider_with_it() -> None:
    exact = equal_rate_tail(12, 0, 100_000, 50_000)
    assert exact == pytest.approx((2 / 3) ** 12)
    spread = equal_rate_tail(12, 0, 100_000, 50_000, cv=0.3)
    assert exact < spread < 0.05
    # more controls of the same total depth average their spread: closer to the exact test
    assert exact < equal_rate_tail(12, 0, 100_000, 50_000, cv=0.3, controls=4) < spread
    assert equal_rate_tail(0, 5, 1, 1, cv=0.3) == 1.0


def test_organisms_detected_adds_the_sample_and_the_reads() -> None:
    # one organism read a million times: only the sample limits, −ln(0.05) = 3.0 organisms
    assert organisms_detected(3, 1e6) == pytest.approx(-math.log(0.05), rel=1e-6)
    # a thousandth of a read per organism: only the reads limit, λ95(5) = 9.15 reads
    assert organisms_detected(5, 1e-3) * 1e-3 == pytest.approx(mean_detected(5), rel=1e-3)
    # an inhibited sample's millions of organisms per read: the same bound, summed near its mean only
    assert organisms_detected(5, 1e-6) * 1e-6 == pytest.approx(mean_detected(5), rel=1e-3)
    # in between both count: 18.6 reads per organism, 14 needed: 3.32 organisms, not 3.0 or 1.11
    assert organisms_detected(14, 18.552) == pytest.approx(3.323, abs=1e-3)
    with pytest.raises(ValueError, match="threshold"):
        organisms_detected(0, 1.0)
