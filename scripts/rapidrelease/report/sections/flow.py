"""A flow tube's evidence: the spillover its single-stain controls gave, its metrics and the events
behind them, the thresholds its controls gave, potency and lysis against their controls, microbes
against sterile medium, and the gates drawn over the events with the population hierarchy.

What :mod:`rapidrelease.flow.measure` recorded in the tube's ``metrics.json`` (its metrics and
their evidence, ``evidence.thresholds`` and ``evidence.single_stains``), with ``gate_plots.json``
and ``populations.tsv`` beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from markupsafe import Markup

from rapidrelease.records import Json, Metric, Population, UnitRecord
from rapidrelease.report.figures import control_comparison_figure
from rapidrelease.report.gate_plots import gate_svg
from rapidrelease.report.page import amount, count, figure_div, num
from rapidrelease.report.sections.evidence import as_mapping, as_mappings, as_number, as_text

__all__ = [
    "FlowEvidence",
    "LysisRow",
    "MetricRow",
    "MicrobialDetection",
    "MicrobialTube",
    "PopulationRow",
    "PotencyRow",
    "SpilloverCell",
    "SpilloverMatrix",
    "ThresholdRow",
    "flow_evidence",
    "spillover_matrix",
]


def _ci_text(ci: tuple[float, float] | None) -> str:
    return "—" if ci is None else f"{num(ci[0])}–{num(ci[1])}"


def _fraction(value: Json, numerator: Json, denominator: Json) -> str:
    """``"12.3 % (1,234 / 10,000)"``: a percentage and the events behind it."""
    return f"{num(value)} % ({count(numerator)} / {count(denominator)})"


@dataclass(frozen=True)
class MetricRow:
    """A metric of the tube: its value with its unit, interval, the events behind it and, when it
    is not reportable, ``status`` with the ``reason``."""

    name: str
    description: str | None
    value: str
    ci: str
    numerator: Population | None
    denominator: Population | None
    status: str | None
    reason: str | None


def _metric_rows(metrics: Mapping[str, Metric]) -> list[MetricRow]:
    # calls and limits of detection are shown with the microbial detection they belong to
    return [
        MetricRow(
            name=name,
            description=metric.description,
            value="—" if metric.value is None else amount(metric.value, metric.unit),
            ci=_ci_text(metric.ci95),
            numerator=metric.numerator,
            denominator=metric.denominator,
            status=None if metric.status == "ok" else metric.status,
            reason=metric.reason,
        )
        for name, metric in metrics.items()
        if metric.kind not in ("category", "lod")
    ]


@dataclass(frozen=True)
class ThresholdRow:
    """A positivity threshold the panel derives from a control tube, and the events it rests on."""

    name: str | None
    population: str | None
    channel: str | None
    compensation: str | None
    percentile: int | float | None
    value: int | float | None
    control_role: str | None
    control_unit_id: str | None
    control_events: int | float | None


def _threshold_rows(thresholds: Json) -> list[ThresholdRow]:
    return [
        ThresholdRow(
            name=as_text(t.get("name")),
            population=as_text(t.get("population")),
            channel=as_text(t.get("channel")),
            compensation=as_text(t.get("compensation")),
            percentile=as_number(t.get("percentile")),
            value=as_number(t.get("value")),
            control_role=as_text(t.get("control_role")),
            control_unit_id=as_text(t.get("control_unit_id")),
            control_events=as_number(t.get("control_events")),
        )
        for t in as_mappings(thresholds)
    ]


@dataclass(frozen=True)
class PotencyRow:
    """A potency percentage net of the unstimulated tube: ``stimulated`` and ``unstimulated`` are
    each a percentage with the events behind it, ``net`` their difference."""

    name: str
    stimulated: str
    unstimulated: str
    control_unit_id: str | None
    net: str
    ci: str
    reason: str | None


def _potency(metrics: Mapping[str, Metric], prefix: str) -> tuple[list[PotencyRow], Markup | None]:
    """The metrics net of a background tube, and their bars beside the background's."""
    rows = []
    charted: dict[str, tuple[float, float]] = {}
    for name, metric in metrics.items():
        background = metric.evidence.get("background")
        if not isinstance(background, Mapping):
            continue
        gross, control = as_number(metric.evidence.get("gross")), as_number(background.get("value"))
        if gross is not None and control is not None:
            charted[name] = (float(gross), float(control))
        rows.append(
            PotencyRow(
                name=name,
                stimulated=_fraction(
                    metric.evidence.get("gross"),
                    metric.numerator.count if metric.numerator else None,
                    metric.denominator.count if metric.denominator else None,
                ),
                unstimulated=_fraction(
                    background.get("value"),
                    as_mapping(background.get("numerator")).get("count"),
                    as_mapping(background.get("denominator")).get("count"),
                ),
                control_unit_id=as_text(background.get("unit_id")),
                net=num(metric.value),
                ci=_ci_text(metric.ci95),
                reason=metric.reason,
            )
        )
    if not charted:
        return rows, None
    fig = control_comparison_figure(
        "Responding cells: stimulated vs unstimulated",
        list(charted),
        [gross for gross, _ in charted.values()],
        [control for _, control in charted.values()],
        "% of parent",
        ("stimulated", "unstimulated"),
    )
    return rows, figure_div(fig, f"{prefix}-potency")


