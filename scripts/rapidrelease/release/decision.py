"""The release decision of one lot: every attribute of its specification judged, then the lot.

Fail-safe rules (DESIGN.md §4; the report is evidence for a human decision, not the decision):

- an attribute is PASS or FAIL only when exactly one unit of the right assay and role (or the
  unit the specification pins) was measured without error and reports the metric with status
  ``ok`` and a finite value of the right kind; in every other case it is INCONCLUSIVE, with a
  one-sentence reason naming the unit or file;
- the lot is RELEASE_CANDIDATE only when its specification has at least one attribute and every
  attribute is PASS; NOT_RELEASABLE when any attribute is FAIL (a known failure outweighs missing
  evidence, and the reason says when evidence is also missing); INCONCLUSIVE otherwise.

The decision record is deterministic: the same configuration and metrics give byte-identical JSON
(keys in a fixed order, units and attributes in sheet and specification order, numbers from
exact decimals). Only the ``audit`` block, added by :func:`evaluate_lot_files`, holds times.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rapidrelease.config.run import Lot, RunConfig, Unit
from rapidrelease.config.specs import Attribute, Spec, judge, value_problem
from rapidrelease.config.vocabulary import (
    ACCEPTED,
    DETECTED,
    DOSE_ASSAY,
    FAIL,
    INCONCLUSIVE,
    NOT_ACCEPTED,
    NOT_DETECTED,
    NOT_RELEASABLE,
    PASS,
    READS_ASSAYS,
    RELEASE_CANDIDATE,
    organism_lod_metric,
)
from rapidrelease.errors import ConfigError, RecordError, SpecError
from rapidrelease.records import (
    Acquisition,
    AttributeEvidence,
    AttributeResult,
    FileHash,
    Json,
    LotInfo,
    Metric,
    Release,
    ResultCounts,
    StartingMaterial,
    UnitRecord,
    UnitSummary,
    read_unit_record,
    write_record,
)
from rapidrelease.release.audit import audit_block
from rapidrelease.release.call_figures import call_figures
from rapidrelease.release.dose import dose_metrics
from rapidrelease.release.integrity import changed_inputs
from rapidrelease.release.timeline import lot_timeline

__all__ = [
    "RELEASE_SCHEMA_VERSION",
    "lot_status",
    "evaluate_lot",
    "evaluate_lot_files",
    "read_lot_records",
]

RELEASE_SCHEMA_VERSION = "1.4"


@dataclass(frozen=True)
class _UnitEvidence:
    """What is known of one unit of the lot: measured or not (with the reason), metrics, inputs."""

    unit: Unit
    error: str | None
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    inputs: tuple[FileHash, ...] = ()
    acquisition: Acquisition | None = None
    record_evidence: Mapping[str, Json] = field(default_factory=dict)  # what the measuring step showed


def _sentence(text: str) -> str:
    return text.strip().rstrip(".")


def _unit_evidence(unit: Unit, records: Sequence[UnitRecord], unreadable: str | None) -> _UnitEvidence:
    """Check the records given for ``unit``; any doubt makes the unit an error."""
    if len(records) > 1:
        return _UnitEvidence(unit, f"{len(records)} records of unit {unit.unit_id} were given")
    if not records:
        return _UnitEvidence(unit, _sentence(unreadable or f"no record of unit {unit.unit_id} was given"))
    record = records[0]
    inputs = tuple(FileHash(f.path, f.sha256, f.size_bytes) for f in record.inputs)
    if unreadable is not None:
        return _UnitEvidence(unit, _sentence(unreadable), inputs=inputs, acquisition=record.acquisition)
    for key in ("assay", "role"):
        if getattr(record, key) != getattr(unit, key):
            return _UnitEvidence(
                unit,
                f"the record of unit {unit.unit_id} is for {key} {getattr(record, key)!r}, "
                f"but the unit sheet says {getattr(unit, key)!r}",
                inputs=inputs,
                acquisition=record.acquisition,
            )
    if not record.ok:
        message = _sentence(record.error or "") or "the measuring step gave no message"
        return _UnitEvidence(unit, message, inputs=inputs, acquisition=record.acquisition)
    return _UnitEvidence(unit, None, record.metrics, inputs, record.acquisition, record.evidence)


def _gather_units(
    lot_id: str,
    units: Sequence[Unit],
    records: Sequence[UnitRecord],
    unreadable: Mapping[str, str],
) -> dict[str, _UnitEvidence]:
    """Evidence per unit id of the lot. Records of other lots and unknown units are not evidence."""
    by_unit: dict[str, list[UnitRecord]] = {}
    for record in records:
        if record.lot_id == lot_id:
            by_unit.setdefault(record.unit_id, []).append(record)
    return {
        unit.unit_id: _unit_evidence(unit, by_unit.get(unit.unit_id, []), unreadable.get(unit.unit_id))
        for unit in units
    }


def _evidence(evidence: _UnitEvidence | None, entry: Metric | None = None) -> AttributeEvidence:
    """The evidence block of an attribute: the unit, its input files and the metric's derivation,
    and for a category the figures it was decided on (:mod:`rapidrelease.release.call_figures`)."""
    measured = entry.value if entry is not None else None
    if isinstance(measured, bool) or (isinstance(measured, float) and not math.isfinite(measured)):
        measured = None  # what cannot be judged cannot be shown as measured either
    return AttributeEvidence(
        unit_id=evidence.unit.unit_id if evidence is not None else None,
        metric_status=entry.status if entry is not None else None,
        measured_value=measured,
        numerator=entry.numerator if entry is not None else None,
        denominator=entry.denominator if entry is not None else None,
        ci95=entry.ci95 if entry is not None else None,
        inputs=evidence.inputs if evidence is not None else (),
        figures=(
            call_figures(evidence.unit.assay, evidence.metrics, evidence.record_evidence, entry)
            if evidence is not None and entry is not None and entry.kind == "category"
            else ()
        ),
    )


def _attribute_record(
    attribute: Attribute,
    result: str,
    reason: str,
    evidence: _UnitEvidence | None = None,
    entry: Metric | None = None,
    value: float | str | None = None,
    value_text: str | None = None,
) -> AttributeResult:
    criterion = attribute.criterion_record()
    return AttributeResult(
        name=attribute.name,
        description=attribute.description,
        assay=attribute.assay,
        metric=attribute.metric,
        role=attribute.role,
        unit_id=evidence.unit.unit_id if evidence is not None else attribute.unit_id,
        value=value,
        value_text=value_text,
        unit=attribute.unit,
        criterion=attribute.criterion_text(),
        comparison=criterion["comparison"],
        limit=criterion["limit"],
        lower=criterion["lower"],
        upper=criterion["upper"],
        decimals=criterion["decimals"],
        validity=attribute.validity,
        covers=attribute.coverage_text(),
        result=result,  # type: ignore[arg-type]
        reason=reason,
        evidence=_evidence(evidence, entry),
    )


def _names(units: Sequence[_UnitEvidence]) -> str:
    ids = [u.unit.unit_id for u in units]
    return ", ".join(ids[:-1]) + " and " + ids[-1] if len(ids) > 1 else ids[0]


def _evaluate_attribute(
    attribute: Attribute, lot_id: str, units: Sequence[Unit], evidence: Mapping[str, _UnitEvidence]
) -> AttributeResult:
    """Judge one attribute; INCONCLUSIVE with the reason whenever the evidence is not complete."""
    kind = f"{attribute.assay} unit with role {attribute.role}"

    def inconclusive(
        reason: str, source: _UnitEvidence | None = None, entry: Metric | None = None
    ) -> AttributeResult:
        return _attribute_record(attribute, INCONCLUSIVE, reason, source, entry)

    if attribute.unit_id is not None:
        pinned = [u for u in units if u.unit_id == attribute.unit_id]
        if not pinned:
            return inconclusive(
                f"Unit {attribute.unit_id}, named by the specification, "
                f"is not in the unit sheet for lot {lot_id}."
            )
        unit = pinned[0]
        if (unit.assay, unit.role) != (attribute.assay, attribute.role):
            return inconclusive(
                f"Unit {unit.unit_id} is a {unit.assay} unit with role {unit.role} in the unit sheet, "
                f"but the specification needs a {kind}.",
                evidence[unit.unit_id],
            )
        candidates = [evidence[unit.unit_id]]
    else:
        candidates = [
            evidence[u.unit_id] for u in units if (u.assay, u.role) == (attribute.assay, attribute.role)
        ]
    if not candidates:
        return inconclusive(f"Lot {lot_id} has no {kind} in the unit sheet.")
    failed = [c for c in candidates if c.error is not None]
    if failed and len(candidates) == 1:
        return inconclusive(
            f"Unit {failed[0].unit.unit_id} could not be measured ({failed[0].error}).", failed[0]
        )
    if failed:
        # Another unit might have reported the metric too: choosing among the rest would be a guess.
        return inconclusive(
            f"Unit {failed[0].unit.unit_id}, one of {len(candidates)} units that may report "
            f"{attribute.metric}, could not be measured ({failed[0].error}); "
            "name a unit_id in the specification to choose one.",
            failed[0],
        )
    suppliers = [c for c in candidates if attribute.metric in c.metrics]
    if not suppliers:
        where = (
            f"unit {candidates[0].unit.unit_id}" if len(candidates) == 1 else f"units {_names(candidates)}"
        )
        return inconclusive(f"No metric {attribute.metric} is reported by {where}.", candidates[0])
    if len(suppliers) > 1:
        return inconclusive(
            f"Units {_names(suppliers)} each report {attribute.metric}; "
            "name a unit_id in the specification to choose one."
        )
    source = suppliers[0]
    unit_id = source.unit.unit_id
    entry = _covered(attribute, source.metrics)
    if isinstance(entry, str):
        return inconclusive(f"Unit {unit_id} {entry}.", source)
    if entry.status != "ok":
        detail = f" ({_sentence(entry.reason)})" if entry.reason else ""
        return inconclusive(
            f"Unit {unit_id} reports {attribute.metric} as {entry.status!r}, not ok{detail}.", source, entry
        )
    if entry.unit is not None and entry.unit != attribute.unit and not attribute.categorical:
        return inconclusive(
            f"Unit {unit_id} reports {attribute.metric} in {entry.unit!r}, "
            f"but the specification's limits are in {attribute.unit!r}.",
            source,
            entry,
        )
    problem = value_problem(attribute, entry.value)
    if problem is not None or entry.value is None:
        return inconclusive(f"Unit {unit_id} reports {attribute.metric} {problem}.", source, entry)
    judgement = judge(attribute, entry.value)
    reason = judgement.reason
    if entry.detail:
        # what lies behind a categorical result, e.g. the organism detected and its reads
        reason = f"{_sentence(reason)} ({_sentence(entry.detail)})."
    return _attribute_record(
        attribute, judgement.result, reason, source, entry, judgement.value, judgement.value_text
    )


def _covered(attribute: Attribute, metrics: Mapping[str, Metric]) -> Metric | str:
    """The metric the attribute judges: for a limit of detection, that of the organisms it covers (the
    least sensitive of them), or the phrase saying why the unit reports none."""
    if not attribute.covers or attribute.covers == ("spike",):
        return metrics[attribute.metric]
    if attribute.covers == ("checklist",):
        names = ["lod_checklist_max"]
    else:
        names = [organism_lod_metric(organism) for organism in attribute.covers]
    missing = [name for name in names if name not in metrics]
    if missing:
        return f"reports no {missing[0]}, which the attribute covers (a checklist organism of the assay?)"
    covered = [metrics[name] for name in names]
    failed = next((m for m in covered if m.status != "ok"), None)
    if failed is not None:
        return failed
    return max(covered, key=lambda m: m.value if isinstance(m.value, int | float) else math.inf)


def _apply_validity(
    attributes: Sequence[Attribute], records: Sequence[AttributeResult]
) -> list[AttributeResult]:
    """Make an invalid assay's attributes INCONCLUSIVE, the validity criterion that is not met included.

    A validity criterion judges the run (e.g. its limit of detection), so not meeting it is no
    finding about the product: neither a PASS nor a FAIL of that assay can be relied on, except a
    detection. An organism found stays FAIL: a run less sensitive than claimed can miss a
    contaminant, not invent one, and USP <71> / Ph. Eur. 2.6.1 and the FDA's OOS guidance allow a
    positive result to be invalidated only for an assignable cause (the same organism in the run's
    negative control, which the call itself weighs), lest a lab retest until a low-level
    contaminant is missed by chance.
    """
    invalid: dict[str, str] = {}
    for attribute, record in zip(attributes, records, strict=True):
        if attribute.validity and record.result != PASS and attribute.assay not in invalid:
            invalid[attribute.assay] = f"{attribute.name} is {record.result}: {_sentence(record.reason)}"
    judged = []
    for attribute, record in zip(attributes, records, strict=True):
        why = invalid.get(attribute.assay)
        if why is None or record.result == INCONCLUSIVE or _is_detection(attribute, record):
            judged.append(record)
            continue
        if attribute.validity:
            reason = (
                f"{_sentence(record.reason)}; this criterion judges the run, "
                f"so the {attribute.assay} assay is not valid and must be repeated."
            )
        else:
            reason = (
                f"The {attribute.assay} assay is not valid ({why}), "
                f"so its result {record.value_text} cannot be relied on."
            )
        judged.append(
            dataclasses.replace(record, result=INCONCLUSIVE, reason=reason, value=None, value_text=None)
        )
    return judged


def _is_detection(attribute: Attribute, record: AttributeResult) -> bool:
    """True for a FAIL of a "nothing detected" criterion because something was detected."""
    return (
        record.result == FAIL
        and attribute.comparison == "equals"
        and attribute.limit == NOT_DETECTED
        and record.value == DETECTED
    )


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names)


def lot_status(
    spec_name: str, outcomes: Sequence[tuple[str, str]], failed_units: Sequence[str] = ()
) -> tuple[str, str]:
    """The lot's status and its one-sentence reason from (attribute name, result) pairs.

    RELEASE_CANDIDATE only when there is at least one attribute, all are PASS and no unit of the
    lot is in ``failed_units`` (units that could not be measured: broken evidence is never ignored,
    even where no attribute reads it); NOT_RELEASABLE when any is FAIL (also when others are
    INCONCLUSIVE, which the reason then says); INCONCLUSIVE otherwise, including for a
    specification without attributes.
    """
    total = len(outcomes)
    if total == 0:
        return INCONCLUSIVE, f"Specification {spec_name} has no attributes, so nothing supports release."
    failed = [name for name, result in outcomes if result == FAIL]
    unknown = [name for name, result in outcomes if result not in (PASS, FAIL)]
    if failed:
        verb = "fails" if len(failed) == 1 else "fail"
        reason = f"{len(failed)} of {total} attributes {verb} ({_listed(failed)})"
        if unknown:
            verb = "is" if len(unknown) == 1 else "are"
            reason += f" and {len(unknown)} {verb} inconclusive ({_listed(unknown)})"
        return NOT_RELEASABLE, reason + "."
    if unknown:
        verb = "is" if len(unknown) == 1 else "are"
        return (
            INCONCLUSIVE,
            f"{len(unknown)} of {total} attributes {verb} inconclusive ({_listed(unknown)}); "
            "a release candidate needs every attribute to pass.",
        )
    if failed_units:
        units = "unit" if len(failed_units) == 1 else "units"
        return (
            INCONCLUSIVE,
            f"All {total} attributes pass, but {units} {_listed(failed_units)} could not be measured; "
            "a release candidate needs all of the lot's evidence.",
        )
    return (
        RELEASE_CANDIDATE,
        f"All {total} attributes of specification {spec_name} pass; QA review and sign-off decide release.",
    )


def _dose_evidence(
    run: RunConfig, lot: Lot, units: Sequence[Unit], evidence: Mapping[str, _UnitEvidence]
) -> _UnitEvidence:
    """The lot's dose metrics, as the evidence of a unit of assay ``dose`` (see rapidrelease.release.dose)."""
    phenotype = [evidence[u.unit_id] for u in units if (u.assay, u.role) == ("phenotype", "test")]
    source, metrics, problem = None, None, None
    if len(phenotype) > 1:
        problem = f"the dose needs one phenotype test unit, but lot {lot.lot_id} has {_names(phenotype)}."
    elif phenotype and phenotype[0].error is not None:
        source = phenotype[0]
        problem = f"unit {source.unit.unit_id} could not be measured ({source.error})."
    elif phenotype:
        source, metrics = phenotype[0], phenotype[0].metrics
    unit_id = source.unit.unit_id if source is not None else None
    dose_unit = Unit(lot.lot_id, f"dose({unit_id or 'no phenotype unit'})", DOSE_ASSAY, "test", None)
    return _UnitEvidence(
        dose_unit,
        None,
        metrics=dose_metrics(
            lot, run.dose.fractions, unit_id, metrics, problem, run.dose.viable_count_cv_pct
        ),
        inputs=source.inputs if source is not None else (),
    )


