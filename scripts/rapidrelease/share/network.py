"""The site's own view of the network: its lots beside a combined benchmark, for the lots index.

When config.yaml ``trends.benchmark`` names a folder written by ``rapidrelease share combine``, the
lots index compares, per platform and attribute the network pooled, the site's own lots (those of
the index, grouped by their platform columns as an export groups them) with the network: the
site's lots, mean and pass rate beside the network's programs, lots, mean ± SD and pass rate with
its Wilson interval, and the site's mean as a z against the network's. Nothing here leaves the site.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from rapidrelease.config.vocabulary import FAIL, PASS
from rapidrelease.records import Release
from rapidrelease.report.sections.timeline import timeline_of
from rapidrelease.share.combine import BENCHMARK_TABLE, POOLED_SCHEMA
from rapidrelease.share.export import TIME_TO_RESULT, measured_value, platform_label, platform_of

__all__ = ["NetworkRow", "NetworkComparison", "network_comparison"]


@dataclass(frozen=True)
class NetworkRow:
    """One platform's attribute: the site's lots beside the network's pooled figures."""

    platform: str
    attribute: str
    unit: str
    site_lots: int
    site_mean: float | None
    site_pass: int
    site_judged: int
    programs: int
    network_lots: int
    network_mean: float | None
    network_sd: float | None
    network_pass_rate: float | None
    network_pass_interval: tuple[float, float] | None
    z: float | None


@dataclass(frozen=True)
class NetworkComparison:
    """The panel: its rows, the folder read, or the sentence saying why it could not be read."""

    folder: str
    rows: tuple[NetworkRow, ...] = ()
    problem: str | None = None


def _site_groups(releases: Sequence[Release]) -> dict[tuple[str, str], list[tuple[float | None, str | None]]]:
    """(platform label, attribute) → the site's (value as measured, result) per lot."""
    groups: dict[tuple[str, str], list[tuple[float | None, str | None]]] = defaultdict(list)
    for release in releases:
        label = platform_label(platform_of(release.lot.extra))
        for attribute in release.attributes:
            groups[(label, attribute.name)].append((measured_value(attribute), attribute.result))
        timeline = timeline_of(release)
        if timeline is not None:
            groups[(label, TIME_TO_RESULT)].append((timeline.hours_to_result, None))
    return groups


def network_comparison(releases: Sequence[Release], folder: Path) -> NetworkComparison:
    """The site's ``releases`` against the benchmark in ``folder`` (``rapidrelease share combine``)."""
    path = Path(folder) / BENCHMARK_TABLE
    # a missing folder or a file that is not the benchmark is shown on the index, never fatal
    try:
        pooled = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        return NetworkComparison(
            str(folder), problem=f"{path}: the network benchmark cannot be read ({type(exc).__name__})."
        )
    wrong = sorted(name for name, kind in POOLED_SCHEMA.items() if pooled.schema.get(name) != kind)
    if wrong:
        return NetworkComparison(
            str(folder),
            problem=f"{path}: is not a network benchmark (its columns {', '.join(wrong)} are missing "
            "or of another type); write it with rapidrelease share combine.",
        )
    site = _site_groups(releases)
    rows = []
    for record in pooled.sort("platform", "attribute").iter_rows(named=True):
        entries = site.get((record["platform"], record["attribute"]))
        if not entries:
            continue
        values = [v for v, _ in entries if v is not None]
        mean = sum(values) / len(values) if values else None
        passed = sum(1 for _, r in entries if r == PASS)
        judged = passed + sum(1 for _, r in entries if r == FAIL)
        sd = record["sd"]
        interval = None
        if record["pass_low95"] is not None and record["pass_high95"] is not None:
            interval = (record["pass_low95"], record["pass_high95"])
        rows.append(
            NetworkRow(
                platform=record["platform"],
                attribute=record["attribute"],
                unit=record["unit"],
                site_lots=len(entries),
                site_mean=mean,
                site_pass=passed,
                site_judged=judged,
                programs=record["programs"],
                network_lots=record["n_lots"],
                network_mean=record["mean"],
                network_sd=sd,
                network_pass_rate=record["pass_rate"],
                network_pass_interval=interval,
                z=(mean - record["mean"]) / sd
                if mean is not None and record["mean"] is not None and sd
                else None,
            )
        )
    return NetworkComparison(str(folder), tuple(rows))
