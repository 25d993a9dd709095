"""Attributes across lots: individuals control charts and site-to-site comparability.

Distributed manufacturing is only safe if a dose made at one site is the same as one made at
another. Two statistics answer that from the lots' release.json records:

- an **individuals (I) chart** per numeric attribute: centre line the mean of a baseline of lots,
  limits mean ± 3σ with σ estimated from the average moving range of consecutive baseline lots
  (σ = MR̄ / d₂, d₂ = 1.128 for ranges of two; Montgomery, *Introduction to Statistical Quality
  Control*, §6.4), so that a drift between lots does not widen its own limits. These are Phase I
  limits, and they need at least :data:`MIN_BASELINE_LOTS` (20) baseline values: from two lots the
  moving-range σ is so uncertain that 20 % of in-control lots fall outside the limits (issue 17),
  and Montgomery asks for 20–25. With fewer the chart shows the lots without limits and says why.
  The baseline is chosen by assignable cause, not by specification: every decided lot (a release
  candidate or not releasable — a lot that fails a specification is still a lot of the process)
  whose value of the attribute was judged, less the lots named in config.yaml
  ``trends.excluded_lots`` with their assignable cause; or exactly the lots named in
  ``trends.baseline_lots``. (A baseline of release candidates only cut off the process's tails and
  understated σ by about 20 %.) A point beyond the limits is flagged whatever its lot's status;
- **equivalence of two sites' means** within a margin set per attribute (``trends.margins``),
  by two one-sided Welch t-tests (TOST; Schuirmann 1987): equivalent when the (1 − 2α) interval
  of the difference lies inside ±margin, i.e. both one-sided p-values are below α. Absence of a
  significant difference is not evidence of sameness; TOST asks for the evidence. Two sites whose
  lots show no spread at all (a standard error of zero) are not tested: identical values say more
  about rounding or a stuck instrument than about sameness.

Lots are ordered by ``collected_at``; only values the decision judged (a number, not an
inconclusive attribute) enter either statistic, and as measured (the attribute's evidence), not
as rounded to the specification's decimals for the comparison with its limit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rapidrelease.config.vocabulary import INCONCLUSIVE, NOT_RELEASABLE, RELEASE_CANDIDATE
from rapidrelease.records import AttributeResult, Release

__all__ = [
    "D2_RANGE_OF_TWO",
    "MIN_BASELINE_LOTS",
    "AttributeTrend",
    "ControlLimits",
    "Equivalence",
    "TrendPoint",
    "attribute_trends",
    "equivalence_of_means",
    "equivalence_of_summaries",
    "individuals_limits",
]

D2_RANGE_OF_TWO = 1.128

MIN_BASELINE_LOTS = 20
"""Fewest baseline values for Phase I limits of an individuals chart (Montgomery §6.4: 20–25)."""

DECIDED = (RELEASE_CANDIDATE, NOT_RELEASABLE)
"""Lot statuses whose values enter the default baseline: the lots the process made and the decision judged."""


@dataclass(frozen=True)
class ControlLimits:
    """Centre line and ±3σ limits of an individuals chart, from ``n_baseline`` baseline values."""

    mean: float
    sigma: float
    lower: float
    upper: float
    n_baseline: int


@dataclass(frozen=True)
class TrendPoint:
    """One lot's value of an attribute: ``beyond_limits`` when outside the chart's limits."""

    lot_id: str
    site: str
    collected_at: str
    value: float
    result: str
    status: str
    baseline: bool
    beyond_limits: bool


@dataclass(frozen=True)
class Equivalence:
    """TOST of two sites' means: ``difference`` is mean(site_a) − mean(site_b) in the attribute's unit.

    ``equivalent`` is None, with ``reason``, when either site has fewer than two lots or no margin
    is configured.
    """

    site_a: str
    site_b: str
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    difference: float | None
    interval: tuple[float, float] | None
    margin: float | None
    p_value: float | None
    equivalent: bool | None
    reason: str


@dataclass(frozen=True)
class AttributeTrend:
    """An attribute's chart across lots and its site-to-site comparisons."""

    name: str
    description: str
    unit: str
    points: tuple[TrendPoint, ...]
    limits: ControlLimits | None
    limits_reason: str
    comparisons: tuple[Equivalence, ...]