@dataclass(frozen=True)
class LysisRow:
    """Specific lysis: the target cells left in the co-culture and in the target-only control."""

    name: str
    co_culture: str
    target_only: str
    lysis: str
    ci: str
    reason: str | None


def _lysis_rows(metrics: Mapping[str, Metric]) -> list[LysisRow]:
    rows = []
    for name, metric in metrics.items():
        if metric.kind != "specific_lysis":
            continue
        control = as_mapping(metric.evidence.get("control"))
        targets = count(metric.numerator.count if metric.numerator else None)
        reference = count(metric.denominator.count) if metric.denominator else "mL acquired"
        rows.append(
            LysisRow(
                name=name,
                co_culture=f"{targets} targets / {reference}",
                target_only=(
                    f"{count(control.get('targets'))} / {num(control.get('reference'))}"
                    f" · {as_text(control.get('unit_id')) or ''}"
                ),
                lysis=num(metric.value),
                ci=_ci_text(metric.ci95),
                reason=metric.reason,
            )
        )
    return rows


@dataclass(frozen=True)
class MicrobialTube:
    """A tube of the microbial detection: its events in the gate, the volume acquired, events per mL."""

    label: str
    unit_id: str | None
    events: int | float | None
    volume_ml: int | float | None
    per_ml: float | None


@dataclass(frozen=True)
class MicrobialDetection:
    """The microbial call against sterile medium (``reason`` when it could not be made), the tubes
    compared, the exact conditional test's p-value and level, the events needed to detect, the limit
    of detection and the probability it is detected with."""

    call: str
    reason: str | None
    tubes: tuple[MicrobialTube, ...]
    unit: str
    p_value: float | None
    alpha: float | None
    detection_pct: float
    detection_threshold_events: int | float | None
    lod: int | float | None
    figure: Markup | None


def _tube(label: str, tube: Mapping[str, Json]) -> MicrobialTube:
    events, volume = as_number(tube.get("count")), as_number(tube.get("volume_ml"))
    per_ml = events / volume if events is not None and volume else None
    return MicrobialTube(label, as_text(tube.get("unit_id")), events, volume, per_ml)


def _microbial(metrics: Mapping[str, Metric], prefix: str) -> MicrobialDetection | None:
    call, lod = metrics.get("microbial_call"), metrics.get("microbial_lod_per_ml")
    if call is None:
        return None
    unit = (lod.unit if lod else None) or "events/mL"
    lod_value = as_number(lod.value) if lod else None
    evidence = call.evidence
    tubes: tuple[MicrobialTube, ...] = ()
    figure = None
    if evidence:
        test = _tube("test", as_mapping(evidence.get("test")))
        control = _tube("negative control", as_mapping(evidence.get("negative_control")))
        tubes = (test, control)
        if test.per_ml is not None:
            background = control.per_ml or 0.0
            line = (lod_value + background, "LOD above background") if lod_value is not None else None
            fig = control_comparison_figure(
                "Events per mL in the microbial gate",
                ["microbial gate"],
                [test.per_ml],
                [background],
                unit,
                ("test", "sterile medium"),
                line=line,
            )
            figure = figure_div(fig, f"{prefix}-microbial")
    probability = as_number(evidence.get("detection_probability"))
    return MicrobialDetection(
        call=as_text(call.value) or "INCONCLUSIVE",
        reason=None if call.status == "ok" else call.reason,
        tubes=tubes,
        unit=unit,
        p_value=as_number(evidence.get("p_value")),
        alpha=as_number(evidence.get("alpha")),
        detection_pct=100 * (0.95 if probability is None else probability),
        detection_threshold_events=as_number(evidence.get("detection_threshold_events")),
        lod=lod_value,
        figure=figure,
    )


@dataclass(frozen=True)
class SpilloverCell:
    """A spillover value to 4 decimals; ``shade`` the opacity that marks its size (None on the diagonal)."""

    value: str
    shade: str | None


