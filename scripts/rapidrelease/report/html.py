"""The release-candidate report of one lot: one self-contained HTML file.

Decision first: the status banner, then every attribute with its value, criterion, result and the
reason — failures and inconclusives before passes. Then the evidence of each unit: for flow, the
gating plots with the gates drawn and the event counts on them and the population hierarchy with
counts; for sequencing, the contaminant calls' evidence (:mod:`rapidrelease.sterility.calls`): for
a test its call, the reasons the assay is not valid, its limit of detection, the calls, the
checklist organisms and the controls; for a negative control its highest contaminant; for a
positive control its spike; then the fragments by category and the taxa found with their distinct
minimizers and genome breadth; for every unit, the inputs with their SHA-256. Last, the audit
block. Plotly's JavaScript is embedded once, so the file makes no network request and opens from
a USB stick; it prints on paper too.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import polars as pl

from rapidrelease.config.vocabulary import FLOW_ASSAYS
from rapidrelease.errors import RecordError
from rapidrelease.outputs import write_text
from rapidrelease.records import FileRef, read_release, read_unit_record, to_json
from rapidrelease.release.integrity import changed_inputs
from rapidrelease.report.figures import control_comparison_figure, gate_figure, timeline_figure
from rapidrelease.report.page import STATUS_TEXT as _STATUS_TEXT
from rapidrelease.report.page import duration as _duration
from rapidrelease.report.page import escape as _e
from rapidrelease.report.page import figure_div as _figure
from rapidrelease.report.page import html_document
from rapidrelease.report.page import table as _table

__all__ = ["render_lot_report", "write_lot_report"]

_RESULT_ORDER = {"FAIL": 0, "INCONCLUSIVE": 1, "PASS": 2}


def _value_text(attr: dict[str, Any]) -> str:
    value = attr.get("value")
    if value is None:
        return "—"
    unit = attr.get("unit") or ""
    text = f"{value} {unit}".strip()
    ci = (attr.get("evidence") or {}).get("ci95")
    if ci and None not in ci:
        text += f" <span class='note'>(95 % CI {ci[0]:.3g}–{ci[1]:.3g})</span>"
    return text


def _evidence_text(attr: dict[str, Any]) -> str:
    evidence = attr.get("evidence") or {}
    parts = []
    for role in ("numerator", "denominator"):
        pop = evidence.get(role)
        if pop:
            parts.append(f"{_e(pop.get('population'))}: {pop.get('count'):,}")
    if evidence.get("unit_id"):
        parts.append(f"unit {_e(evidence['unit_id'])}")
    return "<br>".join(parts)


def _attributes_table(attributes: list[dict[str, Any]]) -> str:
    ordered = sorted(enumerate(attributes), key=lambda ia: (_RESULT_ORDER.get(ia[1]["result"], 1), ia[0]))
    rows = []
    for _, attr in ordered:
        rows.append(
            "<tr>"
            f"<td><b>{_e(attr['name'])}</b><br><span class='note'>{_e(attr.get('metric'))}</span></td>"
            f"<td class='num'>{_value_text(attr)}</td>"
            f"<td>{_e(attr.get('criterion'))}</td>"
            f"<td><span class='result {_e(attr['result'])}'>{_e(attr['result'])}</span></td>"
            f"<td>{_e(attr.get('reason'))}</td>"
            f"<td class='note'>{_evidence_text(attr)}</td>"
            "</tr>"
        )
    return (
        "<table><thead><tr><th>Attribute</th><th>Value</th><th>Criterion</th><th>Result</th>"
        "<th>Reason</th><th>Events behind it</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _inputs_table(inputs: list[dict[str, Any]]) -> str:
    if not inputs:
        return "<p class='note'>No input file was read.</p>"
    rows = "".join(
        f"<tr><td>{_e(i.get('role'))}</td><td><code>{_e(i.get('path'))}</code></td>"
        f"<td class='num'>{_e(i.get('size_bytes'))}</td><td class='hash'>{_e(i.get('sha256'))}</td></tr>"
        for i in inputs
    )
    return (
        "<table><thead><tr><th>Role</th><th>File</th><th>Bytes</th><th>SHA-256</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _populations_table(path: Path) -> str:
    if not path.is_file():
        return ""
    table = pl.read_csv(path, separator="\t")
    if table.height == 0:
        return ""
    rows = []
    for row in table.iter_rows(named=True):
        depth = row["population"].count("/")
        pct = row["percent_parent"]
        rows.append(
            f"<tr><td style='padding-left:{8 + 16 * depth}px'>{_e(row['gate'])}</td>"
            f"<td class='num'>{row['count']:,}</td><td class='num'>{row['parent_count']:,}</td>"
            f"<td class='num'>{'—' if pct is None else f'{pct:.2f}'}</td></tr>"
        )
    return (
        "<h3>Population hierarchy</h3><table><thead><tr><th>Population</th><th>Events</th>"
        "<th>Parent events</th><th>% of parent</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


_CATEGORY_TEXT = {
    "host": "host",
    "vector": "vector",
    "spike_in": "spike-in",
    "adapter": "adapter",
    "bacteria": "bacteria",
    "fungi": "fungi",
    "mycoplasma": "mycoplasma",
    "virus": "virus",
    "other": "above every category (root)",
    "unclassified": "unclassified",
}
_TOP_TAXA = 15


def _classification_tables(unit_dir: Path, metrics: dict[str, Any]) -> str:
    """Fragments by category, then the taxa that most fragments were called to."""
    if "fragments_total" not in metrics:
        return ""
    total = metrics["fragments_total"].get("value") or 0
    rows = []
    for category, text in _CATEGORY_TEXT.items():
        pct = (metrics.get(f"{category}_pct") or {}).get("value")
        if pct is None:
            continue
        rows.append(
            f"<tr><td>{_e(text)}</td><td class='num'>{round(pct * total / 100):,}</td>"
            f"<td class='num'>{pct:.3f}</td></tr>"
        )
    parts = [
        f"<h3>Read classification</h3><p class='note'>{total:,} fragments (a read pair counts once), "
        "each called to the lowest taxon its k-mers support (Kraken 2's rules).</p>"
        "<table><thead><tr><th>Called to</th><th>Fragments</th><th>% of fragments</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    ]
    taxa_path = unit_dir / "taxa.tsv"
    if taxa_path.is_file():
        taxa = pl.read_csv(taxa_path, separator="\t")
        if taxa.height:
            called = taxa.filter(pl.col("reads_direct") > 0)
            top = called.sort("reads_direct", descending=True).head(_TOP_TAXA)
            rows = [
                f"<tr><td>{_e(t['name'])}</td><td>{_e(t['rank'])}</td><td>{_e(t['category'])}</td>"
                f"<td class='num'>{t['reads_direct']:,}</td>"
                f"<td class='num'>{t['distinct_minimizers_clade']:,}</td>"
                f"<td class='num'>{100 * t['breadth']:.3f}</td></tr>"
                for t in top.iter_rows(named=True)
            ]
            parts.append(
                f"<table><thead><tr><th>Taxon (top {_TOP_TAXA} by fragments called to it)</th><th>Rank</th>"
                "<th>Category</th><th>Fragments</th><th>Distinct minimizers (clade)</th>"
                "<th>Breadth (% of the clade's indexed minimizers)</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>"
            )
    return "".join(parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _num(value: Any, none: str = "—") -> str:
    """A measured number to 3 significant digits (no exponent from 1,000 up); ``none`` for null."""
    if value is None:
        return none
    if not _is_number(value):
        return _e(value)
    if not math.isfinite(value):
        return "∞" if value > 0 else "−∞" if value < 0 else none
    text = f"{value:.3g}"
    if "e" in text and abs(value) >= 1:
        text = f"{float(text):.0f}"
    return text


def _count(value: Any, none: str = "—") -> str:
    """A count with thousands separators; ``none`` for null."""
    if value is None:
        return none
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _num(value, none)


def _amount(value: Any, unit: Any) -> str:
    """A number with its unit, or "unknown" for null."""
    if value is None:
        return "unknown"
    return f"{_num(value)} {_e(unit)}".rstrip()


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _verdict(metrics: dict[str, Any], validity: Any) -> str:
    """The contaminant call, and the reasons the assay is not valid when it is not."""
    parts = []
    call = metrics.get("contaminant_call")
    if isinstance(call, dict) and "value" in call:
        text = f"<p><b>Contaminant call: {_e(call.get('value') or 'unknown')}</b>"
        if call.get("status") not in (None, "ok"):
            text += f" <span class='result INCONCLUSIVE'>{_e(str(call['status']).upper())}</span>"
        parts.append(text + "</p>")
    if isinstance(validity, dict) and validity.get("valid") is False:
        problems = validity.get("problems")
        problems = [p for p in problems if p] if isinstance(problems, list) else []
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        parts.append(
            "<div class='error invalid'><span class='result INCONCLUSIVE'>INCONCLUSIVE</span> "
            f"<b>The assay is not valid:</b>{f'<ul>{items}</ul>' if items else ''}</div>"
        )
    return "".join(parts)


def _lod_line(metrics: dict[str, Any], threshold: Any) -> str:
    clauses = []
    lod, worst = metrics.get("lod"), metrics.get("lod_checklist_max")
    if isinstance(lod, dict):
        clauses.append(
            f"Limit of detection (95 %): {_amount(lod.get('value'), lod.get('unit'))} for the spiked organism"
        )
    if isinstance(worst, dict):
        clauses.append(
            f"least sensitive checklist organism: {_amount(worst.get('value'), worst.get('unit'))}"
        )
    if isinstance(threshold, dict):
        clauses.append(
            f"detection threshold {_count(threshold.get('reads'), 'unknown')} reads "
            f"({_num(threshold.get('rpm'), 'unknown')} RPM)"
        )
    return f"<p>{'; '.join(clauses)}</p>" if clauses else ""


def _background_text(call: dict[str, Any]) -> str:
    """z against two or more negative controls, or fold and Poisson p against one (fold null: ∞)."""
    if call.get("z") is not None:
        return f"z {_num(call['z'])}"
    if call.get("p_value") is not None:
        return f"{_num(call.get('fold'), '∞')}× · p {_num(call['p_value'])}"
    return "—"


def _calls_table(calls: list[dict[str, Any]]) -> str:
    heading = "<h3>Contaminant calls</h3>"
    if not calls:
        return heading + "<p>No bacterium, fungus or mycoplasma read in this sample.</p>"
    ordered = sorted(calls, key=lambda c: c.get("call") != "DETECTED")  # stable: RPM order kept
    rows = []
    for c in ordered:
        control = c.get("control_rpm")
        control_text = ", ".join(_num(r) for r in control) if isinstance(control, list) and control else "—"
        call = _e(c.get("call"))
        rows.append(
            f"<tr><td><b>{_e(c.get('name'))}</b><br><span class='note'>taxid {_e(c.get('taxid'))}"
            f" · {_e(c.get('rank'))} · {_e(c.get('category'))}</span></td>"
            f"<td>{_e(c.get('level'))}</td>"
            f"<td class='num'>{_count(c.get('reads'))}</td>"
            f"<td class='num'>{_num(c.get('rpm'))}</td>"
            f"<td class='num'>{_count(c.get('distinct_minimizers'))}</td>"
            f"<td class='num'>{_num(100 * c['breadth'] if _is_number(c.get('breadth')) else None)}</td>"
            f"<td class='num'>{_num(c.get('kmer_ratio'))}</td>"
            f"<td class='num'>{control_text}</td>"
            f"<td class='num'>{_background_text(c)}</td>"
            f"<td>{f'<b>{call}</b>' if c.get('call') == 'DETECTED' else call}</td>"
            f"<td>{_e(c.get('reason'))}</td></tr>"
        )
    headers = [
        "Organism",
        "Level",
        "Reads",
        "RPM",
        "Distinct k-mers (minimizers)",
        "Breadth (% of the clade's indexed minimizers)",
        "k-mer ratio (distinct seen / expected)",
        "Negative controls' RPM",
        "z / fold",
        "Call",
        "Reason",
    ]
    return heading + _table(headers, rows)


def _checklist_table(checklist: list[dict[str, Any]]) -> str:
    rows = []
    for entry in checklist:
        strain = f" <span class='note'>{_e(entry['strain'])}</span>" if entry.get("strain") else ""
        share = entry.get("reference_genome_share")
        rows.append(
            f"<tr><td>{_e(entry.get('organism'))}{strain}</td><td>{_e(entry.get('group'))}</td>"
            f"<td><b>{_e(entry.get('status'))}</b></td>"
            f"<td class='num'>{_count(entry.get('reads'))}</td>"
            f"<td class='num'>{_amount(entry.get('lod'), entry.get('lod_unit'))}</td>"
            f"<td class='num'>{_num(100 * share if _is_number(share) else None)}</td>"
            f"<td>{_e(entry.get('reason'))}</td></tr>"
        )
    headers = ["Organism", "Group", "Status", "Reads", "LOD (95 %)", "Genome in reference (%)", "Reason"]
    return "<h3>Checklist organisms</h3>" + _table(headers, rows)


def _spike_rows(spikes: list[dict[str, Any]], with_unit: bool) -> list[str]:
    rows = []
    for s in spikes:
        unit_cell = f"<td>{_e(s.get('unit_id'))}</td>" if with_unit else ""
        per = f"RPM per {s.get('unit') or 'unit'}"
        rows.append(
            f"<tr>{unit_cell}<td>{_e(s.get('organism'))}</td>"
            f"<td class='num'>{_amount(s.get('concentration'), s.get('unit'))}</td>"
            f"<td class='num'>{_count(s.get('reads'))}</td><td class='num'>{_num(s.get('rpm'))}</td>"
            f"<td>{_e(s.get('call'))}</td>"
            f"<td class='num'>{_amount(s.get('rpm_per_unit'), per)}</td>"
            f"<td>{_e(s.get('problem')) or '—'}</td></tr>"
        )
    return rows


_SPIKE_HEADERS = ["Spike organism", "Concentration", "Reads", "RPM", "Call", "Sensitivity", "Problem"]


def _controls_tables(controls: dict[str, Any]) -> str:
    parts = ["<h3>Controls</h3>"]
    negatives = _dicts(controls.get("negative"))
    if "negative" in controls:
        rows = [
            f"<tr><td>{_e(c.get('unit_id'))}</td><td class='num'>{_count(c.get('fragments'))}</td>"
            f"<td>{_e(c.get('error')) or '—'}</td></tr>"
            for c in negatives
        ]
        parts.append(
            _table(["Negative control", "Fragments", "Error"], rows)
            if rows
            else "<p class='note'>No negative control.</p>"
        )
    if "positive" in controls:
        rows = _spike_rows(_dicts(controls.get("positive")), with_unit=True)
        parts.append(
            _table(["Positive control", *_SPIKE_HEADERS], rows)
            if rows
            else "<p class='note'>No positive control.</p>"
        )
    return "".join(parts) if len(parts) > 1 else ""


def _negative_control_block(metrics: dict[str, Any]) -> str:
    worst = metrics.get("max_contaminant_rpm")
    if not isinstance(worst, dict):
        return ""
    text = (
        "<p>Highest bacterium, fungus or mycoplasma in this negative control: "
        f"<b>{_amount(worst.get('value'), worst.get('unit'))}</b></p>"
    )
    if worst.get("status") not in (None, "ok"):
        text += (
            f"<div class='error'><span class='result INCONCLUSIVE'>{_e(str(worst['status']).upper())}</span>"
            f" {_e(worst.get('reason'))}</div>"
        )
    return text


def _positive_control_block(spike: Any) -> str:
    if not isinstance(spike, dict):
        return ""
    return "<h3>Spike</h3>" + _table(_SPIKE_HEADERS, _spike_rows([spike], with_unit=False))


_TOP_CALLS = 12


def _calls_figure(calls: list[dict[str, Any]], threshold: Any, prefix: str) -> str:
    """Bars of the test's RPM beside the negative controls' mean RPM for the organisms read most,
    with the test's detection threshold in RPM."""
    shown = [c for c in calls if _is_number(c.get("rpm"))][:_TOP_CALLS]
    if not shown:
        return ""
    control = []
    for c in shown:
        values = [v for v in c.get("control_rpm") or [] if _is_number(v)]
        control.append(sum(values) / len(values) if values else 0.0)
    line = None
    if isinstance(threshold, dict) and _is_number(threshold.get("rpm")):
        line = (float(threshold["rpm"]), f"detection threshold {_num(threshold['rpm'])} RPM")
    fig = control_comparison_figure(
        "Contaminant reads against the negative controls",
        [str(c.get("name")) for c in shown],
        [float(c["rpm"]) for c in shown],
        control,
        "reads per million",
        ("test", "negative controls (mean)"),
        line=line,
    )
    return "<div class='plots'>" + _figure(fig, f"{prefix}-calls") + "</div>"


def _contaminant_evidence(role: Any, measured: dict[str, Any], prefix: str) -> str:
    """A sequencing unit's calls against its controls (see rapidrelease.sterility.calls); each block is
    shown only when its keys are in metrics.json, so older files and failed units show none."""
    if measured.get("status") == "error":
        return ""
    metrics = measured.get("metrics") if isinstance(measured.get("metrics"), dict) else {}
    if role == "negative_control":
        return _negative_control_block(metrics)
    if role == "positive_control":
        return _positive_control_block(measured.get("spike"))
    if role != "test":
        return ""
    parts = [
        _verdict(metrics, measured.get("validity")),
        _lod_line(metrics, measured.get("detection_threshold")),
    ]
    if isinstance(measured.get("calls"), list):
        parts.append(_calls_figure(_dicts(measured["calls"]), measured.get("detection_threshold"), prefix))
        parts.append(_calls_table(_dicts(measured["calls"])))
    if isinstance(measured.get("checklist"), list):
        parts.append(_checklist_table(_dicts(measured["checklist"])))
    if isinstance(measured.get("controls"), dict):
        parts.append(_controls_tables(measured["controls"]))
    return "".join(parts)


def _plots(path: Path, prefix: str) -> str:
    if not path.is_file():
        return ""
    plots = _read_json(path).get("plots", [])
    if not plots:
        return ""
    divs = [_figure(gate_figure(plot), f"{prefix}-gate-{i}") for i, plot in enumerate(plots)]
    return "<h3>Gates</h3><div class='plots'>" + "".join(divs) + "</div>"


