"""Control charts and site-to-site equivalence across lots, against textbook values and scipy's Welch test."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from rapidrelease.records import AttributeResult, Release
from rapidrelease.report.trends import attribute_trends, equivalence_of_means, individuals_limits

LotOf = Callable[..., Release]


def test_individuals_limits_use_the_average_moving_range() -> None:
    # Montgomery's I-chart: σ̂ = MR̄ / 1.128; here MR = 2, 4, 1, 3 → MR̄ = 2.5
    limits = individuals_limits([10.0, 12.0, 8.0, 9.0, 12.0], min_values=5)
    assert limits is not None
    assert limits.mean == pytest.approx(10.2)
    assert limits.sigma == pytest.approx(2.5 / 1.128)
    assert (limits.lower, limits.upper) == pytest.approx((10.2 - 3 * 2.5 / 1.128, 10.2 + 3 * 2.5 / 1.128))
    assert individuals_limits([10.0], min_values=1) is None
    # Phase I limits by default need 20 values
    assert individuals_limits([10.0, 12.0, 8.0, 9.0, 12.0]) is None
    assert individuals_limits([10.0, 12.0] * 10).n_baseline == 20


def _welch_tost_p(a: np.ndarray, b: np.ndarray, margin: float) -> float:
    # the two one-sided hypotheses as scipy's own Welch tests on shifted samples
    lower = stats.ttest_ind(a + margin, b, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(a - margin, b, equal_var=False, alternative="less").pvalue
    return max(lower, upper)


@pytest.mark.parametrize(("shift", "equivalent"), [(0.3, True), (2.5, False)])
def test_tost_agrees_with_two_scipy_welch_tests(shift: float, equivalent: bool) -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(5.0e6, 0.4e6, 12) / 1e6
    b = rng.normal(5.0e6, 0.6e6, 9) / 1e6 + shift
    result = equivalence_of_means("SITE-A", list(a), "SITE-B", list(b), margin=1.0)
    assert result.p_value == pytest.approx(_welch_tost_p(a, b, 1.0), rel=1e-9)
    assert result.equivalent is equivalent
    low, high = result.interval
    # equivalent exactly when the 90 % interval lies inside ±margin
    assert (low > -1.0 and high < 1.0) is equivalent
    assert result.difference == pytest.approx(a.mean() - b.mean())


def test_equivalence_needs_two_lots_per_site_and_a_margin() -> None:
    few = equivalence_of_means("SITE-A", [1.0, 2.0], "SITE-B", [1.5], margin=1.0)
    assert few.equivalent is None and "SITE-B: 1" in few.reason
    unset = equivalence_of_means("SITE-A", [1.0, 2.0], "SITE-B", [1.5, 1.7], margin=None)
    assert unset.equivalent is None and "trends.margins" in unset.reason


@pytest.fixture
def lot(make_release: Callable[..., Release], make_attribute: Callable[..., AttributeResult]) -> LotOf:
    """``lot(lot_id, site, day, status, **values)``: a lot collected on 2026-11-<day>, with its values."""

    def made(lot_id: str, site: str, day: int, status: str, **values: float | str | None) -> Release:
        attributes = [
            make_attribute(name, value, "INCONCLUSIVE" if value is None else "PASS")
            for name, value in values.items()
        ]
        return make_release(
            lot_id, status, attributes, site=site, collected_at=f"2026-11-{day:02d}T08:00:00+01:00"
        )

    return made


def test_a_lot_beyond_the_baselines_limits_is_flagged_whatever_its_status(lot: LotOf) -> None:
    # 20 decided lots alternating 88 and 90 (the last not releasable for another attribute), then
    # an outlier and an inconclusive lot; file order is not time order
    releases = [
        lot(
            f"L{d:02d}",
            "SITE-A",
            d,
            "RELEASE_CANDIDATE" if d < 20 else "NOT_RELEASABLE",
            viability=88.0 + 2 * (d % 2),
        )
        for d in range(20, 0, -1)
    ] + [
        lot("L21", "SITE-B", 21, "NOT_RELEASABLE", viability=60.0),
        lot("L22", "SITE-A", 22, "INCONCLUSIVE", viability=None),
    ]
    (trend,) = attribute_trends(releases)
    # time order; the inconclusive value is not charted
    assert [p.lot_id for p in trend.points] == [f"L{d:02d}" for d in range(1, 22)]
    # baseline = every decided lot, whatever its specification result: 21 values, MR̄ = (19 × 2 + 28) / 20
    assert trend.limits.n_baseline == 21
    mean = (10 * 90.0 + 10 * 88.0 + 60.0) / 21
    assert trend.limits.mean == pytest.approx(mean)
    assert trend.limits.sigma == pytest.approx((19 * 2 + 28) / 20 / 1.128)
    assert [p.beyond_limits for p in trend.points] == [False] * 20 + [True]
    assert all(p.baseline for p in trend.points)


def test_fewer_than_20_baseline_lots_give_no_limits_and_say_so(lot: LotOf) -> None:
    # issue 17 item 8: limits from 2 baseline lots flagged 20 % of in-control lots
    releases = [lot(f"L{d}", "SITE-A", d, "RELEASE_CANDIDATE", viability=88.0 + d % 3) for d in range(1, 20)]
    (trend,) = attribute_trends(releases)
    assert trend.limits is None
    assert trend.limits_reason == (
        "no control limits: Phase I limits need at least 20 baseline lots, and 19 have a value"
    )
    assert not any(p.beyond_limits for p in trend.points)


def test_an_assignable_cause_not_a_failed_specification_leaves_a_lot_out_of_the_baseline(lot: LotOf) -> None:
    releases = [lot(f"L{d:02d}", "SITE-A", d, "NOT_RELEASABLE", viability=88.0 + d % 2) for d in range(1, 22)]
    (trend,) = attribute_trends(releases, excluded_lots={"L05": "deviation DEV-31: wrong medium lot"})
    assert [p.lot_id for p in trend.points if not p.baseline] == ["L05"]
    assert trend.limits.n_baseline == 20


def test_the_chart_uses_the_measured_value_not_the_rounded_one(lot: LotOf, make_attribute) -> None:
    releases = [lot(f"L{d:02d}", "SITE-A", d, "RELEASE_CANDIDATE", viability=90.0) for d in range(1, 21)]
    measured = make_attribute("viability", 90.0)
    measured = dataclasses.replace(
        measured, evidence=dataclasses.replace(measured.evidence, measured_value=90.04)
    )
    releases[0] = dataclasses.replace(releases[0], attributes=(measured,))
    (trend,) = attribute_trends(releases)
    assert trend.points[0].value == 90.04
    assert trend.limits.mean == pytest.approx(90.0 + 0.04 / 20)


def test_no_equivalence_is_declared_at_zero_standard_error() -> None:
    # identical values within both sites: before issue 17 this was "equivalent" with p = 0
    same = equivalence_of_means("SITE-A", [5.0, 5.0, 5.0], "SITE-B", [5.1, 5.1], margin=1.0)
    assert (same.equivalent, same.p_value, same.interval) == (None, None, None)
    assert same.reason.startswith("not tested: no spread within either site (standard error 0)")


def test_a_named_baseline_replaces_the_decided_lots(lot: LotOf) -> None:
    releases = [lot(f"L{d:02d}", "SITE-A", d, "RELEASE_CANDIDATE", dose=float(d)) for d in range(1, 31)]
    named = [f"L{d:02d}" for d in range(1, 21)]
    (trend,) = attribute_trends(releases, baseline_lots=named, margins={"dose": 1.0})
    assert trend.limits.n_baseline == 20 and trend.limits.mean == pytest.approx(10.5)
    assert trend.comparisons == ()  # one site: nothing to compare


def test_sites_are_compared_pairwise_with_the_attributes_margin(lot: LotOf) -> None:
    releases = [
        lot(f"A{d}", "SITE-A", d, "RELEASE_CANDIDATE", dose=5.0 + 0.1 * (d % 3)) for d in range(1, 7)
    ] + [lot(f"B{d}", "SITE-B", d + 10, "RELEASE_CANDIDATE", dose=5.05 + 0.1 * (d % 2)) for d in range(1, 7)]
    (trend,) = attribute_trends(releases, margins={"dose": 0.5})
    (comparison,) = trend.comparisons
    assert (comparison.site_a, comparison.site_b, comparison.n_a, comparison.n_b) == (
        "SITE-A",
        "SITE-B",
        6,
        6,
    )
    assert comparison.equivalent is True


def _false_flag_rate(n_baseline: int, trials: int = 4_000) -> float:
    """Share of in-control lots (drawn like the baseline) beyond limits from ``n_baseline`` lots."""
    rng = np.random.default_rng(8)
    flagged = 0
    for _ in range(trials):
        values = rng.normal(0.0, 1.0, n_baseline + 1)
        limits = individuals_limits(list(values[:-1]), min_values=2)
        flagged += not limits.lower <= values[-1] <= limits.upper
    return flagged / trials


def test_the_issues_20_percent_false_flags_from_2_baseline_lots_fall_below_2_percent_from_20():
    # issue 17 item 8: limits from 2 lots flag ~20 % of in-control lots; Phase I from 20 near 1 %
    assert _false_flag_rate(2) == pytest.approx(0.20, abs=0.03)
    assert _false_flag_rate(20) < 0.02