def _starting_material_record(spec: Spec, attributes: Sequence[AttributeResult]) -> StartingMaterial:
    """The lot's incoming-material record: its specification, acceptance status and attributes."""
    failed = [a.name for a in attributes if a.result == FAIL]
    unknown = [a.name for a in attributes if a.result == INCONCLUSIVE]
    if not attributes:
        status, reason = INCONCLUSIVE, f"Specification {spec.name} has no attributes."
    elif failed:
        status, reason = (
            NOT_ACCEPTED,
            f"{_listed(failed)} of the starting material {'fails' if len(failed) == 1 else 'fail'}.",
        )
    elif unknown:
        status, reason = (
            INCONCLUSIVE,
            f"{_listed(unknown)} of the starting material "
            f"{'is' if len(unknown) == 1 else 'are'} inconclusive.",
        )
    else:
        status, reason = ACCEPTED, f"All {len(attributes)} attributes of specification {spec.name} pass."
    return StartingMaterial(
        spec=spec.name,
        spec_description=spec.description,
        status=status,  # type: ignore[arg-type]
        status_reason=reason,
        counts=ResultCounts.of(tuple(attributes)),
        attributes=tuple(attributes),
    )


def _with_starting_material(status: str, reason: str, starting: StartingMaterial) -> tuple[str, str]:
    """The lot's status once its starting material is judged: a lot made from starting material
    that failed acceptance is not releasable, one whose acceptance is in doubt no release candidate."""
    if starting.status == ACCEPTED:
        return status, reason
    state = starting.status.lower().replace("_", " ")
    why = f"its starting material is {state} against {starting.spec} ({_sentence(starting.status_reason)})"
    if starting.status == NOT_ACCEPTED:
        if status == NOT_RELEASABLE:
            return status, f"{_sentence(reason)}; also, {why}."
        return NOT_RELEASABLE, f"The lot is not releasable: {why}."
    if status == RELEASE_CANDIDATE:
        return (
            INCONCLUSIVE,
            f"Every release attribute passes, but {why}; "
            "a release candidate needs accepted starting material.",
        )
    return status, f"{_sentence(reason)}; also, {why}."


