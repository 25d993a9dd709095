"""Metrics from gated populations, with the event counts and confidence intervals behind them.

A percentage of few events is not a release result: every metric carries its numerator and
denominator counts and a 95 % confidence interval, and a metric whose events fall below the panel's
``min_events`` is reported with status ``insufficient_events`` (the specification then calls the
attribute INCONCLUSIVE).

Some metrics compare the tube with a control tube of the same lot, gated with the same tree:

- a percent with ``background: unstimulated`` is reported net of the unstimulated control
  (stimulated − unstimulated, with Newcombe's interval for a difference of proportions). A stimulated
  tube at or below its control has no net response: it is reported as 0 (its interval clipped to
  ≥ 0), which fails a specification's minimum — not INCONCLUSIVE, which would let a non-potent lot be
  retested until it passes (41 % of truly non-potent lots were INCONCLUSIVE that way, issue 17). Only
  the control itself makes the metric INCONCLUSIVE: missing, unusable or holding too few events;
- ``specific_lysis`` is 100 × (1 − (targets per bead in the co-culture) ÷ (targets per bead in the
  target-only control)), or per acquired volume without beads, with a log-ratio interval;
- ``concentration`` is events per mL of the acquired volume, or per bead × beads per mL, with
  Garwood's exact Poisson interval.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rapidrelease.flow.panel import MetricDefinition, Panel, PopulationPath
from rapidrelease.gating.template import population_path
from rapidrelease.records import Metric, Population, to_json
from rapidrelease.stats import Z_95, interval, newcombe_interval, wilson_interval

__all__ = [
    "TubeCounts",
    "MetricContext",
    "compute_metrics",
    "control_name",
    "concentration_record",
    "metric_record",
    "single_control",
]


def _population(path: PopulationPath, count: int) -> Population:
    return Population(population_path(path), count)


def metric_record(metric: MetricDefinition, counts: Mapping[PopulationPath, int]) -> Metric:
    """One metric of a flow unit's record from population counts (path → events).

    Percent: 100 × numerator / denominator, with its Wilson interval; the denominator must hold at
    least ``min_events``. Ratio (e.g. CD4:CD8): numerator / denominator, its interval from the Wilson
    interval of numerator / (numerator + denominator); the two populations together must hold at
    least ``min_events`` and the denominator at least one event. Count: the numerator's events.
    """
    num = counts[metric.numerator]
    den = counts[metric.denominator] if metric.denominator else None
    record = dataclasses.replace(
        _blank(metric, "ok", None),
        numerator=_population(metric.numerator, num),
        denominator=None
        if den is None or metric.denominator is None
        else _population(metric.denominator, den),
    )

    def insufficient(events: int, what: str) -> Metric:
        return dataclasses.replace(
            record,
            status="insufficient_events",
            reason=(
                f"{metric.name} rests on {events} events in {what}, "
                f"fewer than the {metric.min_events} the panel requires."
            ),
        )

    if metric.kind == "count":
        return dataclasses.replace(record, value=num)
    assert den is not None and metric.denominator is not None
    if metric.kind == "percent":
        if den < metric.min_events:
            return insufficient(den, population_path(metric.denominator))
        lo, hi = wilson_interval(num, den)
        return dataclasses.replace(record, value=100.0 * num / den, ci95=(100.0 * lo, 100.0 * hi))
    total = num + den
    if total < metric.min_events:
        return insufficient(
            total, f"{population_path(metric.numerator)} and {population_path(metric.denominator)}"
        )
    if den == 0:
        return dataclasses.replace(
            record,
            status="not_computable",
            reason=f"{metric.name} is undefined: {population_path(metric.denominator)} holds no events.",
        )
    lo, hi = wilson_interval(num, total)  # hi < 1 because the denominator holds events
    return dataclasses.replace(record, value=num / den, ci95=(lo / (1 - lo), hi / (1 - hi)))


@dataclass(frozen=True)
class TubeCounts:
    """One gated tube as its metrics see it: population counts and the acquired volume.

    ``volume_source`` says where ``volume_ml`` came from (``"$VOL"`` or ``"volume_ul"``).
    """

    unit_id: str
    counts: Mapping[PopulationPath, int]
    n_events: int
    volume_ml: float | None = None
    volume_source: str | None = None


@dataclass(frozen=True)
class MetricContext:
    """The tube and its role, the lot's control tubes by role (gated with the same tree), what is missing.

    ``missing`` maps a population the panel could not add (a threshold without a usable control)
    to the reason; ``control_problems`` maps a control role to why none of its tubes can be used.
    """

    tube: TubeCounts
    role: str = "test"
    controls: Mapping[str, Sequence[TubeCounts]] = field(default_factory=dict)
    missing: Mapping[PopulationPath, str] = field(default_factory=dict)
    control_problems: Mapping[str, str] = field(default_factory=dict)


CONTROL_NAMES: Mapping[str, str] = {
    "unstimulated": "unstimulated control",
    "fmo": "FMO control",
    "target_only": "target-only control",
    "negative_control": "negative control",
}
"""How a control role is named in a reason."""


def control_name(role: str) -> str:
    """``"unstimulated control"`` for ``"unstimulated"``; any other role as ``"<role> control"``."""
    return CONTROL_NAMES.get(role, f"{role} control")


def _blank(metric: MetricDefinition, status: str, reason: str | None) -> Metric:
    return Metric(
        None,
        metric.unit,
        metric.kind,
        status,
        reason,
        description=metric.description,
        evidence={"min_events": metric.min_events},
    )


def single_control(metric: MetricDefinition, role: str, context: MetricContext) -> TubeCounts | Metric:
    """The lot's single control tube of ``role``, or the metric's INCONCLUSIVE record saying why not."""
    tubes = context.controls.get(role, ())
    if len(tubes) == 1:
        return tubes[0]
    if len(tubes) > 1:
        ids = ", ".join(t.unit_id for t in tubes)
        return _blank(
            metric,
            "not_computable",
            f"{metric.name} needs one {control_name(role)}, but the lot has {len(tubes)} ({ids}).",
        )
    why = context.control_problems.get(role)
    reason = f"{metric.name} needs the lot's {control_name(role)}, " + (
        f"which could not be used: {why.rstrip('.')}." if why else "and the lot has none."
    )
    return _blank(metric, "missing_control", reason)


def _net_of_background(metric: MetricDefinition, gross: Metric, context: MetricContext) -> Metric:
    assert metric.background is not None and metric.denominator is not None
    assert gross.numerator is not None and gross.denominator is not None
    assert isinstance(gross.value, float)
    control = single_control(metric, metric.background, context)
    if isinstance(control, Metric):
        return dataclasses.replace(
            control,
            numerator=gross.numerator,
            denominator=gross.denominator,
            evidence={**control.evidence, "gross": gross.value},
        )
    background = metric_record(metric, control.counts)
    record = dataclasses.replace(
        gross,
        evidence={
            **gross.evidence,
            "gross": gross.value,
            "background": {
                "unit_id": control.unit_id,
                "value": background.value,
                "status": background.status,
                "numerator": to_json(background.numerator),
                "denominator": to_json(background.denominator),
            },
        },
    )
    if background.status != "ok":
        return dataclasses.replace(
            record,
            value=None,
            ci95=None,
            status=background.status,
            reason=f"the {control_name(metric.background)} {control.unit_id}: {background.reason}",
        )
    assert background.numerator is not None and background.denominator is not None
    assert isinstance(background.value, float)
    lo, hi = newcombe_interval(
        gross.numerator.count,
        gross.denominator.count,
        background.numerator.count,
        background.denominator.count,
    )
    net = gross.value - background.value
    if net <= 0:
        # no response above the control: a result (0 %), judged against the specification like any other
        return dataclasses.replace(
            record,
            value=0.0,
            ci95=(max(0.0, 100.0 * lo), max(0.0, 100.0 * hi)),
            detail=(
                f"{metric.name} of the stimulated tube ({gross.value:.2f} %) is not above the "
                f"{control_name(metric.background)} {control.unit_id}'s ({background.value:.2f} %): "
                "no net response, reported as 0 %."
            ),
            evidence={**record.evidence, "net_unclipped": net},
        )
    return dataclasses.replace(record, value=net, ci95=(100.0 * lo, 100.0 * hi))


def _per_reference(metric: MetricDefinition, tube: TubeCounts) -> tuple[int, float, str] | str:
    """(targets, reference amount, what the reference is) of a tube, or why there is none."""
    targets = tube.counts[metric.numerator]
    if metric.denominator is not None:
        return targets, float(tube.counts[metric.denominator]), population_path(metric.denominator)
    if tube.volume_ml is None:
        return f"unit {tube.unit_id} has no acquired volume ($VOL or volume_ul) and the panel counts no beads"
    return targets, tube.volume_ml, "mL acquired"


def _specific_lysis(metric: MetricDefinition, context: MetricContext) -> Metric:
    assert metric.control is not None
    control = single_control(metric, metric.control, context)
    if isinstance(control, Metric):
        return control
    test, reference = _per_reference(metric, context.tube), _per_reference(metric, control)
    for found in (test, reference):
        if isinstance(found, str):
            return _blank(metric, "not_computable", f"{metric.name}: {found}.")
    assert not isinstance(test, str) and not isinstance(reference, str)
    (t, r_t, what), (c, r_c, _) = test, reference
    record = dataclasses.replace(
        _blank(metric, "ok", None),
        numerator=_population(metric.numerator, t),
        denominator=None if metric.denominator is None else Population(what, int(r_t)),
    )
    record = dataclasses.replace(
        record,
        evidence={
            **record.evidence,
            "control": {
                "unit_id": control.unit_id,
                "targets": c,
                "reference": r_c if metric.denominator is None else int(r_c),
            },
        },
    )
    if c < metric.min_events:
        return dataclasses.replace(
            record,
            status="insufficient_events",
            reason=(
                f"{metric.name} rests on {c} target events in the {control_name(metric.control)} "
                f"{control.unit_id}, fewer than the {metric.min_events} the panel requires."
            ),
        )
    if metric.denominator is not None and min(r_t, r_c) < metric.min_events:
        return dataclasses.replace(
            record,
            status="insufficient_events",
            reason=f"{metric.name} counts fewer than {metric.min_events} events of {what} in a tube.",
        )
    if t == 0:
        return dataclasses.replace(
            record,
            status="not_computable",
            reason=(
                f"{metric.name}: no target events are left in unit {context.tube.unit_id}, "
                "so the lysis cannot be told from a failed acquisition."
            ),
        )
    ratio = (t / r_t) / (c / r_c)
    spread = Z_95 * math.sqrt(
        1 / t + 1 / c + ((1 / r_t + 1 / r_c) if metric.denominator is not None else 0.0)
    )
    return dataclasses.replace(
        record,
        value=100.0 * (1.0 - ratio),
        ci95=(100.0 * (1.0 - ratio * math.exp(spread)), 100.0 * (1.0 - ratio * math.exp(-spread))),
    )


def concentration_record(metric: MetricDefinition, tube: TubeCounts) -> Metric:
    """Events of the metric's population per mL of the tube: by its acquired volume, or by counting
    beads of known concentration, with Garwood's exact interval."""
    count = tube.counts[metric.numerator]
    record = dataclasses.replace(_blank(metric, "ok", None), numerator=_population(metric.numerator, count))
    lo, hi = interval(count)
    if metric.denominator is not None:
        assert metric.beads_per_ml is not None
        beads = tube.counts[metric.denominator]
        record = dataclasses.replace(record, denominator=_population(metric.denominator, beads))
        if beads < metric.min_events:
            return dataclasses.replace(
                record,
                status="insufficient_events",
                reason=(
                    f"{metric.name} counts {beads} beads, fewer than the {metric.min_events} "
                    "the panel requires."
                ),
            )
        volume_ml = beads / metric.beads_per_ml
        volume = {"ml": volume_ml, "source": f"{beads} beads at {metric.beads_per_ml:g}/mL"}
    else:
        if tube.volume_ml is None:
            return dataclasses.replace(
                record,
                status="not_computable",
                reason=(
                    f"{metric.name}: unit {tube.unit_id} has no acquired volume "
                    "($VOL keyword or volume_ul in the unit sheet)."
                ),
            )
        volume_ml = tube.volume_ml
        volume = {"ml": volume_ml, "source": tube.volume_source}
    return dataclasses.replace(
        record,
        value=count / volume_ml,
        ci95=(lo / volume_ml, hi / volume_ml),
        evidence={**record.evidence, "volume": volume},
    )


