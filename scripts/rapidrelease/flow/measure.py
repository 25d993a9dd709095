"""Measuring one flow unit of a lot: read the tube, gate it, compute the panel's metrics.

This is the step the workflow runs per unit. It never fails the workflow on bad evidence: an
unreadable file, a missing channel, a wrong panel — anything — is written into ``metrics.json`` as
``status: error`` with one sentence naming the file and the problem, so that the lot's attributes
that need this unit become INCONCLUSIVE while every other lot carries on. Outputs are written
atomically; ``metrics.json`` last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from rapidrelease.errors import MetricError
from rapidrelease.gating.engine import (
    DEFAULT_CHUNK_SIZE,
    SampleLayout,
    compile_tree,
    gate_chunks,
    populations_table,
)
from rapidrelease.gating.evidence import gate_plot_data
from rapidrelease.outputs import input_record, sha256_file, write_json, write_table
from rapidrelease.release.unit_record import new_unit_record, record_failure

__all__ = ["FLOW_ASSAYS", "measure_unit"]

FLOW_ASSAYS = ("phenotype",)
"""Flow assays this version measures; potency and microbial_flow units are recorded as not measurable."""

PLOT_EVENTS = 20_000  # raw events kept for the gate plots (counts always use every event)


def measure_unit(
    lot_id: str,
    unit_id: str,
    assay: str,
    role: str,
    fcs_path: Path | None,
    panel_path: Path | None,
    out_dir: Path,
) -> dict[str, Any]:
    """Measure one unit; write ``populations.tsv``, ``gate_plots.json`` and ``metrics.json`` in ``out_dir``.

    Returns the ``metrics.json`` record. Its ``status`` is ``"ok"`` or ``"error"`` (with ``error``, one
    sentence); it also lists every input with its SHA-256 and size, the acquisition times and the
    panel's metrics with their counts.
    """
    record = new_unit_record(lot_id, unit_id, assay, role, acquisition=None, panel=None, compensation=None)
    populations = populations_table([])
    plots: list[dict[str, Any]] = []
    try:
        populations, plots = _measure(record, assay, fcs_path, panel_path)
    except Exception as exc:  # a bad input, or a bug: either makes only this lot INCONCLUSIVE
        record_failure(record, exc, "measuring")
    out_dir = Path(out_dir)
    write_table(populations, out_dir / "populations.tsv")
    write_json(out_dir / "gate_plots.json", {"lot_id": lot_id, "unit_id": unit_id, "plots": plots})
    write_json(out_dir / "metrics.json", record)
    return record


def _measure(
    record: dict[str, Any], assay: str, fcs_path: Path | None, panel_path: Path | None
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    from rapidrelease.fcs.compensation import read_spillover_file
    from rapidrelease.fcs.reader import read_fcs
    from rapidrelease.flow.metrics import compute_metrics
    from rapidrelease.flow.panel import load_panel

    unit = f"unit {record['unit_id']} of lot {record['lot_id']}"
    if assay not in FLOW_ASSAYS:
        raise MetricError(f"{unit}: assay {assay!r} is not measured by this version of rapidrelease.")
    if fcs_path is None:
        raise MetricError(f"{unit}: units.tsv gives no FCS file (column 'path').")
    if panel_path is None:
        raise MetricError(f"{unit}: units.tsv gives no panel (column 'template').")
    record["inputs"].append(input_record(Path(fcs_path), "fcs"))
    panel_path = Path(panel_path)
    record["panel"] = {
        "path": str(panel_path),
        "sha256": sha256_file(panel_path) if panel_path.is_file() else None,
    }
    panel = load_panel(panel_path)
    record["panel"].update(
        {"name": panel.name, "gating_template": input_record(panel.template_path, "template")}
    )
    if panel.assay != assay:
        raise MetricError(
            f"{panel_path}: the panel measures {panel.assay!r}, but {unit} is a {assay!r} unit."
        )
    if not Path(fcs_path).is_file():
        raise MetricError(f"{fcs_path}: file not found.")
    fcs = read_fcs(Path(fcs_path))
    record["inputs"][0].update(
        {"fcs_version": fcs.version, "n_events": fcs.n_events, "warnings": list(fcs.warnings)}
    )
    record["acquisition"] = _acquisition(fcs)
    tree = panel.template().tree_for(fcs.sample_id)
    panel.check_populations(tree)
    layout = SampleLayout.of(fcs)
    if panel.compensation_path is None:
        record["compensation"] = "the tube's own $SPILLOVER" if layout.spillover else None
    else:
        record["inputs"].append(input_record(panel.compensation_path, "compensation"))
        record["compensation"] = str(panel.compensation_path)
        layout = layout.with_spillover(read_spillover_file(panel.compensation_path))
    compiled = compile_tree(tree, layout)
    result = gate_chunks(
        fcs.sample_id,
        fcs.iter_event_chunks(DEFAULT_CHUNK_SIZE),
        compiled,
        keep_sample=PLOT_EVENTS,
        n_expected=fcs.n_events,
    )
    record["metrics"] = compute_metrics(panel, result)
    return populations_table([result]), gate_plot_data(result, compiled)


def _acquisition(fcs: Any) -> dict[str, Any]:
    from rapidrelease.fcs.reader import describe_fcs

    described = describe_fcs(fcs)
    acquisition = described.get("acquisition") or {}
    return {
        "start": acquisition.get("start"),
        "end": acquisition.get("end"),
        "cytometer": described.get("cytometer"),
    }