def evaluate_lot(
    run: RunConfig,
    lot_id: str,
    records: Sequence[UnitRecord],
    unreadable: Mapping[str, str] | None = None,
) -> Release:
    """The release decision record of ``lot_id`` (release.json without its audit block).

    ``records`` are the lot's unit records (records of other lots are ignored); ``unreadable`` maps
    a unit id to the sentence saying why its record could not be read. Raises ConfigError for a
    lot not in the lot sheet and SpecError for a lot whose specification is not loaded; every
    problem with the evidence itself only makes attributes INCONCLUSIVE.
    """
    lot = run.lots.get(lot_id)
    if lot is None:
        sheet = run.settings.get("lots", "the lot sheet")
        raise ConfigError(f"{sheet}: has no lot {lot_id!r}.")
    spec = run.specs.get(lot.spec)
    if spec is None:
        raise SpecError(
            f"{run.settings.get('specs', 'the specifications')}: has no specification {lot.spec!r}."
        )
    units = run.units_of(lot_id)
    evidence = _gather_units(lot_id, units, records, unreadable or {})
    failed_units = [u.unit_id for u in units if evidence[u.unit_id].error is not None]
    # the dose is judged like a unit's metric: a unit of the pseudo-assay dose, never in the sheet
    dose = _dose_evidence(run, lot, units, evidence)
    judged_units, judged = (*units, dose.unit), {**evidence, dose.unit.unit_id: dose}

    def judge_spec(judged_against: Spec) -> tuple[AttributeResult, ...]:
        results = [_evaluate_attribute(a, lot_id, judged_units, judged) for a in judged_against.attributes]
        return tuple(_apply_validity(judged_against.attributes, results))

    attributes = judge_spec(spec)
    status, reason = lot_status(spec.name, [(a.name, a.result) for a in attributes], failed_units)
    starting = None
    if lot.starting_spec is not None:
        accepted_against = run.specs.get(lot.starting_spec)
        if accepted_against is None:
            raise SpecError(
                f"{run.settings.get('specs', 'the specifications')}: "
                f"has no specification {lot.starting_spec!r}."
            )
        starting = _starting_material_record(accepted_against, judge_spec(accepted_against))
        status, reason = _with_starting_material(status, reason, starting)
    return Release(
        schema_version=RELEASE_SCHEMA_VERSION,
        lot=LotInfo(
            lot_id=lot.lot_id,
            product=lot.product,
            spec=spec.name,
            spec_description=spec.description,
            site=lot.site,
            collected_at=lot.collected_at.isoformat(),
            deadline_hours=run.deadline_hours,
            deadline=run.deadline_of(lot_id).isoformat(),
            extra=dict(lot.extra),
        ),
        status=status,  # type: ignore[arg-type]
        status_reason=reason,
        counts=ResultCounts.of(attributes),
        attributes=attributes,
        starting_material=starting,
        units=tuple(
            UnitSummary(
                unit_id=unit.unit_id,
                assay=unit.assay,
                role=unit.role,
                path=str(unit.path) if unit.path is not None else None,
                status="ok" if evidence[unit.unit_id].error is None else "error",
                error=f"{evidence[unit.unit_id].error}." if evidence[unit.unit_id].error else None,
                inputs=evidence[unit.unit_id].inputs,
                acquisition=evidence[unit.unit_id].acquisition,
            )
            for unit in units
        ),
    )


