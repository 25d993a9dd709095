"""The lots index, ``results/index.html``: every lot with its status and time to result, and trends.

The table lists each lot of the lot sheet in order of collection, with its status, the attribute
counts, the hours from collection to result and whether that was within the window, and links to
its report.html and release.json. Below it, one individuals control chart per numeric attribute
across lots, coloured by manufacturing site, and a table of each pair of sites' equivalence test
(:mod:`rapidrelease.report.trends`). Self-contained like the lot reports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rapidrelease.outputs import write_text
from rapidrelease.records import read_release, to_json
from rapidrelease.report.figures import trend_figure
from rapidrelease.report.page import STATUS_TEXT, duration, escape, figure_div, html_document, table
from rapidrelease.report.trends import AttributeTrend, Equivalence, attribute_trends

__all__ = ["render_index", "write_index"]


def _link(target: Path, base: Path, text: str) -> str:
    href = quote(Path(os.path.relpath(target, base)).as_posix())
    return f"<a href='{escape(href)}'>{escape(text)}</a>"


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:.{digits}g}"


def _lot_row(release: Mapping[str, Any], release_path: Path, base: Path) -> str:
    lot = release["lot"]
    status = release["status"]
    counts = release.get("counts") or {}
    timeline = (release.get("audit") or {}).get("timeline") or {}
    to_result, left = timeline.get("hours_to_result"), timeline.get("hours_left")
    if isinstance(to_result, int | float) and isinstance(left, int | float):
        window = duration(to_result) + (
            "" if left >= 0 else f" <span class='result FAIL'>overrun {duration(left)}</span>"
        )
    else:
        window = "—"
    links = " · ".join(
        (
            _link(release_path.parent / "report.html", base, "report"),
            _link(release_path, base, "release.json"),
        )
    )
    return (
        "<tr>"
        f"<td><b>{escape(lot['lot_id'])}</b></td><td>{escape(lot.get('product'))}</td>"
        f"<td>{escape(lot.get('site'))}</td><td>{escape(lot.get('collected_at'))}</td>"
        f"<td><span class='result {escape(status)}'>{escape(STATUS_TEXT.get(status, status))}</span></td>"
        f"<td class='num'>{counts.get('PASS', 0)} / {counts.get('FAIL', 0)}"
        f" / {counts.get('INCONCLUSIVE', 0)}</td>"
        f"<td>{window}</td><td>{links}</td><td>{escape(release.get('status_reason'))}</td>"
        "</tr>"
    )


def _comparison_row(trend: AttributeTrend, c: Equivalence) -> str:
    if c.equivalent is None:
        verdict = f"<span class='result INCONCLUSIVE'>not tested</span> {escape(c.reason)}"
    elif c.equivalent:
        verdict = f"<span class='result PASS'>equivalent</span> {escape(c.reason)}"
    else:
        verdict = f"<span class='result FAIL'>not shown equivalent</span> {escape(c.reason)}"
    interval = "—" if c.interval is None else f"{_number(c.interval[0])} to {_number(c.interval[1])}"
    return (
        "<tr>"
        f"<td><b>{escape(trend.name)}</b> {escape(trend.unit)}</td>"
        f"<td>{escape(c.site_a)} (n = {c.n_a}, mean {_number(c.mean_a)})</td>"
        f"<td>{escape(c.site_b)} (n = {c.n_b}, mean {_number(c.mean_b)})</td>"
        f"<td class='num'>{_number(c.difference)}</td><td>{interval}</td>"
        f"<td class='num'>{'—' if c.margin is None else '±' + _number(c.margin)}</td>"
        f"<td class='num'>{_number(c.p_value, 3)}</td><td>{verdict}</td>"
        "</tr>"
    )


def _spec_limits(releases: Sequence[Mapping[str, Any]], name: str) -> tuple[float | None, float | None]:
    """The acceptance limits of an attribute as the latest lot's specification states them."""
    for release in reversed(releases):
        for attribute in release.get("attributes") or []:
            if attribute["name"] != name:
                continue
            comparison, limit = attribute.get("comparison"), attribute.get("limit")
            number = limit if isinstance(limit, int | float) and not isinstance(limit, bool) else None
            if comparison == "between":
                return attribute.get("lower"), attribute.get("upper")
            if comparison in (">=", ">"):
                return number, None
            if comparison in ("<=", "<"):
                return None, number
            return None, None
    return None, None


