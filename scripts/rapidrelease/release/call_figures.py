"""The numbers behind a categorical call, for release.json's evidence and the report's attribute table.

A sterility or microbial-flow attribute is judged on a category (NOT_DETECTED, DETECTED), which by
itself shows nothing a reviewer can check. The unit record that made the call holds the figures it
was decided on; this module picks them out, labelled and with their units:

- microbial flow: the test tube's events and volume, its count per mL with the 95 % interval, the
  sterile-medium control's events, volume and count per mL, the critical count and the test's p
  against α, and the limit of detection per mL;
- sterility by sequencing: the test's fragments, the detection threshold in reads and RPM, every
  organism detected with its reads, RPM and Holm-adjusted p, the sample's internal control (its
  reads, its sensitivity in the sample's matrix and its recovery of the positive control's, each
  with its 95 % interval) where it has one, and the limit of detection.

A figure the record does not hold is left out, never invented.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rapidrelease.config.vocabulary import DETECTED, READS_ASSAYS
from rapidrelease.records import EvidenceFigure, Json, Metric

__all__ = ["call_figures"]


def call_figures(
    assay: str, metrics: Mapping[str, Metric], evidence: Mapping[str, Json], call: Metric
) -> tuple[EvidenceFigure, ...]:
    """The figures ``call`` was decided on, in reading order: ``call`` is a category metric of a unit
    of ``assay`` whose record holds ``metrics`` and ``evidence``."""
    if assay == "microbial_flow":
        return _microbial(metrics, call)
    if assay in READS_ASSAYS:
        return _sterility(metrics, evidence)
    return ()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _figure(
    figures: list[EvidenceFigure],
    label: str,
    value: Any,
    unit: str | None = None,
    ci95: tuple[float, float] | None = None,
) -> None:
    number = _number(value)
    if number is not None:
        figures.append(EvidenceFigure(label, number, unit, ci95))


def _metric(figures: list[EvidenceFigure], label: str, metric: Metric | None) -> None:
    if metric is not None and metric.status == "ok":
        _figure(figures, label, metric.value, metric.unit, metric.ci95)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _microbial(metrics: Mapping[str, Metric], call: Metric) -> tuple[EvidenceFigure, ...]:
    evidence = call.evidence
    test, control = _mapping(evidence.get("test")), _mapping(evidence.get("negative_control"))
    figures: list[EvidenceFigure] = []
    _figure(figures, "test events", test.get("count"), "events")
    _figure(figures, "test volume", test.get("volume_ml"), "mL")
    concentration = test.get("metric")
    if isinstance(concentration, str):
        _metric(figures, "test count per mL", metrics.get(concentration))
    name = control.get("unit_id")
    of_control = f"sterile-medium control {name}" if isinstance(name, str) else "sterile-medium control"
    _figure(figures, f"{of_control} events", control.get("count"), "events")
    _figure(figures, f"{of_control} volume", control.get("volume_ml"), "mL")
    _figure(figures, f"{of_control} count per mL", control.get("per_ml"), "events/mL")
    _figure(figures, "detected from (critical count)", evidence.get("detection_threshold_events"), "events")
    _figure(figures, "one-sided p against the control", evidence.get("p_value"))
    _figure(figures, "α", evidence.get("alpha"))
    _metric(figures, "limit of detection", metrics.get("microbial_lod_per_ml"))
    return tuple(figures)


def _sterility(metrics: Mapping[str, Metric], evidence: Mapping[str, Json]) -> tuple[EvidenceFigure, ...]:
    figures: list[EvidenceFigure] = []
    _metric(figures, "test fragments", metrics.get("fragments_total"))
    threshold = _mapping(evidence.get("detection_threshold"))
    _figure(figures, "detection threshold", threshold.get("reads"), "reads")
    _figure(figures, "detection threshold", threshold.get("rpm"), "RPM")
    _figure(figures, "taxa tested (Holm)", threshold.get("taxa_tested"), "taxa")
    calls = evidence.get("calls")
    for call in calls if isinstance(calls, list) else ():
        found = _mapping(call)
        if found.get("call") != DETECTED:
            continue
        organism = str(found.get("name") or found.get("taxid"))
        _figure(figures, f"{organism} reads", found.get("reads"), "reads")
        _figure(figures, f"{organism} RPM", found.get("rpm"), "RPM")
        _figure(figures, f"{organism} negative controls' reads", found.get("control_reads"), "reads")
        _figure(figures, f"{organism} Holm-adjusted p", found.get("p_adjusted"))
    internal = _mapping(evidence.get("internal_control"))
    if internal:
        spike = f"internal control {internal.get('organism')}"
        unit = internal.get("unit")
        _figure(figures, f"{spike} reads", internal.get("reads"), "reads")
        _figure(
            figures,
            f"{spike} sensitivity",
            internal.get("rpm_per_unit"),
            f"RPM per {unit}",
            _pair(internal.get("rpm_per_unit_ci95")),
        )
        _metric(
            figures, f"{spike} recovery of the positive control's sensitivity", metrics.get("spike_recovery")
        )
    _metric(figures, "limit of detection", metrics.get("lod"))
    return tuple(figures)


def _pair(value: Any) -> tuple[float, float] | None:
    """A recorded [low, high] interval, or None when the record holds none."""
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = (_number(v) for v in value)
        if low is not None and high is not None:
            return low, high
    return None