def _ci_text(ci: Any) -> str:
    if isinstance(ci, list) and len(ci) == 2 and all(_is_number(v) for v in ci):
        return f"{_num(ci[0])}–{_num(ci[1])}"
    return "—"


def _fraction(value: Any, numerator: Any, denominator: Any) -> str:
    """``"12.3 % (1,234 / 10,000)"`` for a percentage and the events behind it."""
    num = numerator.get("count") if isinstance(numerator, dict) else None
    den = denominator.get("count") if isinstance(denominator, dict) else None
    return f"{_num(value)} % ({_count(num)} / {_count(den)})"


def _cells(*values: str) -> str:
    return "<tr>" + "".join(values) + "</tr>"


def _flow_metrics_table(metrics: dict[str, Any]) -> str:
    """Every metric of a flow tube: value, interval, the events behind it, and why one is not reportable."""
    rows = []
    for name, entry in metrics.items():
        if not isinstance(entry, dict) or entry.get("kind") in ("category", "lod"):
            continue
        num, den = entry.get("numerator") or {}, entry.get("denominator") or {}
        status = entry.get("status")
        state = "" if status == "ok" else f"<span class='result INCONCLUSIVE'>{_e(status)}</span> "
        value = "—" if entry.get("value") is None else _amount(entry["value"], entry.get("unit"))
        rows.append(
            _cells(
                f"<td><b>{_e(name)}</b><br><span class='note'>{_e(entry.get('description'))}</span></td>",
                f"<td class='num'>{value}</td>",
                f"<td class='num'>{_ci_text(entry.get('ci95'))}</td>",
                f"<td>{_e(num.get('population'))} {_count(num.get('count'), '')}</td>",
                f"<td>{_e(den.get('population'))} {_count(den.get('count'), '')}</td>",
                f"<td>{state}{_e(entry.get('reason'))}</td>",
            )
        )
    if not rows:
        return ""
    headers = ["Metric", "Value", "95 % CI", "Numerator (events)", "Denominator (events)", "Note"]
    return "<h3>Metrics</h3>" + _table(headers, rows)


