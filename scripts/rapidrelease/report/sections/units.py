"""One section per unit of the lot: whether it was measured, its files with their SHA-256, and the
evidence its record holds (flow or sequencing).

The record is read with :func:`rapidrelease.records.read_unit_record`, sealed and checked as every
stage reads it; one that cannot be read is shown as the sentence saying why, in place of its
evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rapidrelease.config.vocabulary import FLOW_ASSAYS, READS_ASSAYS
from rapidrelease.errors import RecordError
from rapidrelease.records import Acquisition, UnitRecord, UnitSummary, read_unit_record
from rapidrelease.release.integrity import changed_inputs
from rapidrelease.report.page import dom_id
from rapidrelease.report.sections.audit import FileRow
from rapidrelease.report.sections.evidence import as_text
from rapidrelease.report.sections.flow import FlowEvidence, SpilloverMatrix, flow_evidence, spillover_matrix
from rapidrelease.report.sections.sequencing import SequencingEvidence, sequencing_evidence

__all__ = ["UnitView", "unit_view"]


@dataclass(frozen=True)
class UnitView:
    """A unit's section. ``error`` is the decision's sentence when the unit was not measured;
    ``unreadable`` why its record cannot be shown; the rest is what its record holds."""

    unit_id: str
    assay: str
    role: str
    error: str | None
    acquisition: Acquisition | None
    inputs: tuple[FileRow, ...]
    unreadable: str | None
    compensation: str | None
    spillover: SpilloverMatrix | None
    flow: FlowEvidence | None
    sequencing: SequencingEvidence | None


def unit_view(unit: UnitSummary, unit_dir: Path | None) -> UnitView:
    """The section of ``unit`` as release.json lists it, with the evidence in its results folder
    ``unit_dir`` (None: no folder, no evidence)."""
    record: UnitRecord | None = None
    unreadable = None
    if unit_dir is not None:
        try:
            record = read_unit_record(unit_dir / "metrics.json", unit_id=unit.unit_id)
        except RecordError as exc:
            unreadable = str(exc)
        # the plots and tables shown are those the record was sealed with, or none
        changed = changed_inputs(record.outputs) if record is not None else []
        if changed:
            record, unreadable = None, " ".join(changed)
    # the decision keeps each input's hash; the record says what the file was to the stage
    roles = {} if record is None else {f.path: f.role for f in record.inputs}
    inputs = tuple(FileRow(roles.get(f.path or "", ""), f.path, f.size_bytes, f.sha256) for f in unit.inputs)
    flow = sequencing = None
    if record is not None and unit_dir is not None and unit.error is None:
        prefix = "unit-" + dom_id(unit.unit_id)
        if unit.assay in FLOW_ASSAYS:
            flow = flow_evidence(record, unit_dir, prefix)
        elif unit.assay in READS_ASSAYS:
            sequencing = sequencing_evidence(record, unit_dir, prefix)
    return UnitView(
        unit_id=unit.unit_id,
        assay=unit.assay,
        role=unit.role,
        error=unit.error,
        acquisition=unit.acquisition,
        inputs=inputs,
        unreadable=unreadable,
        compensation=None if record is None else as_text(record.evidence.get("compensation")),
        spillover=None if record is None else spillover_matrix(record),
        flow=flow,
        sequencing=sequencing,
    )
