"""Control charts and site-to-site equivalence across lots, against textbook values and scipy's Welch test."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from rapidrelease.records import AttributeResult, Release
from rapidrelease.report.trends import attribute_trends, equivalence_of_means, individuals_limits

LotOf = Callable[..., Release]


def test_individuals_limits_use_the_average_moving_range() -> None:
    # Montgomery's I-chart: σ̂ = MR̄ / 1.128; here MR = 2, 4, 1, 3 → MR̄ = 2.5
    limits = individuals_limits([10.0, 12.0, 8.0, 9.0, 12.0])
    assert limits is not None
    assert limits.mean == pytest.approx(10.2)
    assert limits.sigma == pytest.approx(2.5 / 1.128)
    assert (limits.lower, limits.upper) == pytest.approx((10.2 - 3 * 2.5 / 1.128, 10.2 + 3 * 2.5 / 1.128))
    assert individuals_limits([10.0]) is None


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
    releases = [
        lot("L03", "SITE-A", 3, "RELEASE_CANDIDATE", viability=90.0),
        lot("L01", "SITE-A", 1, "RELEASE_CANDIDATE", viability=88.0),
        lot("L02", "SITE-B", 2, "RELEASE_CANDIDATE", viability=89.0),
        lot("L04", "SITE-B", 4, "RELEASE_CANDIDATE", viability=91.0),
        lot("L05", "SITE-B", 5, "NOT_RELEASABLE", viability=60.0),
        lot("L06", "SITE-A", 6, "INCONCLUSIVE", viability=None),
    ]
    (trend,) = attribute_trends(releases)
    # time order, not file order; the inconclusive value is not charted
    assert [p.lot_id for p in trend.points] == ["L01", "L02", "L03", "L04", "L05"]
    # baseline = the four release candidates: mean 89.5, MR̄ = 1 → σ = 1/1.128
    assert trend.limits.mean == pytest.approx(89.5)
    assert trend.limits.upper == pytest.approx(89.5 + 3 / 1.128)
    assert [p.beyond_limits for p in trend.points] == [False, False, False, False, True]
    assert [p.baseline for p in trend.points] == [True, True, True, True, False]


def test_a_named_baseline_replaces_the_release_candidates(lot: LotOf) -> None:
    releases = [lot(f"L{d}", "SITE-A", d, "RELEASE_CANDIDATE", dose=float(d)) for d in range(1, 6)]
    (trend,) = attribute_trends(releases, baseline_lots=["L1", "L2"], margins={"dose": 1.0})
    assert trend.limits.n_baseline == 2 and trend.limits.mean == pytest.approx(1.5)
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