def _thresholds_table(thresholds: list[dict[str, Any]]) -> str:
    if not thresholds:
        return ""
    rows = [
        _cells(
            f"<td><b>{_e(t.get('name'))}</b></td><td>{_e(t.get('population'))}</td>",
            f"<td><code>{_e(t.get('channel'))}</code> ({_e(t.get('compensation'))})</td>",
            f"<td class='num'>{_num(t.get('percentile'))}</td><td class='num'>{_num(t.get('value'))}</td>",
            f"<td>{_e(t.get('control_role'))} {_e(t.get('control_unit_id'))}</td>",
            f"<td class='num'>{_count(t.get('control_events'))}</td>",
        )
        for t in thresholds
    ]
    headers = ["Threshold", "Population", "Channel", "Percentile", "Value", "From control", "Control events"]
    return "<h3>Positivity thresholds derived from controls</h3>" + _table(headers, rows)


def _background_block(metrics: dict[str, Any], prefix: str) -> str:
    """Potency percentages against the unstimulated control (bars and net values), and specific lysis."""
    # the comparison with a control is each metric's own evidence
    entries = {name: {**e, **(e.get("evidence") or {})} for name, e in metrics.items() if isinstance(e, dict)}
    subtracted = {n: e for n, e in entries.items() if isinstance(e.get("background"), dict)}
    lysis = {n: e for n, e in entries.items() if e.get("kind") == "specific_lysis"}
    parts = []
    if subtracted:
        rows = []
        for name, entry in subtracted.items():
            bg = entry["background"]
            gross = _fraction(entry.get("gross"), entry.get("numerator"), entry.get("denominator"))
            background = _fraction(bg.get("value"), bg.get("numerator"), bg.get("denominator"))
            rows.append(
                _cells(
                    f"<td><b>{_e(name)}</b></td><td class='num'>{gross}</td>",
                    f"<td class='num'>{background} · {_e(bg.get('unit_id'))}</td>",
                    f"<td class='num'><b>{_num(entry.get('value'))}</b> %</td>",
                    f"<td class='num'>{_ci_text(entry.get('ci95'))}</td><td>{_e(entry.get('reason'))}</td>",
                )
            )
        parts.append("<h3>Potency against the unstimulated control</h3>")
        parts.append(_table(["Metric", "Stimulated", "Unstimulated", "Net", "95 % CI of net", "Note"], rows))
        names = [
            n
            for n, e in subtracted.items()
            if _is_number(e.get("gross")) and _is_number(e["background"].get("value"))
        ]
        if names:
            fig = control_comparison_figure(
                "Responding cells: stimulated vs unstimulated",
                names,
                [subtracted[n]["gross"] for n in names],
                [subtracted[n]["background"]["value"] for n in names],
                "% of parent",
                ("stimulated", "unstimulated"),
            )
            parts.append("<div class='plots'>" + _figure(fig, f"{prefix}-potency") + "</div>")
    if lysis:
        rows = []
        for name, entry in lysis.items():
            control, den = entry.get("control") or {}, entry.get("denominator") or {}
            targets = _count((entry.get("numerator") or {}).get("count"))
            reference = _count(den.get("count")) if den else "mL acquired"
            rows.append(
                _cells(
                    f"<td><b>{_e(name)}</b></td><td class='num'>{targets} targets / {reference}</td>",
                    f"<td class='num'>{_count(control.get('targets'))} / {_num(control.get('reference'))}"
                    f" · {_e(control.get('unit_id'))}</td>",
                    f"<td class='num'><b>{_num(entry.get('value'))}</b> %</td>",
                    f"<td class='num'>{_ci_text(entry.get('ci95'))}</td><td>{_e(entry.get('reason'))}</td>",
                )
            )
        parts.append("<h3>Specific lysis against the target-only control</h3>")
        parts.append(_table(["Metric", "Co-culture", "Target only", "Lysis", "95 % CI", "Note"], rows))
    return "".join(parts)


