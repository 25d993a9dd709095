"""The release-candidate report of one lot: one self-contained HTML file (``templates/lot_report.html.j2``).

Decision first: the status banner, then every attribute with its value, criterion, result and the
reason — failures and inconclusives before passes (:mod:`.sections.attributes`), the starting
material, and the 24-hour window (:mod:`.sections.timeline`). Then the evidence of each unit
(:mod:`.sections.units`): for flow, the gating plots with the gates drawn and the event counts on
them and the population hierarchy (:mod:`.sections.flow`); for sequencing, the contaminant calls'
evidence and the reads by category and taxon (:mod:`.sections.sequencing`); for every unit, the
inputs with their SHA-256. Last, the audit (:mod:`.sections.audit`). Plotly's JavaScript is
embedded once, so the file makes no network request and opens from a USB stick; it prints on paper
too.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from rapidrelease.config.vocabulary import INCONCLUSIVE
from rapidrelease.outputs import write_text
from rapidrelease.records import Release, read_release
from rapidrelease.release.integrity import changed_inputs
from rapidrelease.release.signatures import SIGNATURES_FILE, SignatureStatus, read_signatures
from rapidrelease.report.page import render_page
from rapidrelease.report.sections.attributes import attribute_rows, starting_material_view
from rapidrelease.report.sections.audit import audit_files, audit_view
from rapidrelease.report.sections.timeline import timeline_section
from rapidrelease.report.sections.units import unit_view

__all__ = ["render_lot_report", "write_lot_report"]


def render_lot_report(
    release: Release, unit_dirs: Mapping[str, Path], signatures: Sequence[SignatureStatus] = ()
) -> str:
    """The report HTML of a lot's decision; ``unit_dirs`` maps unit ids to their result folders,
    ``signatures`` are the lot's signatures, valid or void, as they stand when it is rendered."""
    return render_page(
        "lot_report.html.j2",
        release=release,
        attributes=attribute_rows(release.attributes),
        starting_material=starting_material_view(release.starting_material),
        timeline=timeline_section(release),
        units=[unit_view(unit, unit_dirs.get(unit.unit_id)) for unit in release.units],
        audit=audit_view(release),
        signatures=list(signatures),
    )


def write_lot_report(release_path: Path, unit_dirs: Mapping[str, Path], out_path: Path) -> None:
    """``rapidrelease report``: render ``release_path`` with the evidence in ``unit_dirs`` (unit id →
    results folder) to ``out_path``.

    release.json is read through :mod:`rapidrelease.records` (sealed, consistent, of the published
    schema). Just before the report is written, every data file and unit record the decision rests
    on is hashed again; if one changed, the report shows no decision.
    """
    release = read_release(Path(release_path))
    records = [f for f in audit_files(release) if f.role == "metrics"]
    changed = changed_inputs([*(i for u in release.units for i in u.inputs), *records])
    if changed:
        print(f"rapidrelease report: {' '.join(changed)}", file=sys.stderr)
        release = dataclasses.replace(
            release,
            status=INCONCLUSIVE,
            status_reason="An input changed after release.json was written, so this report shows no "
            "decision: " + " ".join(changed),
        )
    # the signatures recorded so far, checked against release.json as it is now (release.signatures)
    signatures = read_signatures(Path(release_path).parent / SIGNATURES_FILE, Path(release_path))
    write_text(Path(out_path), render_lot_report(release, unit_dirs, signatures))