@dataclass(frozen=True)
class SpilloverMatrix:
    """The spillover matrix from the lot's single-stain controls (``problem`` when none could be
    computed): one row per emitting detector, and a ``note`` on how it was made and applied."""

    problem: str | None
    detectors: tuple[str, ...]
    rows: tuple[tuple[str, tuple[SpilloverCell, ...]], ...]
    note: str


def spillover_matrix(record: UnitRecord) -> SpilloverMatrix | None:
    """The single-stain spillover of a tube whose panel computes one, or None."""
    block = record.evidence.get("single_stains")
    if not isinstance(block, Mapping):
        return None
    problem = as_text(block.get("problem")) or None
    detectors, matrix = block.get("detectors"), block.get("matrix")
    if not (isinstance(detectors, list) and isinstance(matrix, list)):
        return SpilloverMatrix(problem, (), (), "")
    rows = tuple(
        (
            str(name),
            tuple(
                # the diagonal is the fluorochrome's own detector; spillover is shaded by its size
                SpilloverCell(f"{value:.4f}", None if i == j else f"{min(abs(value), 1.0) * 0.6:.2f}")
                for j, value in enumerate(row)
            ),
        )
        for i, (name, row) in enumerate(zip(detectors, matrix, strict=False))
    )
    if block.get("applied"):
        note = "The matrix compensates this tube."
    else:
        note = "The matrix is not applied to this tube (it carries its own $SPILLOVER)."
    check = block.get("check_against_file")
    if isinstance(check, Mapping):
        note += (
            " Against the tube's own $SPILLOVER the largest difference is "
            f"{num(check.get('max_abs_difference'))} ({as_text(check.get('emitter'))} into "
            f"{as_text(check.get('receiver'))})."
        )
    controls = ", ".join(
        f"{as_text(c.get('unit_id'))} ({as_text(c.get('stain'))}, {count(c.get('events'))} events)"
        for c in as_mappings(block.get("controls"))
    )
    positive = as_number(block.get("positive_fraction")) or 0
    note += (
        f" Controls: {controls}; cells: {as_text(block.get('population'))}, "
        f"brightest {num(100 * positive)} % as positive."
    )
    return SpilloverMatrix(problem, tuple(str(d) for d in detectors), rows, note)


@dataclass(frozen=True)
class PopulationRow:
    """A gated population: its gate indented by its depth, its events and its parent's."""

    gate: str
    depth: int
    events: int
    parent_events: int
    percent_parent: float | None


def _population_rows(path: Path) -> list[PopulationRow]:
    if not path.is_file():
        return []
    return [
        PopulationRow(
            gate=row["gate"],
            depth=row["population"].count("/"),
            events=row["count"],
            parent_events=row["parent_count"],
            percent_parent=row["percent_parent"],
        )
        for row in pl.read_csv(path, separator="\t").iter_rows(named=True)
    ]


def _gate_plots(path: Path, prefix: str) -> list[Markup]:
    """Every gate drawn over its parent's events, from ``gate_plots.json``; none when it is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    plots = data.get("plots") if isinstance(data, dict) else None
    if not isinstance(plots, list):
        return []
    return [
        Markup("<div class='plot'>{}</div>").format(gate_svg(plot, f"{prefix}-gate-{i}"))
        for i, plot in enumerate(plots)
    ]


@dataclass(frozen=True)
class FlowEvidence:
    """What a measured flow tube shows a reviewer, section by section (empty when it has none)."""

    metrics: list[MetricRow]
    thresholds: list[ThresholdRow]
    potency: list[PotencyRow]
    potency_figure: Markup | None
    lysis: list[LysisRow]
    microbial: MicrobialDetection | None
    gates: list[Markup]
    populations: list[PopulationRow]


def flow_evidence(record: UnitRecord, unit_dir: Path, prefix: str) -> FlowEvidence:
    """The evidence of a measured flow tube, from its record and the files in ``unit_dir``; figures'
    element ids begin with ``prefix``."""
    potency, potency_figure = _potency(record.metrics, prefix)
    return FlowEvidence(
        metrics=_metric_rows(record.metrics),
        thresholds=_threshold_rows(record.evidence.get("thresholds")),
        potency=potency,
        potency_figure=potency_figure,
        lysis=_lysis_rows(record.metrics),
        microbial=_microbial(record.metrics, prefix),
        gates=_gate_plots(unit_dir / "gate_plots.json", prefix),
        populations=_population_rows(unit_dir / "populations.tsv"),
    )
