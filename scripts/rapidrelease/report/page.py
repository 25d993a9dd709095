"""Building blocks shared by the lot report and the lots index: one style, escaping, tables, figures.

Every page is one self-contained HTML file: the style sheet inline and plotly.js embedded once in
the head, so that it makes no network request and opens from a USB stick. Every text that comes
from a sheet, a file or a keyword passes through :func:`escape`; figures are serialised by plotly,
whose JSON escapes ``<``, ``>`` and ``/`` so that no text can close the script it sits in.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

__all__ = ["CSS", "STATUS_TEXT", "duration", "escape", "figure_div", "html_document", "table"]

STATUS_TEXT = {
    "RELEASE_CANDIDATE": "Release candidate",
    "NOT_RELEASABLE": "Not releasable",
    "INCONCLUSIVE": "Inconclusive",
}

CSS = """
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
.result.RELEASE_CANDIDATE{background:#2f7d46} .result.NOT_RELEASABLE{background:#b3261e}
.error{background:#fdecea;border-left:4px solid #b3261e;padding:8px 12px;margin:8px 0}
.note{color:#56606b;font-size:12.5px}
code,.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:6px}
.plot{border:1px solid #e3e7eb;break-inside:avoid}
@media print{.banner{-webkit-print-color-adjust:exact;print-color-adjust:exact}
h2{break-after:avoid} .plot{break-inside:avoid}}
"""


def escape(value: Any) -> str:
    """``value`` as HTML text (None as empty): markup in a name is shown, never interpreted."""
    return html.escape("" if value is None else str(value))


def figure_div(fig: Any, div_id: str) -> str:
    """A plotly figure as a ``<div class='plot'>`` that uses the page's one copy of plotly.js."""
    div = pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": False},
    )
    return f"<div class='plot'>{div}</div>"


def table(headers: Sequence[str], rows: Sequence[str]) -> str:
    """A table of ready-made ``<tr>`` rows under ``headers`` (headers are markup, not escaped)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def duration(hours: float) -> str:
    """The magnitude of ``hours`` as ``17 h 05 min`` or ``6 d 12 h 00 min``."""
    minutes = round(abs(hours) * 60)
    days, minutes = divmod(minutes, 24 * 60)
    text = f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{days} d {text}" if days else text


def html_document(title: str, body: Sequence[str]) -> str:
    """The whole page: ``title`` (text, escaped here) and the ``body`` markup, with style and plotly.js."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        f"<style>{CSS}</style><script>{get_plotlyjs()}</script></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )
