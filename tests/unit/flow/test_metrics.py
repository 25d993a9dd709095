"""Metrics from population counts: values, confidence intervals and the minimum-events rule."""

from __future__ import annotations

import pytest

from rapidrelease.flow.metrics import metric_record
from rapidrelease.flow.panel import MetricDefinition
from rapidrelease.records import Population
from rapidrelease.stats import wilson_interval

LIVE = ("Cells", "Singlets", "Live")
SINGLETS = ("Cells", "Singlets")
CD4 = ("CAR", "CD4")
CD8 = ("CAR", "CD8")


def _percent(min_events: int = 100) -> MetricDefinition:
    return MetricDefinition("viability_pct", "percent", LIVE, SINGLETS, "Viable of single cells", min_events)


def test_wilson_interval_matches_the_published_formula():
    # 50 of 100: Wilson 95 % interval 0.4038–0.5962 (Newcombe 1998, method 3)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.40383, abs=1e-5) and hi == pytest.approx(0.59617, abs=1e-5)
    # stays inside [0, 1] at the extremes, where a normal interval would not
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert wilson_interval(0, 20)[1] == pytest.approx(0.16113, abs=1e-5)


def test_percent_metric_value_interval_and_counts():
    record = metric_record(_percent(), {LIVE: 8812, SINGLETS: 10000})
    assert record.status == "ok"
    assert record.value == pytest.approx(88.12)
    assert record.ci95[0] < 88.12 < record.ci95[1]
    assert record.ci95[1] - record.ci95[0] == pytest.approx(1.27, abs=0.02)  # ±0.63 points at n=10 000
    assert record.numerator == Population("Cells/Singlets/Live", 8812)
    assert record.denominator == Population("Cells/Singlets", 10000)
    assert record.unit == "%"


def test_percent_from_too_few_events_is_insufficient_with_a_reason():
    record = metric_record(_percent(min_events=100), {LIVE: 90, SINGLETS: 99})
    assert record.status == "insufficient_events"
    assert record.value is None
    assert record.reason == (
        "viability_pct rests on 99 events in Cells/Singlets, fewer than the 100 the panel requires."
    )
    assert metric_record(_percent(min_events=100), {LIVE: 90, SINGLETS: 100}).status == "ok"


def test_ratio_metric_and_its_interval():
    ratio = MetricDefinition("cd4_cd8_ratio", "ratio", CD4, CD8, "CD4:CD8", 100)
    record = metric_record(ratio, {CD4: 1400, CD8: 1000})
    assert record.value == pytest.approx(1.4)
    lo, hi = record.ci95
    assert lo < 1.4 < hi and hi - lo == pytest.approx(0.23, abs=0.02)
    assert record.unit == ""


def test_ratio_with_an_empty_denominator_is_not_computable():
    ratio = MetricDefinition("cd4_cd8_ratio", "ratio", CD4, CD8, "CD4:CD8", 100)
    record = metric_record(ratio, {CD4: 500, CD8: 0})
    assert record.status == "not_computable"
    assert record.value is None
    assert "CAR/CD8 holds no events" in record.reason


def test_ratio_needs_min_events_in_both_populations_together():
    ratio = MetricDefinition("cd4_cd8_ratio", "ratio", CD4, CD8, "CD4:CD8", 100)
    assert metric_record(ratio, {CD4: 60, CD8: 39}).status == "insufficient_events"
    assert metric_record(ratio, {CD4: 60, CD8: 40}).status == "ok"


def test_count_metric_is_the_numerator():
    count = MetricDefinition("car_events", "count", CD4, None, "", 100)
    record = metric_record(count, {CD4: 12})
    assert record.value == 12 and record.unit == "events" and record.status == "ok"
