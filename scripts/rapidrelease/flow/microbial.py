"""Microbial detection by flow: a test tube's nucleic-acid-dye-positive events against sterile medium.

A negative control (the sterile medium, stained and acquired like the test) shows how many events
the dye, the medium and the instrument put in the microbial gate without any microbe. The test's
count ``x`` in ``v_t`` mL and the control's ``c`` in ``v_c`` mL are Poisson counts. Whatever the
background rate, under H0 (the test holds only what the medium holds, per mL) the test's share of
the ``x + c`` events is binomial: ``x | x + c ~ Binomial(x + c, π)`` with ``π = v_t / (v_t + v_c)``
(the exact conditional test of two Poisson rates; Przyborowski & Wilenski 1940, Lehmann & Romano
*Testing Statistical Hypotheses* §4.6). The test is DETECTED when the one-sided p-value
``P(X ≥ x | x + c, π)`` is at most the panel's ``alpha`` (default 0.01). Being conditional on the
total, the test holds its size at every background level: a sterile tube is called DETECTED with
probability ≤ α whether the medium shows 0 or 50 events. (The rule it replaces compared ``x`` with
a 95 % upper bound on the control's mean and called 3–12 % of sterile tubes DETECTED.)

The run's limit of detection follows from the test's critical value: ``k`` is the fewest test events
that would be DETECTED against this control, and the LOD is the microbial concentration whose
events, added to the expected background ``c·v_t/v_c``, reach ``k`` with the panel's
``detection_probability`` (default 0.95) — the Poisson mean ``m`` with ``P(X ≥ k | m) = 0.95``, less
the background, per mL of test. A control that is missing or unusable, or a test or control without
a volume, makes the call and the LOD INCONCLUSIVE.
"""

from __future__ import annotations

from collections.abc import Mapping

from rapidrelease.flow.metrics import MetricContext, concentration_record, single_control
from rapidrelease.flow.panel import DETECTION_METRICS, Panel
from rapidrelease.records import Json, Metric
from rapidrelease.stats import binomial_tail_at_least, mean_detected

__all__ = ["DETECTED", "NOT_DETECTED", "conditional_p_value", "critical_count", "detection_metrics"]

DETECTED, NOT_DETECTED = "DETECTED", "NOT_DETECTED"
CALL, LOD = DETECTION_METRICS


def conditional_p_value(test: int, control: int, test_share: float) -> float:
    """One-sided p-value of ``test`` events against ``control``: P(X ≥ test), X ~ Bin(test + control, π).

    ``test_share`` is π = v_t / (v_t + v_c), the test's share of the total volume acquired. A test
    with no events has p = 1.
    """
    if test < 0 or control < 0:
        raise ValueError(f"event counts cannot be negative ({test}, {control})")
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"the test's share of the volume must lie strictly between 0 and 1 ({test_share})")
    if test == 0:
        return 1.0
    return binomial_tail_at_least(test, test + control, test_share)


def critical_count(control: int, test_share: float, alpha: float) -> int:
    """The fewest test events DETECTED against ``control`` events at level ``alpha`` (the critical value).

    The p-value falls as the test's count rises with the control's fixed, so the critical value is
    found by doubling and then bisection.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1 ({alpha})")
    high = 1
    while conditional_p_value(high, control, test_share) > alpha:
        high *= 2
    low = high // 2  # not detected (or 0)
    while high - low > 1:
        middle = (low + high) // 2
        if conditional_p_value(middle, control, test_share) <= alpha:
            high = middle
        else:
            low = middle
    return high


def detection_metrics(
    panel: Panel, metrics: Mapping[str, Metric], context: MetricContext
) -> dict[str, Metric]:
    """``microbial_call`` and ``microbial_lod_per_ml`` of a test tube against its negative control.

    A negative control tube gets neither (it is the background). ``metrics`` are the tube's own
    metrics, of which the panel's detection metric is judged.
    """
    assert panel.detection is not None
    if context.role == "negative_control":
        return {}
    detection = panel.detection
    metric = next(m for m in panel.metrics if m.name == detection.metric)
    tested = metrics[detection.metric]
    per_ml = tested.unit or "events/mL"

    def inconclusive(status: str, reason: str | None) -> dict[str, Metric]:
        return {
            CALL: Metric(None, None, "category", status, reason),
            LOD: Metric(None, per_ml, "lod", status, reason),
        }

    if tested.status != "ok":
        return inconclusive(tested.status, tested.reason)
    control = single_control(metric, "negative_control", context)
    if isinstance(control, Metric):
        return inconclusive(control.status, control.reason)
    background = concentration_record(metric, control)
    if background.status != "ok":
        return inconclusive(background.status, f"the negative control {control.unit_id}: {background.reason}")
    assert tested.numerator is not None and background.numerator is not None
    assert isinstance(tested.value, float) and isinstance(background.value, float)
    ceiling = detection.negative_control_max_per_ml
    if background.value > ceiling:
        return inconclusive(
            "invalid_control",
            f"the negative control {control.unit_id} holds {background.value:.4g} {per_ml} in "
            f"{metric.numerator[-1]}, above the {ceiling:g} {per_ml} a valid sterile-medium control allows",
        )
    x, v_t = tested.numerator.count, _volume_ml(tested)
    c, v_c = background.numerator.count, _volume_ml(background)
    share = v_t / (v_t + v_c)
    p_value = conditional_p_value(x, c, share)
    threshold = critical_count(c, share, detection.alpha)
    expected_background = c * v_t / v_c
    lod = (mean_detected(threshold, detection.detection_probability) - expected_background) / v_t
    evidence: dict[str, Json] = {
        "test": {"unit_id": context.tube.unit_id, "metric": detection.metric, "count": x, "volume_ml": v_t},
        "negative_control": {
            "unit_id": control.unit_id,
            "count": c,
            "volume_ml": v_c,
            "per_ml": background.value,
        },
        "method": "exact conditional binomial test of two Poisson counts (one-sided)",
        "test_share": share,
        "p_value": p_value,
        "alpha": detection.alpha,
        "expected_background_events": expected_background,
        "detection_threshold_events": threshold,
        "detection_probability": detection.detection_probability,
    }
    call = DETECTED if p_value <= detection.alpha else NOT_DETECTED
    detail = (
        f"{x} events in {metric.numerator[-1]} ({tested.value:.4g} {per_ml}) against the negative control "
        f"{control.unit_id}'s {c} ({background.value:.4g} {per_ml}): one-sided p = {p_value:.2g} ≤ "
        f"α = {detection.alpha:g}; detected from {threshold} events"
    )
    return {
        CALL: Metric(call, None, "category", detail=detail if call == DETECTED else None, evidence=evidence),
        LOD: Metric(lod, per_ml, "lod", evidence=evidence),
    }


def _volume_ml(concentration: Metric) -> float:
    volume = concentration.evidence["volume"]
    assert isinstance(volume, Mapping) and isinstance(volume["ml"], float)
    return volume["ml"]