def render_index(
    releases: Sequence[tuple[Path, Mapping[str, Any]]],
    out_dir: Path,
    trend_settings: Mapping[str, Any] | None = None,
) -> str:
    """The index HTML for ``(release.json path, record)`` pairs; links are relative to ``out_dir``."""
    settings = dict(trend_settings or {})
    ordered = sorted(
        releases,
        key=lambda pair: (
            datetime.fromisoformat(str(pair[1]["lot"]["collected_at"])),
            pair[1]["lot"]["lot_id"],
        ),
    )
    records = [record for _, record in ordered]
    statuses = [r["status"] for r in records]
    headers = [
        "Lot",
        "Product",
        "Site",
        "Collected",
        "Status",
        "Pass / fail / inconclusive",
        "Time to result",
        "Evidence",
        "Reason",
    ]
    rows = [_lot_row(record, path, out_dir) for path, record in ordered]
    trends = attribute_trends(
        records,
        baseline_lots=settings.get("baseline_lots"),
        margins=settings.get("margins"),
        alpha=float(settings.get("alpha", 0.05)),
    )
    charts = [
        figure_div(
            trend_figure(trend, _spec_limits(records, trend.name)),
            "trend-" + re.sub(r"[^A-Za-z0-9_-]", "_", trend.name),
        )
        for trend in trends
    ]
    limits_notes = "".join(
        f"<li><b>{escape(t.name)}</b>: {escape(t.limits_reason)}"
        + (f", {sum(p.beyond_limits for p in t.points)} beyond the limits" if t.limits else "")
        + "</li>"
        for t in trends
    )
    comparisons = [_comparison_row(t, c) for t in trends for c in t.comparisons]
    baseline = (
        "the lots named in config.yaml trends.baseline_lots"
        if settings.get("baseline_lots") is not None
        else "the release-candidate lots"
    )
    body = [
        "<main>",
        "<h1>Lots</h1>",
        f"<p>{len(records)} lots: {statuses.count('RELEASE_CANDIDATE')} release candidates, "
        f"{statuses.count('NOT_RELEASABLE')} not releasable, {statuses.count('INCONCLUSIVE')} inconclusive. "
        "Each report is evidence for a human release decision.</p>",
        table(headers, rows),
        "<h2>Attributes across lots</h2>",
        f"<p class='note'>Individuals control charts: mean ± 3σ of {baseline}, σ from the average moving "
        "range (MR̄ / 1.128); filled markers are baseline lots, a red ring a lot beyond the limits; "
        "dotted lines are the specification's limits.</p>",
        f"<ul class='note'>{limits_notes}</ul>",
        "<div class='plots'>" + "".join(charts) + "</div>",
        "<h2>Site-to-site comparability</h2>",
        "<p class='note'>Two one-sided Welch t-tests (TOST) per pair of sites: the sites' means are "
        "shown equivalent when the 90 % interval of their difference lies within the attribute's "
        "margin (config.yaml trends.margins).</p>",
        table(
            [
                "Attribute",
                "Site A",
                "Site B",
                "Difference A − B",
                "90 % interval",
                "Margin",
                "p (TOST)",
                "Verdict",
            ],
            comparisons,
        )
        if comparisons
        else "<p>Only one site has lots with values: nothing to compare.</p>",
        "</main>",
    ]
    return html_document("Lots · rapidrelease", body)


def write_index(
    release_paths: Sequence[Path], out_path: Path, trend_settings: Mapping[str, Any] | None
) -> None:
    """``rapidrelease index``: the index of the lots whose release.json files are given."""
    releases = []
    for path in release_paths:
        record = to_json(read_release(Path(path)))
        assert isinstance(record, dict)
        releases.append((Path(path), record))
    out_path = Path(out_path)
    write_text(out_path, render_index(releases, out_path.parent, trend_settings))
