"""Measuring one flow unit of a lot: read the tube, gate it, compute the panel's metrics.

This is the step the workflow runs per unit. It never fails the workflow on bad evidence: an
unreadable file, a missing channel, a wrong panel — anything — is written into ``metrics.json`` as
``status: error`` with one sentence naming the file and the problem, so that the lot's attributes
that need this unit become INCONCLUSIVE while every other lot carries on. Outputs are written
atomically; ``metrics.json`` last.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from rapidrelease.config.run import MEASURED_DIR, RunConfig, Unit
from rapidrelease.config.vocabulary import FLOW_ASSAYS
from rapidrelease.errors import MetricError, RapidReleaseError
from rapidrelease.fcs.compensation import Spillover, read_spillover_file
from rapidrelease.fcs.reader import FCSFile, describe_fcs, read_fcs
from rapidrelease.flow.metrics import MetricContext, TubeCounts, compute_metrics, control_name
from rapidrelease.flow.microbial import detection_metrics
from rapidrelease.flow.panel import Panel, ThresholdDefinition, load_panel
from rapidrelease.flow.spillover import SingleStain, compare_spillover, spillover_from_single_stains
from rapidrelease.flow.thresholds import derive_threshold, with_panel_gates
from rapidrelease.gating.compiled import use_template_cache
from rapidrelease.gating.engine import (
    DEFAULT_CHUNK_SIZE,
    GatingResult,
    SampleLayout,
    compile_tree,
    gate_chunks,
)
from rapidrelease.gating.evidence import gate_plot_data
from rapidrelease.gating.io import populations_table
from rapidrelease.outputs import write_json, write_table
from rapidrelease.records import Acquisition, FileRef, Json, Metric, UnitRecord, file_ref, write_record

__all__ = ["ControlTube", "measure_tube", "measure_unit"]

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

    @classmethod
    def of(cls, unit: Unit) -> ControlTube:
        return cls(unit.unit_id, unit.role, unit.path or Path(), unit.stain, unit.volume_ul)


def measure_unit(run: RunConfig, unit: Unit) -> UnitRecord:
    """Measure a flow unit of the configured run against the lot's control tubes the configuration
    gives it (:meth:`RunConfig.controls_of`), into its results folder (:meth:`RunConfig.unit_dir`).
    The panels' gating templates are compiled once per run, under ``<results>/_measured/templates``."""
    use_template_cache(run.results_dir / MEASURED_DIR / "templates")
    return measure_tube(
        lot_id=unit.lot_id,
        unit_id=unit.unit_id,
        assay=unit.assay,
        role=unit.role,
        fcs_path=unit.path,
        panel_path=unit.template,
        out_dir=run.unit_dir(unit),
        controls=[ControlTube.of(c) for c in run.controls_of(unit)],
        stain=unit.stain,
        volume_ul=unit.volume_ul,
    )


@dataclass
class _Found:
    """What measuring a tube has found so far: the record's inputs and evidence, as they grow."""

    inputs: list[FileRef] = field(default_factory=list)
    acquisition: Acquisition | None = None
    evidence: dict[str, Json] = field(
        default_factory=lambda: {
            "panel": None,
            "compensation": None,
            "thresholds": [],
            "controls": [],
            "single_stains": None,
        }
    )


def measure_tube(
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
) -> UnitRecord:
    """Measure one tube; write ``populations.tsv``, ``gate_plots.json`` and ``metrics.json`` in ``out_dir``.

    ``controls`` are the lot's other units of the same assay and panel with a control role; the
    panel's derived thresholds and its background, lysis and detection metrics read those it needs.
    Returns the unit record written to ``metrics.json``: its status is ``ok`` or ``error`` (with
    one sentence); it lists every input with its SHA-256 and size (control tubes, panel and gating
    template included), the acquisition times, the thresholds derived and the panel's metrics with
    their counts. A control that cannot be used makes only the metrics that need it INCONCLUSIVE.
    """
    found = _Found()
    populations = populations_table([])
    plots: list[dict[str, Json]] = []
    metrics: dict[str, Metric] = {}
    this = ControlTube(unit_id, role, Path(fcs_path) if fcs_path else Path(), stain, volume_ul)
    record = UnitRecord("measure", lot_id, unit_id, assay, role)
    try:
        populations, plots, metrics = _measure(found, record, fcs_path, panel_path, this, controls)
    except Exception as exc:  # a bad input, or a bug: either makes only this lot INCONCLUSIVE
        record = record.failed(exc, "measuring")
    # a file the reader did not get to hash is hashed as it is, for the audit trail
    found.inputs = [file_ref(Path(f.path), f.role) if f.size_bytes is None else f for f in found.inputs]
    out_dir = Path(out_dir)
    write_table(populations, out_dir / "populations.tsv")
    write_json(out_dir / "gate_plots.json", {"lot_id": lot_id, "unit_id": unit_id, "plots": plots})
    record = dataclasses.replace(
        record,
        inputs=tuple(found.inputs),
        outputs=(
            file_ref(out_dir / "populations.tsv", "populations"),
            file_ref(out_dir / "gate_plots.json", "gate plots"),
        ),
        acquisition=found.acquisition,
        evidence=found.evidence,
        metrics=metrics if record.ok else {},
    )
    write_record(out_dir / "metrics.json", record)
    return record


