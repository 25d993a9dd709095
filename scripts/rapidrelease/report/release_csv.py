"""The decisions as CSV for a LIMS: ``results/<lot>/release.csv`` per lot, ``results/releases.csv`` for all.

One row per judged attribute: the lot's product attributes in specification order, then its starting
material's. Every file has the same columns (:data:`COLUMNS`, documented in README.md), so a LIMS
imports a lot's file and the file of every lot alike. The rows come from the typed, sealed record
(:class:`rapidrelease.records.Release`), never from release.json's text.

The files follow RFC 4180: comma-separated, CRLF line ends, a field holding a comma, a quote or a
line break quoted with its quotes doubled, UTF-8 without a byte-order mark. A missing value is an
empty field. Numbers are written as Python writes them (the shortest text that reads back as the same
number), so a LIMS gets the value judged, not a rounded copy of it. Each file is written atomically.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from rapidrelease.outputs import atomic_path
from rapidrelease.records import AttributeResult, Release

__all__ = ["COLUMNS", "csv_rows", "write_csv", "write_release_csv", "write_releases_csv"]

COLUMNS: tuple[str, ...] = (
    "lot",
    "product",
    "site",
    "lot_status",
    "spec",
    "part",
    "attribute",
    "assay",
    "metric",
    "unit_id",
    "value",
    "unit",
    "criterion",
    "result",
    "reason",
    "ci_low",
    "ci_high",
    "numerator_population",
    "numerator_count",
    "denominator_population",
    "denominator_count",
)
"""The columns of release.csv and releases.csv, in order."""


def _field(value: object) -> str:
    if value is None:
        return ""
    return str(value)  # a float's str is its shortest round-trip text (repr)


def _row(release: Release, spec: str, part: str, attribute: AttributeResult) -> list[str]:
    evidence = attribute.evidence
    # the interval of a value judged; an inconclusive attribute has neither (as the report shows it)
    ci = evidence.ci95 if attribute.value is not None else None
    numerator, denominator = evidence.numerator, evidence.denominator
    lot = release.lot
    values: list[object] = [
        lot.lot_id,
        lot.product,
        lot.site,
        release.status,
        spec,
        part,
        attribute.name,
        attribute.assay,
        attribute.metric,
        attribute.unit_id,
        attribute.value,
        attribute.unit or None,
        attribute.criterion,
        attribute.result,
        attribute.reason,
        None if ci is None else ci[0],
        None if ci is None else ci[1],
        None if numerator is None else numerator.population,
        None if numerator is None else numerator.count,
        None if denominator is None else denominator.population,
        None if denominator is None else denominator.count,
    ]
    return [_field(v) for v in values]


def csv_rows(release: Release) -> list[list[str]]:
    """The lot's rows, one per attribute (``part`` "product"), then one per starting-material
    attribute (``part`` "starting_material"), each as :data:`COLUMNS` lists its fields."""
    rows = [_row(release, release.lot.spec, "product", a) for a in release.attributes]
    starting = release.starting_material
    if starting is not None:
        rows += [_row(release, starting.spec, "starting_material", a) for a in starting.attributes]
    return rows


def write_csv(path: Path, rows: Iterable[Sequence[str]]) -> None:
    """Write :data:`COLUMNS` and ``rows`` to ``path`` as RFC 4180 CSV, atomically."""
    with atomic_path(Path(path)) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def write_release_csv(release: Release, path: Path) -> None:
    """``results/<lot>/release.csv``: the lot's attributes."""
    write_csv(path, csv_rows(release))


def write_releases_csv(releases: Iterable[Release], path: Path) -> None:
    """``results/releases.csv``: every lot's attributes, lot after lot in the order given."""
    write_csv(path, [row for release in releases for row in csv_rows(release)])
