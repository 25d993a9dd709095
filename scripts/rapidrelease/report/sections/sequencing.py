"""A sequencing unit's evidence: its contaminant calls against the lot's controls, and its reads
by category and taxon.

For a test, what :mod:`rapidrelease.sterility.calls` recorded: its call, the reasons the assay is
not valid, its limit of detection, the organisms called, the checklist organisms and the controls;
for a negative control its highest contaminant; for a positive control its spike. For every unit,
the fragments by the category of the taxon they were called to, and the taxa found with their
distinct minimizers and genome breadth (``taxa.tsv``). Each block is shown only when its keys are
in the record, so a record written before a block existed shows none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from markupsafe import Markup

from rapidrelease.config.vocabulary import CATEGORIES
from rapidrelease.records import Json, Metric, UnitRecord
from rapidrelease.report.figures import control_comparison_figure
from rapidrelease.report.page import amount, count, figure_div, is_number, num
from rapidrelease.report.sections.evidence import as_mapping, as_mappings, as_number, as_text

__all__ = [
    "CallRow",
    "CategoryRow",
    "ChecklistRow",
    "ContaminantCalls",
    "NegativeControlRow",
    "ReadClassification",
    "SequencingEvidence",
    "SpikeRow",
    "TaxonRow",
    "WorstContaminant",
    "sequencing_evidence",
]

_TOP_CALLS = 12
_TOP_TAXA = 15
# how the report names the read categories where the vocabulary's word does not say it
_CALLED_TO = {"other": "above every category (root)"}


@dataclass(frozen=True)
class CallRow:
    """One organism's call with its evidence: reads, RPM, distinct k-mers, breadth (% of the clade's
    indexed minimizers), the negative controls' RPM and the test against them (``background``)."""

    name: str | None
    taxid: str | None
    rank: str | None
    category: str | None
    level: str | None
    reads: int | float | None
    rpm: int | float | None
    distinct_minimizers: int | float | None
    breadth_pct: float | None
    kmer_ratio: int | float | None
    control_rpm: str
    background: str
    call: str | None
    detected: bool
    reason: str | None


def _background_text(call: Mapping[str, Json]) -> str:
    """Fold over the pooled negative controls' RPM (null: ∞) and the exact p-value, Holm-adjusted
    over the unit's taxa when it was (older records: the z of the retired SD rule)."""
    if call.get("z") is not None:
        return f"z {num(call['z'])}"
    if call.get("p_adjusted") is not None:
        return f"{num(call.get('fold'), '∞')}× · Holm p {num(call['p_adjusted'])}"
    if call.get("p_value") is not None:
        return f"{num(call.get('fold'), '∞')}× · p {num(call['p_value'])}"
    return "—"


def _call_row(call: Mapping[str, Json]) -> CallRow:
    breadth = as_number(call.get("breadth"))
    control = call.get("control_rpm")
    return CallRow(
        name=as_text(call.get("name")),
        taxid=as_text(call.get("taxid")),
        rank=as_text(call.get("rank")),
        category=as_text(call.get("category")),
        level=as_text(call.get("level")),
        reads=as_number(call.get("reads")),
        rpm=as_number(call.get("rpm")),
        distinct_minimizers=as_number(call.get("distinct_minimizers")),
        breadth_pct=None if breadth is None else 100 * breadth,
        kmer_ratio=as_number(call.get("kmer_ratio")),
        control_rpm=", ".join(num(r) for r in control) if isinstance(control, list) and control else "—",
        background=_background_text(call),
        call=as_text(call.get("call")),
        detected=call.get("call") == "DETECTED",
        reason=as_text(call.get("reason")),
    )


def _calls_figure(
    calls: list[Mapping[str, Json]], threshold: Mapping[str, Json], prefix: str
) -> Markup | None:
    """Bars of the test's RPM beside the negative controls' mean RPM for the organisms read most,
    with the test's detection threshold in RPM."""
    shown = [(c, rpm) for c in calls if (rpm := as_number(c.get("rpm"))) is not None][:_TOP_CALLS]
    if not shown:
        return None
    control = []
    for c, _ in shown:
        rpms = c.get("control_rpm")
        values = [float(v) for v in rpms if is_number(v)] if isinstance(rpms, list) else []
        control.append(sum(values) / len(values) if values else 0.0)
    line = as_number(threshold.get("rpm"))
    fig = control_comparison_figure(
        "Contaminant reads against the negative controls",
        [str(c.get("name")) for c, _ in shown],
        [float(rpm) for _, rpm in shown],
        control,
        "reads per million",
        ("test", "negative controls (mean)"),
        line=None if line is None else (float(line), f"detection threshold {num(line)} RPM"),
    )
    return figure_div(fig, f"{prefix}-calls")


@dataclass(frozen=True)
class ChecklistRow:
    """An organism the assay's checklist requires: detected, not detected or not covered, and why."""

    organism: str | None
    strain: str | None
    group: str | None
    status: str | None
    reads: int | float | None
    lod: str
    genome_pct: float | None
    reason: str | None