class _Tube:
    """A tube read and laid out once: its FCS file, its tree from the template, its channel layout and
    its acquired volume in mL (with where the volume came from)."""

    def __init__(self, spec: ControlTube, panel: Panel) -> None:
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
        self.volume_ml, self.volume_source = self._volume(panel.volume_tolerance_pct)

    def _volume(self, tolerance_pct: float) -> tuple[float | None, str | None]:
        """The sheet's volume_ul if given, else the file's $VOL (nanolitres), in mL; MetricError when
        both are given and disagree by more than ``tolerance_pct`` % of the file's."""
        text = self.fcs.keywords.get("$VOL", "").strip()
        try:
            nanolitres = float(text)
        except ValueError:
            nanolitres = math.nan
        recorded = nanolitres / 1e6 if math.isfinite(nanolitres) and nanolitres > 0 else None
        if self.spec.volume_ul is None:
            return (recorded, "$VOL") if recorded is not None else (None, None)
        sheet = self.spec.volume_ul / 1000.0
        # a sheet volume far from the instrument's own reading would move every count per mL with it
        if recorded is not None and abs(sheet - recorded) > tolerance_pct / 100 * recorded:
            raise MetricError(
                f"{self.spec.path}: the unit sheet's volume_ul ({self.spec.volume_ul:g} µL) disagrees "
                f"with the file's $VOL ({recorded * 1000:g} µL) by more than {tolerance_pct:g} %; "
                "correct the sheet or leave volume_ul empty to use $VOL."
            )
        return sheet, "volume_ul"


def _read_tube(found: _Found, index: int, spec: ControlTube, panel: Panel) -> _Tube:
    """Read a tube and complete its input entry ``found.inputs[index]`` from what the reader saw:
    the SHA-256 of the bytes it read (each file is hashed once), the FCS version, events, warnings."""
    tube = _Tube(spec, panel)
    fcs = tube.fcs
    found.inputs[index] = dataclasses.replace(
        found.inputs[index],
        sha256=fcs.sha256,
        size_bytes=fcs.size_bytes,
        details={"fcs_version": fcs.version, "n_events": fcs.n_events, "warnings": list(fcs.warnings)},
    )
    return tube


