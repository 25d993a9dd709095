"""The lots index, ``results/index.html``: every lot with its status and time to result, and trends.

The table lists each lot of the lot sheet in order of collection, with its status, the attribute
counts, the hours from collection to result and whether that was within the window, and links to
its report.html and release.json. Below it, one individuals control chart per numeric attribute
across lots, coloured by manufacturing site, and a table of each pair of sites' equivalence test
(:mod:`rapidrelease.report.trends`). Self-contained like the lot reports (``templates/index.html.j2``).

Under the table, every lot's signatures, VALID or VOID as they stand when the index is built
(:mod:`rapidrelease.release.signatures`).

With config.yaml ``trends.benchmark`` (a folder ``rapidrelease share combine`` wrote), a last panel
compares the site's lots with the network's pooled figures (:mod:`rapidrelease.share.network`).

Earlier lots' decisions from config.yaml ``trends.archive`` (:mod:`rapidrelease.report.archive`)
are listed too, marked as archived and linked to their release.json only (their reports are not
in this run), and count in the control charts and site comparisons like the run's own lots.
releases.csv holds the run's own lots only: the archived ones were exported when they were decided.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rapidrelease.outputs import write_text
from rapidrelease.records import Release, read_release
from rapidrelease.release.signatures import SIGNATURES_FILE, read_signatures
from rapidrelease.report.archive import ArchivedLots, read_archive
from rapidrelease.report.figures import trend_figure
from rapidrelease.report.page import dom_id, figure_div, is_number, render_page
from rapidrelease.report.release_csv import write_releases_csv
from rapidrelease.report.sections.timeline import Timeline, timeline_of
from rapidrelease.report.trends import MIN_BASELINE_LOTS, AttributeTrend, Equivalence, attribute_trends
from rapidrelease.share.network import network_comparison

__all__ = ["ComparisonRow", "LotRow", "lots_summary", "render_index", "write_index"]


@dataclass(frozen=True)
class LotRow:
    """A lot as the index lists it: its decision, its window, and links relative to the index.

    An ``archived`` lot has no report in this run: ``report_href`` is None.
    """

    release: Release
    timeline: Timeline | None
    report_href: str | None
    release_href: str
    archived: bool = False


@dataclass(frozen=True)
class ComparisonRow:
    """One pair of sites' equivalence test of one attribute, its numbers written out."""

    attribute: str
    unit: str
    site_a: str
    site_b: str
    difference: str
    interval: str
    margin: str
    p_value: str
    verdict: str
    css: str
    reason: str


def _href(target: Path, base: Path) -> str:
    return quote(Path(os.path.relpath(target, base)).as_posix())


def _number(value: float | None, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if is_number(value) else "—"


def _comparison_row(trend: AttributeTrend, c: Equivalence) -> ComparisonRow:
    if c.equivalent is None:
        verdict, css = "not tested", "INCONCLUSIVE"
    elif c.equivalent:
        verdict, css = "equivalent", "PASS"
    else:
        verdict, css = "not shown equivalent", "FAIL"
    return ComparisonRow(
        attribute=trend.name,
        unit=trend.unit,
        site_a=f"{c.site_a} (n = {c.n_a}, mean {_number(c.mean_a)})",
        site_b=f"{c.site_b} (n = {c.n_b}, mean {_number(c.mean_b)})",
        difference=_number(c.difference),
        interval="—" if c.interval is None else f"{_number(c.interval[0])} to {_number(c.interval[1])}",
        margin="—" if c.margin is None else "±" + _number(c.margin),
        p_value=_number(c.p_value, 3),
        verdict=verdict,
        css=css,
        reason=c.reason,
    )


def _spec_limits(releases: Sequence[Release], name: str) -> tuple[float | None, float | None]:
    """The acceptance limits of an attribute as the latest lot's specification states them."""
    for release in reversed(releases):
        for attribute in release.attributes:
            if attribute.name != name:
                continue
            limit = attribute.limit
            number = limit if is_number(limit) else None
            if attribute.comparison == "between":
                return attribute.lower, attribute.upper
            if attribute.comparison in (">=", ">"):
                return number, None
            if attribute.comparison in ("<=", "<"):
                return None, number
            return None, None
    return None, None


def _counted(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def lots_summary(statuses: Sequence[str]) -> str:
    """The lots' statuses counted, e.g. "2 lots: 1 release candidate, 1 not releasable, 0 inconclusive"."""
    return (
        f"{_counted(len(statuses), 'lot')}: "
        f"{_counted(statuses.count('RELEASE_CANDIDATE'), 'release candidate')}, "
        f"{statuses.count('NOT_RELEASABLE')} not releasable, {statuses.count('INCONCLUSIVE')} inconclusive"
    )


def _collection_order(pair: tuple[Path, Release]) -> tuple[datetime, str]:
    """Lots in order of collection, then of lot id."""
    return datetime.fromisoformat(pair[1].lot.collected_at), pair[1].lot.lot_id


def render_index(
    releases: Sequence[tuple[Path, Release]],
    out_dir: Path,
    trend_settings: Mapping[str, Any] | None = None,
    archive: ArchivedLots | None = None,
) -> str:
    """The index HTML for ``(release.json path, record)`` pairs; links are relative to ``out_dir``.

    ``archive`` holds earlier lots' decisions (:func:`rapidrelease.report.archive.read_archive`):
    listed as archived, in the trends beside ``releases``, with the files it refused named.
    """
    settings = dict(trend_settings or {})
    archive = archive or ArchivedLots()
    archived_paths = {path for path, _ in archive.releases}
    ordered = sorted([*releases, *archive.releases], key=_collection_order)
    records = [record for _, record in ordered]
    current = [record.status for path, record in ordered if path not in archived_paths]
    trends = attribute_trends(
        records,
        baseline_lots=settings.get("baseline_lots"),
        margins=settings.get("margins"),
        alpha=float(settings.get("alpha", 0.05)),
        excluded_lots=settings.get("excluded_lots"),
    )
    return render_page(
        "index.html.j2",
        lots=[
            LotRow(
                release,
                timeline_of(release),
                None if path in archived_paths else _href(path.parent / "report.html", out_dir),
                _href(path, out_dir),
                archived=path in archived_paths,
            )
            for path, release in ordered
        ],
        header=_counted(len(current), "lot")
        + (f" and {_counted(len(archive.releases), 'archived lot')}" if archive.releases else ""),
        summary=lots_summary(current),
        archived_summary=lots_summary([r.status for _, r in archive.releases]) if archive.releases else None,
        archive_refused=archive.refused,
        archive_superseded=archive.superseded,
        # each lot's signatures as they stand while the index is built (release.signatures)
        signoffs=[
            (release.lot.lot_id, status)
            for path, release in ordered
            for status in read_signatures(path.parent / SIGNATURES_FILE, path)
        ],
        named_baseline=settings.get("baseline_lots") is not None,
        excluded_lots=dict(settings.get("excluded_lots") or {}),
        min_baseline=MIN_BASELINE_LOTS,
        trends=trends,
        charts=[
            figure_div(trend_figure(trend, _spec_limits(records, trend.name)), "trend-" + dom_id(trend.name))
            for trend in trends
        ],
        comparisons=[_comparison_row(t, c) for t in trends for c in t.comparisons],
        # config.yaml trends.benchmark: a network benchmark (rapidrelease share combine) to compare with
        network=network_comparison(records, Path(settings["benchmark"]))
        if settings.get("benchmark")
        else None,
    )


def write_index(
    release_paths: Sequence[Path],
    out_path: Path,
    trend_settings: Mapping[str, Any] | None,
    csv_path: Path | None = None,
) -> ArchivedLots:
    """``rapidrelease index``: the index of the lots whose release.json files are given, with the
    earlier lots of ``trend_settings["archive"]`` when set, and, when ``csv_path`` is given, the
    given lots' attributes as one CSV (:mod:`rapidrelease.report.release_csv`) in the index's order
    of lots. Returns what was read from the archive, for the caller to log what it refused."""
    releases = [(Path(path), read_release(Path(path))) for path in release_paths]
    folder = (trend_settings or {}).get("archive")
    archive = read_archive(Path(folder), releases) if folder else ArchivedLots()
    out_path = Path(out_path)
    write_text(out_path, render_index(releases, out_path.parent, trend_settings, archive))
    if csv_path is not None:
        write_releases_csv([release for _, release in sorted(releases, key=_collection_order)], csv_path)
    return archive
