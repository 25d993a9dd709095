"""Measuring one flow unit of a lot: read the tube, gate it, compute the panel's metrics.

This is the step the workflow runs per unit. It never fails the workflow on bad evidence: an
unreadable file, a missing channel, a wrong panel — anything — is written into ``metrics.json`` as
``status: error`` with one sentence naming the file and the problem, so that the lot's attributes
that need this unit become INCONCLUSIVE while every other lot carries on. Outputs are written
atomically; ``metrics.json`` last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from rapidrelease.config.vocabulary import FLOW_ASSAYS
from rapidrelease.errors import MetricError, RapidReleaseError
from rapidrelease.gating.engine import (
    DEFAULT_CHUNK_SIZE,
    SampleLayout,
    compile_tree,
    gate_chunks,
)
from rapidrelease.gating.evidence import gate_plot_data
from rapidrelease.gating.io import populations_table
from rapidrelease.outputs import input_record, sha256_file, write_json, write_table
from rapidrelease.release.unit_record import new_unit_record, record_failure

if TYPE_CHECKING:
    from rapidrelease.flow.panel import ThresholdDefinition

__all__ = ["ControlTube", "measure_unit"]

PLOT_EVENTS = 20_000  # raw events kept for the gate plots (counts always use every event)


@dataclass(frozen=True)
class ControlTube:
    """A control unit of the same lot and panel that a tube's thresholds or metrics may read.

    ``stain`` is the unit sheet's stain column (for an FMO tube, the channel it leaves out);
    ``volume_ul`` its volume_ul column.
    """

    unit_id: str
    role: str
    path: Path
    stain: str | None = None
    volume_ul: float | None = None


def measure_unit(
    lot_id: str,
    unit_id: str,
    assay: str,
    role: str,
    fcs_path: Path | None,
    panel_path: Path | None,
    out_dir: Path,
    controls: Sequence[ControlTube] = (),
    stain: str | None = None,
    volume_ul: float | None = None,
) -> dict[str, Any]:
    """Measure one unit; write ``populations.tsv``, ``gate_plots.json`` and ``metrics.json`` in ``out_dir``.

    ``controls`` are the lot's other units of the same assay and panel with a control role; the
    panel's derived thresholds and its background, lysis and detection metrics read them. Returns
    the ``metrics.json`` record. Its ``status`` is ``"ok"`` or ``"error"`` (with ``error``, one
    sentence); it also lists every input with its SHA-256 and size (control tubes included), the
    acquisition times, the thresholds derived and the panel's metrics with their counts. A control
    that cannot be used makes only the metrics that need it INCONCLUSIVE.
    """
    record = new_unit_record(
        lot_id,
        unit_id,
        assay,
        role,
        acquisition=None,
        panel=None,
        compensation=None,
        thresholds=[],
        controls=[],
    )
    populations = populations_table([])
    plots: list[dict[str, Any]] = []
    this = ControlTube(unit_id, role, Path(fcs_path) if fcs_path else Path(), stain, volume_ul)
    try:
        populations, plots = _measure(record, assay, fcs_path, panel_path, this, controls)
    except Exception as exc:  # a bad input, or a bug: either makes only this lot INCONCLUSIVE
        record_failure(record, exc, "measuring")
    out_dir = Path(out_dir)
    write_table(populations, out_dir / "populations.tsv")
    write_json(out_dir / "gate_plots.json", {"lot_id": lot_id, "unit_id": unit_id, "plots": plots})
    write_json(out_dir / "metrics.json", record)
    return record


class _Tube:
    """A tube read and laid out once: its FCS file, its tree from the template, its channel layout."""

    def __init__(self, spec: ControlTube, panel: Any) -> None:
        from rapidrelease.fcs.compensation import read_spillover_file
        from rapidrelease.fcs.reader import read_fcs

        if not spec.path.is_file():
            raise MetricError(f"{spec.path}: file not found.")
        self.spec = spec
        self.fcs = read_fcs(spec.path)
        _check_release_grade(self.fcs)
        self.tree = panel.template().tree_for(self.fcs.sample_id)
        panel.check_populations(self.tree)
        layout = SampleLayout.of(self.fcs)
        if panel.compensation_path is not None:
            layout = layout.with_spillover(read_spillover_file(panel.compensation_path))
        self.layout = layout

    def volume(self) -> tuple[float | None, str | None]:
        """Acquired volume in mL: the sheet's volume_ul if given, else the file's $VOL (nanolitres)."""
        if self.spec.volume_ul is not None:
            return self.spec.volume_ul / 1000.0, "volume_ul"
        text = self.fcs.keywords.get("$VOL", "").strip()
        try:
            nanolitres = float(text)
        except ValueError:
            return None, None
        return (nanolitres / 1e6, "$VOL") if nanolitres > 0 else (None, None)


def _check_release_grade(fcs: Any) -> None:
    """Refuse a tube the FCS reader could read but whose events cannot be trusted for a release decision.

    The reader tolerates quirks that have one defensible reading; a release decision needs more:

    - duplicated $PnN names (FCS 3.1 §3.2.18 requires them unique): a gate on that name could read
      either parameter;
    - no events: nothing could be measured, and the file, not a gate, is the reason;
    - a DATA segment ($BEGINDATA–$ENDDATA) with room for at least one more whole event than $TOT:
      $TOT or $PAR is wrong (a $PAR one short shifts every value into the next channel), so which
      bytes are which event's values is in doubt;
    - a file that ends before its ANALYSIS segment ($ENDANALYSIS): the copy is incomplete;
    - a non-finite value (NaN, ±inf) in float DATA: no cytometer measures one, so the file is
      corrupt, and gates would silently drop those events.
    """
    name = fcs.sample_id
    seen: dict[str, int] = {}
    for channel in fcs.channels:
        if channel.pnn in seen:
            raise MetricError(
                f"{name}: parameters {seen[channel.pnn]} and {channel.number} are both named "
                f"{channel.pnn!r} ($PnN), so a gate on that channel could read either."
            )
        seen[channel.pnn] = channel.number
    if fcs.n_events == 0:
        raise MetricError(f"{name}: holds no events ($TOT is 0).")

    def keyword(key: str) -> int | None:
        try:
            return int(fcs.keywords.get(key, "").strip())
        except ValueError:
            return None

    widths = {"F": 32, "D": 64}
    bits = [widths.get(fcs.datatype, c.bits) for c in fcs.channels]
    begin, end = keyword("$BEGINDATA"), keyword("$ENDDATA")
    if fcs.datatype != "A" and None not in bits and begin and end and fcs.n_datasets == 1:
        record = sum(bits) // 8
        span = end - begin + 1
        if record and span - fcs.n_events * record >= record:
            raise MetricError(
                f"{name}: its DATA segment ($BEGINDATA–$ENDDATA) holds {span} bytes, room for more than "
                f"$TOT={fcs.n_events} events of {len(bits)} parameters ($PAR), so $TOT or $PAR is wrong."
            )
    analysis_end = keyword("$ENDANALYSIS")
    if fcs.n_datasets == 1 and analysis_end and analysis_end >= fcs.size_bytes:
        raise MetricError(
            f"{name}: is truncated: its ANALYSIS segment ends at byte {analysis_end}, "
            f"but the file has {fcs.size_bytes} bytes."
        )
    if fcs.datatype in widths:
        import numpy as np

        done = 0
        for chunk in fcs.iter_event_chunks(DEFAULT_CHUNK_SIZE):
            bad = np.flatnonzero(~np.isfinite(chunk).all(axis=1))
            if bad.size:
                row = int(bad[0])
                column = int(np.flatnonzero(~np.isfinite(chunk[row]))[0])
                raise MetricError(
                    f"{name}: event {done + row + 1} has the value {chunk[row, column]} in channel "
                    f"{fcs.channels[column].pnn}; no cytometer measures that, so the file is corrupt."
                )
            done += len(chunk)


def _measure(
    record: dict[str, Any],
    assay: str,
    fcs_path: Path | None,
    panel_path: Path | None,
    this: ControlTube,
    controls: Sequence[ControlTube],
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    from rapidrelease.flow.metrics import MetricContext, TubeCounts, compute_metrics
    from rapidrelease.flow.microbial import detection_metrics
    from rapidrelease.flow.panel import load_panel
    from rapidrelease.flow.thresholds import derive_threshold, with_panel_gates

    unit = f"unit {record['unit_id']} of lot {record['lot_id']}"
    if assay not in FLOW_ASSAYS:
        raise MetricError(f"{unit}: assay {assay!r} is not a flow cytometry assay.")
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
    tube = _Tube(this, panel)
    fcs = tube.fcs
    record["inputs"][0].update(
        {"fcs_version": fcs.version, "n_events": fcs.n_events, "warnings": list(fcs.warnings)}
    )
    record["acquisition"] = _acquisition(fcs)
    if panel.compensation_path is None:
        record["compensation"] = "the tube's own $SPILLOVER" if tube.layout.spillover else None
    else:
        record["inputs"].append(input_record(panel.compensation_path, "compensation"))
        record["compensation"] = str(panel.compensation_path)

    # the lot's control tubes the panel reads, each read once; one that cannot be read is a reason
    needed = panel.control_roles()
    tubes: dict[str, _Tube] = {this.unit_id: tube}
    problems: dict[str, str] = {}
    for control in controls:
        if control.role not in needed or control.unit_id == this.unit_id:
            continue
        entry = input_record(control.path, f"control fcs ({control.role} {control.unit_id})")
        record["inputs"].append(entry)
        try:
            tubes[control.unit_id] = _Tube(control, panel)
        except RapidReleaseError as exc:
            problems.setdefault(control.role, f"unit {control.unit_id}: {exc}")
        record["controls"].append(
            {"unit_id": control.unit_id, "role": control.role, "sha256": entry["sha256"]}
        )
    by_role: dict[str, list[_Tube]] = {}
    for candidate in tubes.values():
        by_role.setdefault(candidate.spec.role, []).append(candidate)
    if panel.single_stains is not None:
        _compensate_from_single_stains(record, panel, tube, tubes, by_role, problems)

    derived: dict[str, float] = {}
    missing: dict[tuple[str, ...], str] = {}
    for definition in panel.thresholds:
        source = _threshold_source(definition, by_role, problems)
        if isinstance(source, str):
            missing[definition.path] = source
            continue
        try:
            threshold = derive_threshold(
                definition,
                source.fcs,
                with_panel_gates(source.tree, panel, derived),
                source.layout,
                source.spec.unit_id,
                panel.min_events,
            )
        except RapidReleaseError as exc:
            missing[definition.path] = str(exc)
            continue
        derived[definition.name] = threshold.value
        record["thresholds"].append(threshold.record())

    compiled = compile_tree(with_panel_gates(tube.tree, panel, derived), tube.layout)
    result = gate_chunks(
        fcs.sample_id,
        fcs.iter_event_chunks(DEFAULT_CHUNK_SIZE),
        compiled,
        keep_sample=PLOT_EVENTS,
        n_expected=fcs.n_events,
    )

    def counts_of(measured: _Tube, gated: Any) -> TubeCounts:
        volume_ml, source = measured.volume()
        return TubeCounts(
            measured.spec.unit_id,
            {pop.path: pop.count for pop in gated.populations},
            gated.n_events,
            volume_ml,
            source,
        )

    control_counts: dict[str, list[TubeCounts]] = {}
    for control_role, members in by_role.items():
        for member in members:
            if member is tube:
                continue
            try:
                gated = gate_chunks(
                    member.fcs.sample_id,
                    member.fcs.iter_event_chunks(DEFAULT_CHUNK_SIZE),
                    compile_tree(with_panel_gates(member.tree, panel, derived), member.layout),
                )
            except RapidReleaseError as exc:
                problems.setdefault(control_role, f"unit {member.spec.unit_id}: {exc}")
                continue
            control_counts.setdefault(control_role, []).append(counts_of(member, gated))
    context = MetricContext(
        tube=counts_of(tube, result),
        role=this.role,
        controls=control_counts,
        missing=missing,
        control_problems=problems,
    )
    metrics = compute_metrics(panel, context)
    if panel.detection is not None:
        metrics |= detection_metrics(panel, metrics, context)
    record["metrics"] = metrics
    return populations_table([result]), gate_plot_data(result, compiled)


def _compensate_from_single_stains(
    record: dict[str, Any],
    panel: Any,
    tube: _Tube,
    tubes: dict[str, _Tube],
    by_role: dict[str, list[_Tube]],
    problems: dict[str, str],
) -> None:
    """Compute the lot's spillover matrix from its compensation controls; compensate with it the
    tubes the panel says (all of them, or those without their own $SPILLOVER).

    When the tube needs the matrix and it cannot be computed, the tube cannot be measured.
    """
    from rapidrelease.fcs.compensation import Spillover
    from rapidrelease.flow.spillover import SingleStain, compare_spillover, spillover_from_single_stains

    settings = panel.single_stains
    own = tube.layout.spillover
    needed = settings.apply == "always" or own is None
    block: dict[str, Any] = {
        "population": "/".join(settings.population),
        "positive_fraction": settings.positive_fraction,
        "applied": False,
        "controls": [],
        "detectors": None,
        "matrix": None,
        "check_against_file": None,
        "problem": None,
    }
    record["single_stains"] = block
    try:
        if "compensation" in problems:
            raise MetricError(problems["compensation"])
        controls = [
            SingleStain(t.spec.unit_id, t.spec.stain or "", t.fcs, t.tree, t.layout)
            for t in by_role.get("compensation", [])
        ]
        spillover, evidence = spillover_from_single_stains(
            controls, settings.population, settings.positive_fraction, panel.min_events
        )
    except MetricError as exc:
        if needed:
            raise MetricError(
                f"the spillover matrix this tube needs cannot be computed from the lot's single-stain "
                f"controls: {str(exc).rstrip('.')}."
            ) from None
        block["problem"] = str(exc)
        return
    block.update(
        controls=evidence,
        detectors=list(spillover.detectors),
        matrix=spillover.matrix.tolist(),
        check_against_file=None if own is None else compare_spillover(spillover, Spillover(*own)),
    )
    if needed:
        block["applied"] = True
        record["compensation"] = "the spillover matrix computed from the lot's single-stain controls"
        for member in tubes.values():
            member.layout = member.layout.with_spillover(spillover)


def _threshold_source(
    definition: ThresholdDefinition, by_role: dict[str, list[_Tube]], problems: dict[str, str]
) -> _Tube | str:
    """The tube a threshold is derived from, or why there is none."""
    from rapidrelease.flow.metrics import control_name

    candidates = by_role.get(definition.control, [])
    if definition.control == "fmo" and len(candidates) > 1:
        candidates = [t for t in candidates if t.spec.stain == definition.channel]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        ids = ", ".join(t.spec.unit_id for t in candidates)
        return (
            f"threshold {definition.name} needs one {control_name(definition.control)}, "
            f"but the lot has {len(candidates)} ({ids})"
        )
    why = problems.get(definition.control)
    if why:
        return (
            f"threshold {definition.name} needs the lot's {control_name(definition.control)}, "
            f"which could not be used: {why.rstrip('.')}"
        )
    which = f" whose stain is {definition.channel}" if definition.control == "fmo" else ""
    return (
        f"threshold {definition.name} needs the lot's {control_name(definition.control)}{which}, "
        "and the lot has none"
    )


def _acquisition(fcs: Any) -> dict[str, Any]:
    from rapidrelease.fcs.reader import describe_fcs

    described = describe_fcs(fcs)
    acquisition = described.get("acquisition") or {}
    return {
        "start": acquisition.get("start"),
        "end": acquisition.get("end"),
        "cytometer": described.get("cytometer"),
    }