def _per_ml(tube: dict[str, Any]) -> float | None:
    volume, count = tube.get("volume_ml"), tube.get("count")
    return count / volume if _is_number(volume) and volume and _is_number(count) else None


def _microbial_block(metrics: dict[str, Any], prefix: str) -> str:
    call, lod = metrics.get("microbial_call"), metrics.get("microbial_lod_per_ml")
    if not isinstance(call, dict):
        return ""
    lod = lod if isinstance(lod, dict) else {}
    parts = ["<h3>Microbial detection against sterile medium</h3>"]
    text = f"<p><b>Microbial call: {_e(call.get('value') or 'INCONCLUSIVE')}</b>"
    if call.get("status") != "ok":
        text += f" — {_e(call.get('reason'))}"
    parts.append(text + "</p>")
    evidence = call.get("evidence")
    if not isinstance(evidence, dict):
        return "".join(parts)
    test, control = evidence.get("test") or {}, evidence.get("negative_control") or {}
    unit = lod.get("unit") or "events/mL"
    rows = [
        _cells(
            f"<td>{label} {_e(tube.get('unit_id'))}</td><td class='num'>{_count(tube.get('count'))}</td>",
            f"<td class='num'>{_num(tube.get('volume_ml'))}</td><td class='num'>{_num(_per_ml(tube))}</td>",
        )
        for label, tube in (("test", test), ("negative control", control))
    ]
    parts.append(_table(["Tube", "Events in gate", "Volume (mL)", unit], rows))
    parts.append(
        f"<p>Background upper bound ({_num(100 * evidence.get('confidence', 0.95))} %): "
        f"{_num(evidence.get('background_upper_bound'))} events in the test's volume; detected from "
        f"{_count(evidence.get('detection_threshold_events'))} events. "
        f"Limit of detection: {_amount(lod.get('value'), unit)}.</p>"
    )
    test_per_ml, control_per_ml = _per_ml(test), _per_ml(control) or 0.0
    if test_per_ml is not None:
        lod_value = lod.get("value")
        line = (lod_value + control_per_ml, "LOD above background") if _is_number(lod_value) else None
        fig = control_comparison_figure(
            "Events per mL in the microbial gate",
            ["microbial gate"],
            [test_per_ml],
            [control_per_ml],
            unit,
            ("test", "sterile medium"),
            line=line,
        )
        parts.append("<div class='plots'>" + _figure(fig, f"{prefix}-microbial") + "</div>")
    return "".join(parts)


