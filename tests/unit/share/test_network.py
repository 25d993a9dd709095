"""The lots index's "compared with the network" panel, when config.yaml trends.benchmark is set."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from rapidrelease.report.index import render_index
from rapidrelease.share.combine import combine_packages
from rapidrelease.share.export import ExportSettings, build_tables
from rapidrelease.share.network import network_comparison
from rapidrelease.share.package import write_package

from support.programs import ARCHIVE


@pytest.fixture
def benchmark(tmp_path: Path, archive_lots) -> Path:
    lots, _ = archive_lots
    packages = []
    for name, part in (("aaaaaaaaaaaa", lots[:12]), ("bbbbbbbbbbbb", lots[12:])):
        tables, stated = build_tables(part, ExportSettings(min_lots=3))
        packages.append(tmp_path / name)
        write_package(tmp_path / name, tables, name, stated, "2026-W49")
    combine_packages(packages, tmp_path / "network")
    return tmp_path / "network"


def test_the_site_is_shown_against_the_network(benchmark: Path, archive_lots):
    _, releases = archive_lots
    comparison = network_comparison(releases, benchmark)
    assert comparison.problem is None
    viability = next(r for r in comparison.rows if r.attribute == "viability")
    # the network here is this site's own two halves: the same 24 lots, so the same mean and z = 0
    assert (viability.site_lots, viability.programs, viability.network_lots) == (24, 2, 24)
    assert viability.site_mean == pytest.approx(viability.network_mean, rel=1e-12)
    assert viability.z == pytest.approx(0.0, abs=1e-9)
    assert (viability.site_pass, viability.site_judged) == (23, 24)
    page = render_index(
        [(ARCHIVE / r.lot.lot_id / "release.json", r) for r in releases],
        benchmark.parent,
        {"benchmark": str(benchmark)},
    )
    assert "<h2>Compared with the network</h2>" in page
    assert "95.8 % (79.8–99.3 %)" in page


def test_an_unreadable_benchmark_is_named_not_fatal(tmp_path: Path, archive_lots):
    _, releases = archive_lots
    comparison = network_comparison(releases, tmp_path / "nowhere")
    assert comparison.rows == ()
    assert comparison.problem is not None and "nowhere/benchmark.parquet" in comparison.problem
    page = render_index([], tmp_path, {"benchmark": str(tmp_path / "nowhere")})
    assert "the network benchmark cannot be read" in page


def test_a_file_that_is_not_the_benchmark_is_named_not_fatal(tmp_path: Path, archive_lots):
    _, releases = archive_lots
    # bytes that are no Parquet, and a Parquet table of other columns (a package's summaries, say)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "benchmark.parquet").write_bytes(b"PAR1 not a table")
    other = tmp_path / "other"
    other.mkdir()
    pl.DataFrame({"platform": ["T cell"], "attribute": ["viability"], "sd": ["wide"]}).write_parquet(
        other / "benchmark.parquet"
    )
    unreadable = network_comparison(releases, garbage)
    assert unreadable.rows == () and "garbage/benchmark.parquet: the network benchmark cannot be read" in (
        unreadable.problem or ""
    )
    foreign = network_comparison(releases, other)
    assert foreign.rows == ()
    assert foreign.problem is not None and foreign.problem.startswith(f"{other}/benchmark.parquet: is not a")
    # sd of another type, and every column the benchmark has that this table lacks, are named
    assert "n_lots" in foreign.problem and "sd" in foreign.problem and "platform" not in foreign.problem