def read_lot_records(run: RunConfig, lot_id: str) -> tuple[list[UnitRecord], dict[str, str]]:
    """The lot's unit records from their result folders, and for each unit whose record cannot be
    used, the sentence saying why.

    Every record's inputs are hashed again now: a file changed or removed since its unit was
    measured (an instrument still writing, a copy replacing it, an edit) makes the unit an error.
    """
    records: list[UnitRecord] = []
    unreadable: dict[str, str] = {}
    for unit in run.units_of(lot_id):
        path = run.record_path(unit)
        try:
            record = read_unit_record(path, stage=run.record_stage(unit), lot_id=lot_id, unit_id=unit.unit_id)
        except RecordError as exc:
            unreadable[unit.unit_id] = str(exc)
            continue
        changed = changed_inputs(record.inputs) if record.ok else []
        if changed:
            unreadable[unit.unit_id] = " ".join(changed)
        records.append(record)
    return records, unreadable


def evaluate_lot_files(
    run: RunConfig, lot_id: str, out_path: Path, benchmarks_dir: Path | None = None
) -> Release:
    """Read the lot's unit records, evaluate the lot, add the audit block, write release.json.

    ``benchmarks_dir`` holds the workflow's Snakemake benchmark files, for the timeline's analysis
    times. The record is written sealed and atomically (rapidrelease.records); the returned record is
    what was written.
    """
    started_at = datetime.now(UTC)
    records, unreadable = read_lot_records(run, lot_id)
    decision = evaluate_lot(run, lot_id, records, unreadable)
    finished_at = datetime.now(UTC)
    timeline = lot_timeline(
        lot_id,
        run.lots[lot_id].collected_at,
        run.deadline_of(lot_id),
        decision.units,
        finished_at,
        benchmarks_dir,
        measured={u.unit_id: run.measurement_key(u) for u in run.units_of(lot_id) if u.assay in READS_ASSAYS},
    )
    paths = [run.record_path(u) for u in run.units_of(lot_id)]
    decision = dataclasses.replace(
        decision, audit=audit_block(run, lot_id, paths, started_at, finished_at, timeline)
    )
    write_record(Path(out_path), decision)
    return decision