def _matrix_table(detectors: list[Any], matrix: list[Any]) -> str:
    head = "".join(f"<th>{_e(d)}</th>" for d in detectors)
    body = ""
    for i, (name, row) in enumerate(zip(detectors, matrix, strict=False)):
        cells = ""
        for j, value in enumerate(row):
            # shade spillover by size; the diagonal is the fluorochrome's own detector
            shade = "" if i == j else f" style='background:rgba(46,134,171,{min(abs(value), 1.0) * 0.6:.2f})'"
            cells += f"<td class='num'{shade}>{value:.4f}</td>"
        body += f"<tr><th>{_e(name)}</th>{cells}</tr>"
    return f"<table><thead><tr><th>emits \\ into</th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _single_stains_block(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    parts = ["<h3>Spillover from the lot's single-stain controls</h3>"]
    if block.get("problem"):
        parts.append(f"<div class='error'>Not computed: {_e(block['problem'])}</div>")
    detectors, matrix = block.get("detectors"), block.get("matrix")
    if not (isinstance(detectors, list) and isinstance(matrix, list)):
        return "".join(parts)
    parts.append(_matrix_table(detectors, matrix))
    if block.get("applied"):
        note = "The matrix compensates this tube."
    else:
        note = "The matrix is not applied to this tube (it carries its own $SPILLOVER)."
    check = block.get("check_against_file")
    if isinstance(check, dict):
        note += (
            " Against the tube's own $SPILLOVER the largest difference is "
            f"{_num(check.get('max_abs_difference'))} ({_e(check.get('emitter'))} into "
            f"{_e(check.get('receiver'))})."
        )
    controls = ", ".join(
        f"{_e(c.get('unit_id'))} ({_e(c.get('stain'))}, {_count(c.get('events'))} events)"
        for c in _dicts(block.get("controls"))
    )
    parts.append(
        f"<p class='note'>{note} Controls: {controls}; cells: {_e(block.get('population'))}, "
        f"brightest {_num(100 * (block.get('positive_fraction') or 0))} % as positive.</p>"
    )
    return "".join(parts)


