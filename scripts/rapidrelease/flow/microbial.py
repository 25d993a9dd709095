"""Microbial detection by flow: a test tube's nucleic-acid-dye-positive events against sterile medium.

A negative control (the sterile medium, stained and acquired like the test) shows how many events
the dye, the medium and the instrument put in the microbial gate without any microbe. Its count
``c`` in ``v_c`` mL is a Poisson count. Its one-sided upper confidence bound ``U(c)``, scaled to the
test's volume ``v_t``, is the most background the test could plausibly hold. The test is
DETECTED when its count ``x`` exceeds that, i.e. ``x ≥ k = ⌊U(c)·v_t/v_c⌋ + 1``.

The run's limit of detection is the microbial concentration the test would detect with the same
confidence: the Poisson mean ``m`` with ``P(X ≥ k | m) = confidence``, less the expected
background ``c·v_t/v_c``, per mL of test. A control that is missing or unusable, or a test or
control without a volume, makes the call and the LOD INCONCLUSIVE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from rapidrelease.flow.metrics import MetricContext, concentration_record, single_control
from rapidrelease.flow.panel import DETECTION_METRICS, Panel
from rapidrelease.records import Json, Metric
from rapidrelease.stats import mean_detected, upper_bound

__all__ = ["DETECTED", "NOT_DETECTED", "detection_metrics"]

DETECTED, NOT_DETECTED = "DETECTED", "NOT_DETECTED"
CALL, LOD = DETECTION_METRICS


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
    scale = v_t / v_c
    bound = upper_bound(c, detection.confidence) * scale
    threshold = math.floor(bound) + 1
    expected_background = c * scale
    lod = (mean_detected(threshold, detection.confidence) - expected_background) / v_t
    evidence: dict[str, Json] = {
        "test": {"unit_id": context.tube.unit_id, "count": x, "volume_ml": v_t},
        "negative_control": {
            "unit_id": control.unit_id,
            "count": c,
            "volume_ml": v_c,
            "per_ml": background.value,
        },
        "background_upper_bound": bound,
        "detection_threshold_events": threshold,
        "confidence": detection.confidence,
    }
    call = DETECTED if x >= threshold else NOT_DETECTED
    detail = (
        f"{x} events in {metric.numerator[-1]} ({tested.value:.4g} {per_ml}) against the negative control "
        f"{control.unit_id}'s {c} ({background.value:.4g} {per_ml}); detected from {threshold} events"
    )
    return {
        CALL: Metric(call, None, "category", detail=detail if call == DETECTED else None, evidence=evidence),
        LOD: Metric(lod, per_ml, "lod", evidence=evidence),
    }


def _volume_ml(concentration: Metric) -> float:
    volume = concentration.evidence["volume"]
    assert isinstance(volume, Mapping) and isinstance(volume["ml"], float)
    return volume["ml"]
