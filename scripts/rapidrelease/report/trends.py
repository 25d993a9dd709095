"""Attributes across lots: individuals control charts and site-to-site comparability.

Distributed manufacturing is only safe if a dose made at one site is the same as one made at
another. Two statistics answer that from the lots' release.json records:

- an **individuals (I) chart** per numeric attribute: centre line the mean of a baseline of lots,
  limits mean ± 3σ with σ estimated from the average moving range of consecutive baseline lots
  (σ = MR̄ / d₂, d₂ = 1.128 for ranges of two; Montgomery, *Introduction to Statistical Quality
  Control*, §6.4), so that a drift between lots does not widen its own limits. The baseline is the
  lots named in config.yaml ``trends.baseline_lots`` or, by default, every release-candidate lot;
  a point beyond the limits is flagged whatever its lot's status;
- **equivalence of two sites' means** within a margin set per attribute (``trends.margins``),
  by two one-sided Welch t-tests (TOST; Schuirmann 1987): equivalent when the (1 − 2α) interval
  of the difference lies inside ±margin, i.e. both one-sided p-values are below α. Absence of a
  significant difference is not evidence of sameness; TOST asks for the evidence.

Lots are ordered by ``collected_at``; only values the decision judged (a number, not an
inconclusive attribute) enter either statistic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from scipy import stats

from rapidrelease.config.vocabulary import INCONCLUSIVE, RELEASE_CANDIDATE
from rapidrelease.records import AttributeResult, Release

__all__ = [
    "D2_RANGE_OF_TWO",
    "AttributeTrend",
    "ControlLimits",
    "Equivalence",
    "TrendPoint",
    "attribute_trends",
    "equivalence_of_means",
    "individuals_limits",
]

D2_RANGE_OF_TWO = 1.128


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


def individuals_limits(values: Sequence[float]) -> ControlLimits | None:
    """I-chart limits from baseline values in time order; None with fewer than two values."""
    if len(values) < 2:
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
    if n_a < 2 or n_b < 2:
        return decided(None, None, None, f"needs at least 2 lots per site ({site_a}: {n_a}, {site_b}: {n_b})")
    assert difference is not None
    se_squared = _variance(a) / n_a + _variance(b) / n_b
    if se_squared == 0:
        # identical values within each site: the difference is known exactly
        inside = abs(difference) < margin
        return decided(
            (difference, difference), 0.0 if inside else 1.0, inside, "no spread within either site"
        )
    se = math.sqrt(se_squared)
    # Welch–Satterthwaite degrees of freedom
    df = se_squared**2 / ((_variance(a) / n_a) ** 2 / (n_a - 1) + (_variance(b) / n_b) ** 2 / (n_b - 1))
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


def _collected(release: Release) -> datetime:
    return datetime.fromisoformat(release.lot.collected_at)


def attribute_trends(
    releases: Sequence[Release],
    baseline_lots: Sequence[str] | None = None,
    margins: Mapping[str, float] | None = None,
    alpha: float = 0.05,
) -> list[AttributeTrend]:
    """Every numeric attribute's chart and comparisons across ``releases`` (release.json records).

    Attributes appear in the order the first lot's specification lists them. ``baseline_lots``
    replaces the default baseline (every RELEASE_CANDIDATE lot); ``margins`` maps attribute names to
    equivalence margins in the attribute's unit.
    """
    ordered = sorted(releases, key=lambda r: (_collected(r), r.lot.lot_id))
    chosen = set(baseline_lots) if baseline_lots is not None else None
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
            number = _number(attribute.value)
            if number is None:
                continue
            lot = release.lot
            in_baseline = release.status == RELEASE_CANDIDATE if chosen is None else lot.lot_id in chosen
            rows.append((lot, release.status, attribute.result, number, in_baseline))
        if not rows:
            continue
        limits = individuals_limits([r[3] for r in rows if r[4]])
        reason = (
            f"{limits.n_baseline} baseline lots"
            if limits is not None
            else "needs at least 2 baseline lots for control limits"
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