def _checklist_row(entry: Mapping[str, Json]) -> ChecklistRow:
    share = as_number(entry.get("reference_genome_share"))
    return ChecklistRow(
        organism=as_text(entry.get("organism")),
        strain=as_text(entry.get("strain")) or None,
        group=as_text(entry.get("group")),
        status=as_text(entry.get("status")),
        reads=as_number(entry.get("reads")),
        lod=amount(entry.get("lod"), entry.get("lod_unit")),
        genome_pct=None if share is None else 100 * share,
        reason=as_text(entry.get("reason")),
    )


@dataclass(frozen=True)
class SpikeRow:
    """A positive control's spike: its concentration, reads, call and the sensitivity it gives."""

    unit_id: str | None
    organism: str | None
    concentration: str
    reads: int | float | None
    rpm: int | float | None
    call: str | None
    sensitivity: str
    problem: str | None


def _spike_row(spike: Mapping[str, Json]) -> SpikeRow:
    unit = spike.get("unit")
    return SpikeRow(
        unit_id=as_text(spike.get("unit_id")),
        organism=as_text(spike.get("organism")),
        concentration=amount(spike.get("concentration"), unit),
        reads=as_number(spike.get("reads")),
        rpm=as_number(spike.get("rpm")),
        call=as_text(spike.get("call")),
        sensitivity=amount(spike.get("rpm_per_unit"), f"RPM per {unit or 'unit'}"),
        problem=as_text(spike.get("problem")) or None,
    )


@dataclass(frozen=True)
class NegativeControlRow:
    """A negative control the test was called against: its fragments, or why it could not be used."""

    unit_id: str | None
    fragments: int | float | None
    error: str | None


@dataclass(frozen=True)
class ContaminantCalls:
    """A test's calls: the call (``call_status`` when it is not ok), the reasons the assay is not
    valid (None when it is), the limit of detection in clauses, and the calls, checklist and controls
    (None when the record holds no such block)."""

    call: str | None
    call_status: str | None
    invalid: tuple[str, ...] | None
    lod: tuple[str, ...]
    calls: tuple[CallRow, ...] | None
    calls_figure: Markup | None
    checklist: tuple[ChecklistRow, ...] | None
    negative_controls: tuple[NegativeControlRow, ...] | None
    positive_controls: tuple[SpikeRow, ...] | None


def _lod_clauses(metrics: Mapping[str, Metric], threshold: Json) -> tuple[str, ...]:
    clauses = []
    lod, worst = metrics.get("lod"), metrics.get("lod_checklist_max")
    if lod is not None:
        # the metric's detail says whether it is predicted, validated or the sampling floor
        detail = lod.detail or ""
        basis = next(
            (
                f" ({words})"
                for start, words in (
                    ("predicted", "predicted from the positive control"),
                    ("empirical", "the lab's validated LOD95"),
                    ("LOD95 at the sampling floor", "the sampling floor of the tested volume"),
                )
                if detail.startswith(start)
            ),
            "",
        )
        if basis == " (predicted from the positive control)" and "at the sample's own sensitivity" in detail:
            basis = " (predicted from the sample's internal control)"
        clauses.append(
            f"Limit of detection (95 %): {amount(lod.value, lod.unit)} for the spiked organism{basis}"
        )
    recovery = metrics.get("spike_recovery")
    if recovery is not None:
        # the sample's own internal control: how much of the buffer's sensitivity its matrix kept
        shown = f"{num(recovery.value, 'unknown')} %" if recovery.value is not None else "unknown"
        if recovery.ci95 is not None:
            shown += f" (95 % CI {num(recovery.ci95[0])}–{num(recovery.ci95[1])} %)"
        clauses.append(f"internal control recovery {shown} of the positive control's sensitivity")
    if worst is not None:
        clauses.append(f"least sensitive checklist organism: {amount(worst.value, worst.unit)}")
    if isinstance(threshold, Mapping):
        clauses.append(
            f"detection threshold {count(threshold.get('reads'), 'unknown')} reads "
            f"({num(threshold.get('rpm'), 'unknown')} RPM)"
        )
    return tuple(clauses)


def _negative_control_row(control: Mapping[str, Json]) -> NegativeControlRow:
    error = as_text(control.get("error")) or None
    return NegativeControlRow(as_text(control.get("unit_id")), as_number(control.get("fragments")), error)