def compute_metrics(panel: Panel, context: MetricContext) -> dict[str, Metric]:
    """Every metric of ``panel`` for one tube, by metric name, in panel order."""
    metrics: dict[str, Metric] = {}
    counts = context.tube.counts
    for metric in panel.metrics:
        absent = [
            p
            for p in (metric.numerator, *metric.any_of, *([metric.denominator] if metric.denominator else []))
            if p not in counts
        ]
        if absent:
            why = next(
                (context.missing[p] for p in (*metric.any_of, metric.numerator) if p in context.missing), None
            )
            metrics[metric.name] = _blank(
                metric,
                "not_computable",
                f"{metric.name} needs population {population_path(absent[0])}"
                + (
                    f", whose threshold could not be derived: {why.rstrip('.')}."
                    if why
                    else ", which was not gated."
                ),
            )
            continue
        if context.role in (metric.background, metric.control):
            # the control itself: its own percentage is the background; a lysis relative to itself is none
            if metric.kind == "specific_lysis":
                metrics[metric.name] = _blank(
                    metric, "not_applicable", f"unit {context.tube.unit_id} is the {context.role} control."
                )
            else:
                metrics[metric.name] = metric_record(metric, counts)
        elif metric.kind == "specific_lysis":
            metrics[metric.name] = _specific_lysis(metric, context)
        elif metric.kind == "concentration":
            metrics[metric.name] = concentration_record(metric, context.tube)
        else:
            record = metric_record(metric, counts)
            if metric.background is not None and record.status == "ok":
                record = _net_of_background(metric, record, context)
            metrics[metric.name] = record
    return metrics