def _check_release_grade(fcs: FCSFile) -> None:
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
    found: _Found,
    record: UnitRecord,
    fcs_path: Path | None,
    panel_path: Path | None,
    this: ControlTube,
    controls: Sequence[ControlTube],
) -> tuple[pl.DataFrame, list[dict[str, Json]], dict[str, Metric]]:
    unit = f"unit {record.unit_id} of lot {record.lot_id}"
    if record.assay not in FLOW_ASSAYS:
        raise MetricError(f"{unit}: assay {record.assay!r} is not a flow cytometry assay.")
    if fcs_path is None:
        raise MetricError(f"{unit}: units.tsv gives no FCS file (column 'path').")
    if panel_path is None:
        raise MetricError(f"{unit}: units.tsv gives no panel (column 'template').")
    # the tube's own file comes first; it is hashed once, by the reader (below)
    found.inputs.append(file_ref(Path(fcs_path), "fcs", hashed=False))
    panel_path = Path(panel_path)
    found.inputs.append(file_ref(panel_path, "panel"))
    panel = load_panel(panel_path)
    found.inputs.append(file_ref(panel.template_path, "gating template"))
    found.evidence["panel"] = {
        "path": str(panel_path),
        "name": panel.name,
        "gating_template": str(panel.template_path),
    }
    if panel.assay != record.assay:
        raise MetricError(
            f"{panel_path}: the panel measures {panel.assay!r}, but {unit} is a {record.assay!r} unit."
        )
    tube = _read_tube(found, 0, this, panel)
    fcs = tube.fcs
    found.acquisition = _acquisition(fcs)
    if panel.compensation_path is None:
        found.evidence["compensation"] = "the tube's own $SPILLOVER" if tube.layout.spillover else None
    else:
        found.inputs.append(file_ref(panel.compensation_path, "compensation"))
        found.evidence["compensation"] = str(panel.compensation_path)

    # the lot's control tubes the panel reads, each read once; one that cannot be read is a reason
    needed = panel.control_roles()
    tubes: dict[str, _Tube] = {this.unit_id: tube}
    problems: dict[str, str] = {}
    chosen: list[Json] = []
    for control in controls:
        if control.role not in needed or control.unit_id == this.unit_id:
            continue
        index = len(found.inputs)
        found.inputs.append(
            file_ref(control.path, f"control fcs ({control.role} {control.unit_id})", hashed=False)
        )
        try:
            tubes[control.unit_id] = _read_tube(found, index, control, panel)
            if found.inputs[index].sha256 == found.inputs[0].sha256:
                # a copy of the tube under test under another name is no independent control
                del tubes[control.unit_id]
                raise MetricError(
                    f"{control.path}: holds the same bytes as the tube under test, {fcs_path} "
                    f"(SHA-256 {fcs.sha256[:12]}…), so it is no independent control."
                )
        except RapidReleaseError as exc:
            problems.setdefault(control.role, f"unit {control.unit_id}: {exc}")
            if found.inputs[index].sha256 is None:
                found.inputs[index] = file_ref(control.path, found.inputs[index].role)
        chosen.append(
            {"unit_id": control.unit_id, "role": control.role, "sha256": found.inputs[index].sha256}
        )
    found.evidence["controls"] = chosen
    by_role: dict[str, list[_Tube]] = {}
    for candidate in tubes.values():
        by_role.setdefault(candidate.spec.role, []).append(candidate)
    if panel.single_stains is not None:
        found.evidence["single_stains"] = _compensate_from_single_stains(
            found, panel, tube, tubes, by_role, problems
        )

    derived: dict[str, float] = {}
    missing: dict[tuple[str, ...], str] = {}
    thresholds: list[Json] = []
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
        thresholds.append(threshold.record())
    found.evidence["thresholds"] = thresholds

    compiled = compile_tree(with_panel_gates(tube.tree, panel, derived), tube.layout)
    result = gate_chunks(
        fcs.sample_id,
        fcs.iter_event_chunks(DEFAULT_CHUNK_SIZE),
        compiled,
        keep_sample=PLOT_EVENTS,
        n_expected=fcs.n_events,
    )

    def counts_of(measured: _Tube, gated: GatingResult) -> TubeCounts:
        return TubeCounts(
            measured.spec.unit_id,
            {pop.path: pop.count for pop in gated.populations},
            gated.n_events,
            measured.volume_ml,
            measured.volume_source,
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
    return populations_table([result]), gate_plot_data(result, compiled), metrics


def _compensate_from_single_stains(
    found: _Found,
    panel: Panel,
    tube: _Tube,
    tubes: dict[str, _Tube],
    by_role: dict[str, list[_Tube]],
    problems: dict[str, str],
) -> dict[str, Json]:
    """Compute the lot's spillover matrix from its compensation controls; compensate with it the
    tubes the panel says (all of them, or those without their own $SPILLOVER).

    When the tube needs the matrix and it cannot be computed, the tube cannot be measured. Returns the
    evidence of the matrix: the controls it came from, the matrix, and its check against the file's.
    """
    settings = panel.single_stains
    assert settings is not None
    own = tube.layout.spillover
    needed = settings.apply == "always" or own is None
    block: dict[str, Json] = {
        "population": "/".join(settings.population),
        "positive_fraction": settings.positive_fraction,
        "applied": False,
        "controls": [],
        "detectors": None,
        "matrix": None,
        "check_against_file": None,
        "problem": None,
    }
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
        return block
    block.update(
        controls=evidence,
        detectors=list(spillover.detectors),
        matrix=spillover.matrix.tolist(),
        check_against_file=None if own is None else compare_spillover(spillover, Spillover(*own)),
    )
    if needed:
        block["applied"] = True
        found.evidence["compensation"] = "the spillover matrix computed from the lot's single-stain controls"
        for member in tubes.values():
            member.layout = member.layout.with_spillover(spillover)
    return block


def _threshold_source(
    definition: ThresholdDefinition, by_role: dict[str, list[_Tube]], problems: dict[str, str]
) -> _Tube | str:
    """The tube a threshold is derived from, or why there is none."""
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


def _acquisition(fcs: FCSFile) -> Acquisition:
    described = describe_fcs(fcs)
    acquisition = described.get("acquisition") or {}
    return Acquisition(acquisition.get("start"), acquisition.get("end"), described.get("cytometer"))
