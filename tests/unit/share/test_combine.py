"""Pooling programs' summaries: exact where the summaries allow it, and the lots index's TOST from
the summaries alone."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest

from rapidrelease.errors import ShareError
from rapidrelease.report.trends import equivalence_of_means, equivalence_of_summaries
from rapidrelease.share.combine import pool_packages, pooled_moments
from rapidrelease.share.export import ExportSettings, build_tables
from rapidrelease.share.package import read_package, write_package


def test_pooled_moments_are_those_of_the_programs_values_together():
    rng = random.Random(19)
    programs = [[rng.gauss(80, 5) for _ in range(n)] for n in (8, 13, 5)]
    parts = [(len(v), statistics.fmean(v), statistics.stdev(v)) for v in programs]
    everything = [x for values in programs for x in values]
    n, mean, sd = pooled_moments(parts)
    assert n == 26
    assert mean == pytest.approx(statistics.fmean(everything), rel=1e-12)
    assert sd == pytest.approx(statistics.stdev(everything), rel=1e-12)


def test_tost_from_summaries_is_the_tost_of_the_values():
    a = [82.1, 85.3, 79.8, 88.0, 84.4, 86.9]
    b = [80.2, 83.7, 81.9, 85.5, 79.1]
    from_values = equivalence_of_means("A", a, "B", b, margin=5.0)
    from_summaries = equivalence_of_summaries(
        "A",
        len(a),
        statistics.fmean(a),
        statistics.variance(a),
        "B",
        len(b),
        statistics.fmean(b),
        statistics.variance(b),
        margin=5.0,
    )
    assert from_summaries.p_value == pytest.approx(from_values.p_value, rel=1e-12)
    assert from_summaries.interval == pytest.approx(from_values.interval, rel=1e-12)
    assert from_summaries.equivalent == from_values.equivalent


def _package(tmp_path: Path, lots, name: str, program: str) -> Path:
    tables, stated = build_tables(lots, ExportSettings(min_lots=3))
    write_package(tmp_path / name, tables, program, stated, "2026-W49")
    return tmp_path / name


def test_two_programs_pool_into_the_archives_own_figures(tmp_path: Path, archive_lots):
    lots, _ = archive_lots
    first = _package(tmp_path, lots[:12], "a", "aaaaaaaaaaaa")
    second = _package(tmp_path, lots[12:], "b", "bbbbbbbbbbbb")
    whole, _ = build_tables(lots, ExportSettings(min_lots=3))
    benchmark = pool_packages([read_package(first), read_package(second)], {"viability": 5.0})
    viability = next(g for g in benchmark.groups if g.attribute == "viability")
    expected = whole["summaries"].filter(attribute="viability").row(0, named=True)
    assert viability.n_lots == 24
    assert viability.mean == pytest.approx(expected["mean"], rel=1e-12)
    assert viability.sd == pytest.approx(expected["sd"], rel=1e-12)
    # 23 of 24 judged lots passed; Wilson's 95 % interval 79.8–99.3 %
    assert (viability.n_pass, viability.n_judged) == (23, 24)
    assert viability.pass_interval == pytest.approx((0.7976, 0.9926), abs=5e-4)
    (comparison,) = viability.comparisons
    assert (comparison.site_a, comparison.site_b) == ("Program A", "Program B")
    assert comparison.margin == 5.0 and comparison.p_value is not None
    contaminants = {(c.organism, c.lots) for c in benchmark.contaminants}
    assert contaminants == set()


def test_the_same_program_twice_is_refused(tmp_path: Path, archive_lots):
    lots, _ = archive_lots
    first = _package(tmp_path, lots[:12], "a", "aaaaaaaaaaaa")
    again = _package(tmp_path, lots[12:], "b", "aaaaaaaaaaaa")
    with pytest.raises(ShareError, match="same program"):
        pool_packages([read_package(first), read_package(again)])
