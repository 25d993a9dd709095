"""Metrics from gated populations, with the event counts and confidence intervals behind them.

A percentage of few events is not a release result: every metric carries its numerator and
denominator counts and a 95 % confidence interval, and a metric whose events fall below the panel's
``min_events`` is reported with status ``insufficient_events`` (the specification then calls the
attribute INCONCLUSIVE).
"""

from __future__ import annotations

import math
from typing import Any

from rapidrelease.flow.panel import MetricDefinition, Panel
from rapidrelease.gating.engine import GatingResult
from rapidrelease.gating.template import population_path

__all__ = ["compute_metrics", "metric_record", "wilson_interval"]

Z_95 = 1.959963984540054  # two-sided 95 % standard normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion, as fractions in [0, 1].

    Wilson (1927); preferred to the normal (Wald) interval because it stays inside [0, 1] and keeps
    its coverage for proportions near 0 or 1 — typical of CAR+ or viability fractions.
    """
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def metric_record(metric: MetricDefinition, counts: dict[tuple[str, ...], int]) -> dict[str, Any]:
    """One metric of ``metrics.json`` from population counts (path → events).

    Percent: 100 × numerator / denominator, with its Wilson interval; the denominator must hold at
    least ``min_events``. Ratio (e.g. CD4:CD8): numerator / denominator, its interval from the Wilson
    interval of numerator / (numerator + denominator); the two populations together must hold at
    least ``min_events`` and the denominator at least one event. Count: the numerator's events.
    """
    num = counts[metric.numerator]
    den = counts[metric.denominator] if metric.denominator else None
    record: dict[str, Any] = {
        "value": None,
        "unit": metric.unit,
        "kind": metric.kind,
        "status": "ok",
        "reason": None,
        "numerator": {"population": population_path(metric.numerator), "count": num},
        "denominator": None
        if den is None
        else {"population": population_path(metric.denominator), "count": den},
        "ci95": None,
        "min_events": metric.min_events,
        "description": metric.description,
    }

    def insufficient(events: int, what: str) -> dict[str, Any]:
        record["status"] = "insufficient_events"
        record["reason"] = (
            f"{metric.name} rests on {events} events in {what}, "
            f"fewer than the {metric.min_events} the panel requires."
        )
        return record

    if metric.kind == "count":
        record["value"] = num
        return record
    assert den is not None and metric.denominator is not None
    if metric.kind == "percent":
        if den < metric.min_events:
            return insufficient(den, population_path(metric.denominator))
        lo, hi = wilson_interval(num, den)
        record["value"] = 100.0 * num / den
        record["ci95"] = [100.0 * lo, 100.0 * hi]
        return record
    total = num + den
    if total < metric.min_events:
        return insufficient(
            total, f"{population_path(metric.numerator)} and {population_path(metric.denominator)}"
        )
    if den == 0:
        record["status"] = "not_computable"
        record["reason"] = (
            f"{metric.name} is undefined: {population_path(metric.denominator)} holds no events."
        )
        return record
    lo, hi = wilson_interval(num, total)  # hi < 1 because the denominator holds events
    record["value"] = num / den
    record["ci95"] = [lo / (1 - lo), hi / (1 - hi)]
    return record


def compute_metrics(panel: Panel, result: GatingResult) -> dict[str, dict[str, Any]]:
    """Every metric of ``panel`` from one tube's gating result, by metric name, in panel order."""
    counts = {pop.path: pop.count for pop in result.populations}
    return {metric.name: metric_record(metric, counts) for metric in panel.metrics}