def individuals_limits(values: Sequence[float], min_values: int = MIN_BASELINE_LOTS) -> ControlLimits | None:
    """I-chart limits from baseline values in time order; None with fewer than ``min_values`` (20)."""
    if len(values) < max(2, min_values):
        return None
    mean = math.fsum(values) / len(values)
    moving_ranges = [abs(b - a) for a, b in itertools.pairwise(values)]
    sigma = math.fsum(moving_ranges) / len(moving_ranges) / D2_RANGE_OF_TWO
    return ControlLimits(mean, sigma, mean - 3 * sigma, mean + 3 * sigma, len(values))


def _variance(values: Sequence[float]) -> float:
    """Sample variance (n − 1 in the denominator)."""
    mean = math.fsum(values) / len(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def equivalence_of_means(
    site_a: str,
    a: Sequence[float],
    site_b: str,
    b: Sequence[float],
    margin: float | None,
    alpha: float = 0.05,
) -> Equivalence:
    """Welch TOST of H0: |mean(a) − mean(b)| ≥ margin against H1: the means are within ±margin."""
    n_a, n_b = len(a), len(b)
    mean_a = math.fsum(a) / n_a if n_a else None
    mean_b = math.fsum(b) / n_b if n_b else None
    return equivalence_of_summaries(
        site_a,
        n_a,
        mean_a,
        _variance(a) if n_a > 1 else None,
        site_b,
        n_b,
        mean_b,
        _variance(b) if n_b > 1 else None,
        margin,
        alpha,
    )


def equivalence_of_summaries(
    site_a: str,
    n_a: int,
    mean_a: float | None,
    variance_a: float | None,
    site_b: str,
    n_b: int,
    mean_b: float | None,
    variance_b: float | None,
    margin: float | None,
    alpha: float = 0.05,
) -> Equivalence:
    """The Welch TOST of :func:`equivalence_of_means` from each group's count, mean and sample
    variance (n − 1) alone: what two programs' shared summaries hold (rapidrelease share combine)."""
    difference = None if mean_a is None or mean_b is None else mean_a - mean_b

    def decided(
        interval: tuple[float, float] | None, p_value: float | None, equivalent: bool | None, reason: str
    ) -> Equivalence:
        return Equivalence(
            site_a,
            site_b,
            n_a,
            n_b,
            mean_a,
            mean_b,
            difference,
            interval,
            margin,
            p_value,
            equivalent,
            reason,
        )

    if margin is None:
        return decided(
            None,
            None,
            None,
            "no equivalence margin is configured for this attribute (config.yaml trends.margins)",
        )
    if n_a < 2 or n_b < 2 or variance_a is None or variance_b is None:
        return decided(None, None, None, f"needs at least 2 lots per site ({site_a}: {n_a}, {site_b}: {n_b})")
    assert difference is not None
    se_squared = variance_a / n_a + variance_b / n_b
    if se_squared == 0:
        # identical values within each site: no estimate of the spread, so no test of the difference
        return decided(
            None,
            None,
            None,
            "not tested: no spread within either site (standard error 0), so the difference of the "
            "means has no interval",
        )
    # imported here: scipy.stats took seconds to import in every report job, which never compare sites
    from scipy import stats

    se = math.sqrt(se_squared)
    # Welch–Satterthwaite degrees of freedom
    df = se_squared**2 / ((variance_a / n_a) ** 2 / (n_a - 1) + (variance_b / n_b) ** 2 / (n_b - 1))
    p_lower = float(stats.t.sf((difference + margin) / se, df))  # H0: difference ≤ −margin
    p_upper = float(stats.t.cdf((difference - margin) / se, df))  # H0: difference ≥ +margin
    p_value = max(p_lower, p_upper)
    half = float(stats.t.ppf(1 - alpha, df)) * se
    equivalent = p_value < alpha
    where = "within" if equivalent else "reaches beyond"
    reason = f"{100 * (1 - 2 * alpha):g} % interval of the difference {where} ±{margin:g}"
    return decided((difference - half, difference + half), p_value, equivalent, reason)


def _number(value: float | str | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _measured(attribute: AttributeResult) -> float | None:
    """The attribute's value as measured (unrounded), or its reported value when none is recorded."""
    measured = _number(attribute.evidence.measured_value)
    return measured if measured is not None else _number(attribute.value)


def _collected(release: Release) -> datetime:
    return datetime.fromisoformat(release.lot.collected_at)


def attribute_trends(
    releases: Sequence[Release],
    baseline_lots: Sequence[str] | None = None,
    margins: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    excluded_lots: Mapping[str, str] | None = None,
    min_baseline: int = MIN_BASELINE_LOTS,
) -> list[AttributeTrend]:
    """Every numeric attribute's chart and comparisons across ``releases`` (release.json records).

    Attributes appear in the order the first lot's specification lists them. ``baseline_lots``
    replaces the default baseline (every decided lot, less ``excluded_lots``: lot → its assignable
    cause); ``margins`` maps attribute names to equivalence margins in the attribute's unit.
    Limits need ``min_baseline`` baseline values.
    """
    ordered = sorted(releases, key=lambda r: (_collected(r), r.lot.lot_id))
    chosen = set(baseline_lots) if baseline_lots is not None else None
    excluded = dict(excluded_lots or {})
    names: dict[str, AttributeResult] = {}
    for release in ordered:
        for attribute in release.attributes:
            names.setdefault(attribute.name, attribute)
    trends = []
    for name, first in names.items():
        rows = []
        for release in ordered:
            attribute = next((a for a in release.attributes if a.name == name), None)
            if attribute is None or attribute.result == INCONCLUSIVE:
                continue
            number = _measured(attribute)
            if number is None:
                continue
            lot = release.lot
            if chosen is not None:
                in_baseline = lot.lot_id in chosen
            else:
                in_baseline = release.status in DECIDED and lot.lot_id not in excluded
            rows.append((lot, release.status, attribute.result, number, in_baseline))
        if not rows:
            continue
        baseline = [r[3] for r in rows if r[4]]
        limits = individuals_limits(baseline, min_baseline)
        if limits is not None:
            reason = f"{limits.n_baseline} baseline lots"
        else:
            reason = (
                f"no control limits: Phase I limits need at least {min_baseline} baseline lots, "
                f"and {len(baseline)} {'has' if len(baseline) == 1 else 'have'} a value"
            )
        points = tuple(
            TrendPoint(
                lot_id=lot.lot_id,
                site=lot.site,
                collected_at=lot.collected_at,
                value=number,
                result=result,
                status=status,
                baseline=in_baseline,
                beyond_limits=limits is not None and not (limits.lower <= number <= limits.upper),
            )
            for lot, status, result, number, in_baseline in rows
        )
        by_site: dict[str, list[float]] = {}
        for point in points:
            by_site.setdefault(point.site, []).append(point.value)
        margin = None if margins is None else margins.get(name)
        comparisons = tuple(
            equivalence_of_means(a, by_site[a], b, by_site[b], margin, alpha)
            for a, b in itertools.combinations(sorted(by_site), 2)
        )
        trends.append(
            AttributeTrend(
                name=name,
                description=first.description,
                unit=first.unit,
                points=points,
                limits=limits,
                limits_reason=reason,
                comparisons=comparisons,
            )
        )
    return trends