def _contaminant_calls(record: UnitRecord, prefix: str) -> ContaminantCalls:
    evidence, metrics = record.evidence, record.metrics
    call = metrics.get("contaminant_call")
    validity = as_mapping(evidence.get("validity"))
    invalid = None
    if validity.get("valid") is False:
        problems = validity.get("problems")
        invalid = tuple(str(p) for p in problems if p) if isinstance(problems, list) else ()
    calls = evidence.get("calls")
    rows = figure = None
    if isinstance(calls, list):
        # the organisms detected lead; the sort is stable, so both groups keep their RPM order
        found = as_mappings(calls)
        rows = tuple(map(_call_row, sorted(found, key=lambda c: c.get("call") != "DETECTED")))
        figure = _calls_figure(found, as_mapping(evidence.get("detection_threshold")), prefix)
    checklist = evidence.get("checklist")
    controls = as_mapping(evidence.get("controls"))
    negatives = positives = None
    if "negative" in controls:
        negatives = tuple(map(_negative_control_row, as_mappings(controls["negative"])))
    if "positive" in controls:
        positives = tuple(map(_spike_row, as_mappings(controls["positive"])))
    return ContaminantCalls(
        call=None if call is None else as_text(call.value) or "unknown",
        call_status=None if call is None or call.status == "ok" else call.status.upper(),
        invalid=invalid,
        lod=_lod_clauses(metrics, evidence.get("detection_threshold")),
        calls=rows,
        calls_figure=figure,
        checklist=tuple(map(_checklist_row, as_mappings(checklist))) if isinstance(checklist, list) else None,
        negative_controls=negatives,
        positive_controls=positives,
    )


@dataclass(frozen=True)
class WorstContaminant:
    """A negative control's highest bacterium, fungus or mycoplasma (``status`` when not reportable)."""

    rpm: str
    status: str | None
    reason: str | None


def _worst_contaminant(metric: Metric) -> WorstContaminant:
    status = None if metric.status == "ok" else metric.status.upper()
    return WorstContaminant(amount(metric.value, metric.unit), status, metric.reason)


@dataclass(frozen=True)
class CategoryRow:
    """Fragments called to taxa of one category (or to none: unclassified)."""

    called_to: str
    fragments: int
    percent: float


@dataclass(frozen=True)
class TaxonRow:
    """A taxon fragments were called to: ``breadth_pct`` of its clade's indexed minimizers seen."""

    name: str
    rank: str
    category: str
    fragments: int
    distinct_minimizers: int
    breadth_pct: float


@dataclass(frozen=True)
class ReadClassification:
    """The unit's fragments by category, and the taxa most fragments were called to."""

    fragments: int | float
    categories: tuple[CategoryRow, ...]
    taxa: tuple[TaxonRow, ...]
    top: int


def _classification(metrics: Mapping[str, Metric], taxa_path: Path) -> ReadClassification | None:
    if "fragments_total" not in metrics:
        return None
    total = as_number(metrics["fragments_total"].value) or 0
    categories = []
    for category in (*CATEGORIES, "unclassified"):
        share = metrics.get(f"{category}_pct")
        pct = None if share is None else as_number(share.value)
        if pct is not None:
            called_to = _CALLED_TO.get(category, category.replace("_", "-"))
            categories.append(CategoryRow(called_to, round(pct * total / 100), pct))
    taxa: tuple[TaxonRow, ...] = ()
    if taxa_path.is_file():
        table = pl.read_csv(taxa_path, separator="\t")
        top = table.filter(pl.col("reads_direct") > 0).sort("reads_direct", descending=True).head(_TOP_TAXA)
        taxa = tuple(
            TaxonRow(
                t["name"],
                t["rank"],
                t["category"],
                t["reads_direct"],
                t["distinct_minimizers_clade"],
                100 * t["breadth"],
            )
            for t in top.iter_rows(named=True)
        )
    return ReadClassification(total, tuple(categories), taxa, _TOP_TAXA)


@dataclass(frozen=True)
class SequencingEvidence:
    """What a measured sequencing unit shows a reviewer: by its role, a test's calls, a negative
    control's worst contaminant or a positive control's spike; then its reads by category and taxon."""

    calls: ContaminantCalls | None
    worst_contaminant: WorstContaminant | None
    spike: SpikeRow | None
    classification: ReadClassification | None


def sequencing_evidence(record: UnitRecord, unit_dir: Path, prefix: str) -> SequencingEvidence:
    """The evidence of a measured sequencing unit, from its record and ``taxa.tsv`` in ``unit_dir``;
    figures' element ids begin with ``prefix``."""
    worst = record.metrics.get("max_contaminant_rpm") if record.role == "negative_control" else None
    spike = record.evidence.get("spike") if record.role == "positive_control" else None
    return SequencingEvidence(
        calls=_contaminant_calls(record, prefix) if record.role == "test" else None,
        worst_contaminant=None if worst is None else _worst_contaminant(worst),
        spike=_spike_row(spike) if isinstance(spike, Mapping) else None,
        classification=_classification(record.metrics, _taxa_table(record, unit_dir)),
    )


def _taxa_table(record: UnitRecord, unit_dir: Path) -> Path:
    """The unit's ``taxa.tsv``: beside the taxa table its call read (in the folder where its reads
    were measured once for every lot listing them), else in ``unit_dir``."""
    own = f"taxa ({record.role} {record.unit_id})"
    for ref in record.inputs:
        if ref.role == own and Path(ref.path).name == "taxa.parquet":
            return Path(ref.path).with_name("taxa.tsv")
    return unit_dir / "taxa.tsv"
