"""The release-candidate report of one lot: one self-contained HTML file.

Decision first: the status banner, then every attribute with its value, criterion, result and the
reason — failures and inconclusives before passes. Then the evidence of each unit: for flow, the
gating plots with the gates drawn and the event counts on them and the population hierarchy with
counts; for sequencing, the fragments by category and the taxa found with their distinct
minimizers and genome breadth; for every unit, the inputs with their SHA-256. Last, the audit
block. Plotly's JavaScript is embedded once, so the file makes no network request and opens from
a USB stick; it prints on paper too.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from rapidrelease.errors import RapidReleaseError
from rapidrelease.outputs import write_text
from rapidrelease.report.figures import gate_figure

__all__ = ["render_lot_report", "write_lot_report"]

_STATUS_TEXT = {
    "RELEASE_CANDIDATE": "Release candidate",
    "NOT_RELEASABLE": "Not releasable",
    "INCONCLUSIVE": "Inconclusive",
}
_RESULT_ORDER = {"FAIL": 0, "INCONCLUSIVE": 1, "PASS": 2}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d232a}
main{max-width:1320px;margin:0 auto;padding:18px 28px 40px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d6dbe0;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.banner{padding:16px 28px;color:#fff} .banner .status{font-size:26px;font-weight:700;letter-spacing:.02em}
.banner .reason{font-size:15px;margin-top:4px} .banner .lot{font-size:14px;opacity:.92;margin-top:6px}
.RELEASE_CANDIDATE{background:#2f7d46} .NOT_RELEASABLE{background:#b3261e} .INCONCLUSIVE{background:#a15c00}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e3e7eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f7;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
.result{font-weight:700;padding:1px 7px;border-radius:3px;color:#fff;font-size:12px}
.result.PASS{background:#2f7d46} .result.FAIL{background:#b3261e} .result.INCONCLUSIVE{background:#a15c00}
.error{background:#fdecea;border-left:4px solid #b3261e;padding:8px 12px;margin:8px 0}
.note{color:#56606b;font-size:12.5px}
code,.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:6px}
.plot{border:1px solid #e3e7eb;break-inside:avoid}
@media print{.banner{-webkit-print-color-adjust:exact;print-color-adjust:exact}
h2{break-after:avoid} .plot{break-inside:avoid}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


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


def _plots(path: Path, prefix: str) -> str:
    if not path.is_file():
        return ""
    plots = _read_json(path).get("plots", [])
    if not plots:
        return ""
    divs = []
    for i, plot in enumerate(plots):
        fig = gate_figure(plot)
        div = pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            div_id=f"{prefix}-gate-{i}",
            config={"displaylogo": False, "responsive": False},
        )
        divs.append(f"<div class='plot'>{div}</div>")
    return "<h3>Gates</h3><div class='plots'>" + "".join(divs) + "</div>"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


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
    measured = _read_json(unit_dir / "metrics.json") if unit_dir is not None else {}
    if measured.get("compensation"):
        parts.append(f"<p class='note'>Compensated with {_e(measured['compensation'])}.</p>")
    if unit_dir is not None and not unit.get("error"):
        prefix = "unit-" + re.sub(r"[^A-Za-z0-9_-]", "_", unit["unit_id"])
        parts.append(_plots(unit_dir / "gate_plots.json", prefix))
        parts.append(_populations_table(unit_dir / "populations.tsv"))
        parts.append(_classification_tables(unit_dir, measured.get("metrics") or {}))
    return "".join(parts)


def _audit_section(audit: dict[str, Any]) -> str:
    if not audit:
        return ""
    packages = ", ".join(f"{_e(k)} {_e(v)}" for k, v in (audit.get("packages") or {}).items())
    files = "".join(
        f"<tr><td>{_e(f.get('role'))}</td><td><code>{_e(f.get('path'))}</code></td>"
        f"<td class='hash'>{_e(f.get('sha256'))}</td></tr>"
        for f in audit.get("files") or []
    )
    return (
        "<h2>Audit</h2><table><tbody>"
        f"<tr><th>rapidrelease</th><td>{_e(audit.get('rapidrelease_version'))}"
        f" · Python {_e(audit.get('python_version'))}</td></tr>"
        f"<tr><th>Packages</th><td>{packages}</td></tr>"
        f"<tr><th>Command</th><td><code>{_e(' '.join(audit.get('command_line') or []))}</code></td></tr>"
        f"<tr><th>Host · user</th><td>{_e(audit.get('host'))} · {_e(audit.get('user'))}</td></tr>"
        f"<tr><th>Evaluated</th><td>{_e(audit.get('started_at'))} – {_e(audit.get('finished_at'))}</td></tr>"
        "</tbody></table>"
        "<h3>Configuration files</h3>"
        "<table><thead><tr><th>Role</th><th>File</th><th>SHA-256</th></tr></thead>"
        f"<tbody>{files}</tbody></table>"
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
    ]
    for unit in release.get("units") or []:
        body.append(_unit_section(unit, unit_dirs.get(unit["unit_id"])))
    body.append(_audit_section(release.get("audit") or {}))
    body.append("</main>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(lot['lot_id'])} · {_e(_STATUS_TEXT.get(status, status))}</title>"
        f"<style>{_CSS}</style><script>{get_plotlyjs()}</script></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )


def write_lot_report(release_path: Path, unit_dirs: list[Path], out_path: Path) -> None:
    """``rapidrelease report``: render ``release_path`` with the evidence in ``unit_dirs`` to ``out_path``."""
    try:
        release = json.loads(Path(release_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RapidReleaseError(f"{release_path}: cannot be read as release.json ({exc}).") from exc
    by_unit = {Path(d).name: Path(d) for d in unit_dirs}
    write_text(Path(out_path), render_lot_report(release, by_unit))