def _starting_material_section(starting: Any) -> str:
    if not isinstance(starting, dict):
        return ""
    status = starting.get("status")
    css = {"ACCEPTED": "PASS", "NOT_ACCEPTED": "FAIL"}.get(status, "INCONCLUSIVE")
    return (
        f"<h2>Starting material · specification {_e(starting.get('spec'))}</h2>"
        f"<p><span class='result {css}'>{_e(status)}</span> {_e(starting.get('status_reason'))}</p>"
        + _attributes_table(starting.get("attributes") or [])
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _measured(unit: dict[str, Any], unit_dir: Path | None) -> tuple[dict[str, Any], str | None]:
    """The unit's record as the report walks it (its evidence beside its metrics), or why it is unreadable."""
    if unit_dir is None:
        return {}, None
    try:
        record = read_unit_record(unit_dir / "metrics.json", unit_id=unit["unit_id"])
    except RecordError as exc:
        return {}, str(exc)
    data = to_json(record)
    assert isinstance(data, dict)
    return {**data, **record.evidence}, None


def _unit_section(unit: dict[str, Any], unit_dir: Path | None) -> str:
    parts = [f"<h2>Unit {_e(unit['unit_id'])} · {_e(unit['assay'])} · {_e(unit['role'])}</h2>"]
    if unit.get("error"):
        parts.append(f"<div class='error'><b>Not measured.</b> {_e(unit['error'])}</div>")
    acquisition = unit.get("acquisition") or {}
    if acquisition:
        parts.append(
            f"<p class='note'>Acquired {_e(acquisition.get('start'))} – {_e(acquisition.get('end'))}"
            f" on {_e(acquisition.get('cytometer'))}.</p>"
        )
    parts.append(_inputs_table(unit.get("inputs") or []))
    measured, unreadable = _measured(unit, unit_dir)
    if unreadable:
        parts.append(f"<div class='error'><b>Evidence not shown.</b> {_e(unreadable)}</div>")
        return "".join(parts)
    if measured.get("compensation"):
        parts.append(f"<p class='note'>Compensated with {_e(measured['compensation'])}.</p>")
    prefix = "unit-" + re.sub(r"[^A-Za-z0-9_-]", "_", unit["unit_id"])
    parts.append(_single_stains_block(measured.get("single_stains")))
    if unit_dir is not None and not unit.get("error"):
        flow_metrics = measured.get("metrics") or {}
        if unit.get("assay") in FLOW_ASSAYS:
            parts.append(_flow_metrics_table(flow_metrics))
            parts.append(_thresholds_table(_dicts(measured.get("thresholds"))))
            parts.append(_background_block(flow_metrics, prefix))
            parts.append(_microbial_block(flow_metrics, prefix))
        parts.append(_plots(unit_dir / "gate_plots.json", prefix))
        parts.append(_populations_table(unit_dir / "populations.tsv"))
        parts.append(_contaminant_evidence(measured.get("role", unit.get("role")), measured, prefix))
        parts.append(_classification_tables(unit_dir, measured.get("metrics") or {}))
    return "".join(parts)


_TIMELINE_COLUMNS = (
    "acquired_start",
    "acquired_end",
    "acquired_source",
    "analysis_start",
    "analysis_end",
)


def _timeline_section(timeline: Any) -> str:
    """The 24-hour window: the time left (or the overrun) in words, then the figure and its table."""
    if not isinstance(timeline, dict):
        return ""
    left = timeline.get("hours_left")
    to_result = timeline.get("hours_to_result")
    if not (_is_number(left) and _is_number(to_result)):
        return ""
    if left >= 0:
        verdict = f"<b>{_duration(left)} left</b> before the deadline"
        css = "note"
    else:
        verdict = f"<b>deadline overrun by {_duration(left)}</b>"
        css = "error"
    rows = [
        _cells(
            f"<td><code>{_e(r.get('unit_id'))}</code></td>",
            *(f"<td>{_e(r.get(key) or '—')}</td>" for key in _TIMELINE_COLUMNS),
        )
        for r in _dicts(timeline.get("units"))
    ]
    headers = ["Unit", "Acquired from", "to", "Clock", "Analysis from", "to"]
    return (
        "<h2>24-hour window</h2>"
        f"<p class='{css}'>Collected {_e(timeline.get('collected_at'))}; result available"
        f" {_e(timeline.get('analysis_end'))}, {_duration(to_result)} after collection: {verdict}"
        f" ({_e(timeline.get('deadline'))}). First analysis job started"
        f" {_e(timeline.get('analysis_start') or '—')}."
        " Cytometer clocks are read in the collection's time zone; times in UTC.</p>"
        + _figure(timeline_figure(timeline), "timeline")
        + _table(headers, rows)
    )


def _file_row(label: Any, entry: dict[str, Any]) -> str:
    return _cells(
        f"<td>{_e(label)}</td>",
        f"<td><code>{_e(entry.get('path'))}</code></td>",
        f"<td class='num'>{_count(entry.get('size_bytes'))}</td>",
        f"<td class='hash'>{_e(entry.get('sha256'))}</td>",
    )


def _audit_section(audit: dict[str, Any], units: list[dict[str, Any]]) -> str:
    if not audit:
        return ""
    packages = ", ".join(f"{_e(k)} {_e(v)}" for k, v in (audit.get("packages") or {}).items())
    workflow = audit.get("workflow")
    if isinstance(workflow, dict):
        edited = " (with uncommitted changes to tracked files)" if workflow.get("dirty") else ""
        commit = f"<code>{_e(workflow.get('commit'))}</code>{edited}"
    else:
        commit = "not run from a git checkout"
    files = [_file_row(f.get("role"), f) for f in _dicts(audit.get("files"))]
    inputs = [_file_row(u.get("unit_id"), i) for u in units for i in _dicts(u.get("inputs"))]
    return (
        "<h2>Audit</h2><table><tbody>"
        f"<tr><th>rapidrelease</th><td>{_e(audit.get('rapidrelease_version'))}"
        f" · Python {_e(audit.get('python_version'))}</td></tr>"
        f"<tr><th>Packages</th><td>{packages}</td></tr>"
        f"<tr><th>Workflow commit</th><td>{commit}</td></tr>"
        f"<tr><th>Run</th><td><code>{_e(audit.get('run_command') or '—')}</code></td></tr>"
        f"<tr><th>Evaluated by</th><td><code>{_e(' '.join(audit.get('command_line') or []))}</code></td></tr>"
        f"<tr><th>Host · user</th><td>{_e(audit.get('host'))} · {_e(audit.get('user'))}</td></tr>"
        f"<tr><th>Evaluated</th><td>{_e(audit.get('started_at'))} – {_e(audit.get('finished_at'))}</td></tr>"
        "</tbody></table>"
        "<h3>Data files</h3>"
        + _table(["Unit", "File", "Bytes", "SHA-256"], inputs)
        + "<h3>Configuration, panels and results</h3>"
        + _table(["Role", "File", "Bytes", "SHA-256"], files)
    )


def render_lot_report(release: dict[str, Any], unit_dirs: dict[str, Path]) -> str:
    """The report HTML for a release.json record; ``unit_dirs`` maps unit ids to their result folders."""
    lot = release["lot"]
    status = release["status"]
    counts = release.get("counts") or {}
    head = (
        f"<div class='banner {_e(status)}'><div class='status'>{_e(_STATUS_TEXT.get(status, status))}</div>"
        f"<div class='reason'>{_e(release.get('status_reason'))}</div>"
        f"<div class='lot'>Lot <b>{_e(lot['lot_id'])}</b> · {_e(lot.get('product'))}"
        f" · site {_e(lot.get('site'))}"
        f" · specification {_e(lot.get('spec'))} · collected {_e(lot.get('collected_at'))}"
        f" · decision due {_e(lot.get('deadline'))}</div></div>"
    )
    summary = (
        f"<p>{counts.get('PASS', 0)} attributes pass, {counts.get('FAIL', 0)} fail, "
        f"{counts.get('INCONCLUSIVE', 0)} are inconclusive. "
        "This report is evidence for a human release decision; it does not release the lot.</p>"
    )
    body = [
        head,
        "<main>",
        f"<h1>Release-candidate report · {_e(lot['lot_id'])}</h1>",
        summary,
        "<h2>Quality attributes</h2>",
        _attributes_table(release.get("attributes") or []),
        _starting_material_section(release.get("starting_material")),
        _timeline_section((release.get("audit") or {}).get("timeline")),
    ]
    for unit in release.get("units") or []:
        body.append(_unit_section(unit, unit_dirs.get(unit["unit_id"])))
    body.append(_audit_section(release.get("audit") or {}, _dicts(release.get("units"))))
    body.append("</main>")
    return html_document(f"{lot['lot_id']} · {_STATUS_TEXT.get(status, status)}", body)


def write_lot_report(release_path: Path, unit_dirs: dict[str, Path], out_path: Path) -> None:
    """``rapidrelease report``: render ``release_path`` with the evidence in ``unit_dirs`` (unit id →
    results folder) to ``out_path``.

    release.json is read through :mod:`rapidrelease.records` (sealed, consistent, of the published
    schema). Just before the report is written, every data file and unit record the decision rests
    on is hashed again; if one changed, the report shows no decision.
    """
    release = read_release(Path(release_path))
    data = to_json(release)
    assert isinstance(data, dict)
    records = [
        FileRef(str(f.get("role")), str(f.get("path")), f.get("sha256"), f.get("size_bytes"))
        for f in _dicts(release.audit.get("files"))
        if f.get("role") == "metrics"
    ]
    changed = changed_inputs([*(i for u in release.units for i in u.inputs), *records])
    if changed:
        print(f"rapidrelease report: {' '.join(changed)}", file=sys.stderr)
        data = {
            **data,
            "status": "INCONCLUSIVE",
            "status_reason": "An input changed after release.json was written, so this report shows no "
            "decision: " + " ".join(changed),
        }
    write_text(Path(out_path), render_lot_report(data, unit_dirs))
