"""The noise of a private export: OpenDP's Laplace scale against the budget stated, and what
repeated exports of the same lots show of it."""

from __future__ import annotations

import dataclasses
import math
import statistics

import pytest

from rapidrelease.errors import ShareError
from rapidrelease.reads.taxonomy import Taxonomy
from rapidrelease.share.export import (
    TIME_TO_RESULT,
    ExportSettings,
    build_tables,
    organism_names,
    shared_lots,
)
from rapidrelease.share.privacy import budget_split, private_count, private_sum


def test_the_laplace_scale_is_the_sensitivity_over_the_budget():
    # a count changes by 1 when one lot is added or removed: scale b = 1/ε
    assert private_count(10, 0.5).scale == pytest.approx(2.0, rel=1e-6)
    # a sum of values clamped to [0, 100] changes by up to 100: b = 100/ε
    assert private_sum([50.0, 60.0], (0.0, 100.0), 0.5).scale == pytest.approx(200.0, rel=1e-6)
    # clamped to [-30, 10], OpenDP bounds the change by the bounds' width, 40: b = 40/ε
    assert private_sum([1.0], (-30.0, 10.0), 2.0).scale == pytest.approx(20.0, rel=1e-6)


def test_repeated_counts_spread_as_the_stated_scale_says():
    draws = [private_count(10, 0.5).value for _ in range(6000)]
    # discrete Laplace of scale b = 2: mean 10, SD √(2e^(-1/b))/(1 − e^(-1/b)) = 2.80
    q = math.exp(-1 / 2.0)
    expected_sd = math.sqrt(2 * q) / (1 - q)
    assert statistics.fmean(draws) == pytest.approx(10.0, abs=4 * expected_sd / math.sqrt(len(draws)))
    assert statistics.stdev(draws) == pytest.approx(expected_sd, rel=0.06)
    assert all(float(d).is_integer() for d in draws)


def test_a_budget_must_be_positive():
    with pytest.raises(ShareError, match="positive"):
        budget_split(0.0, 3)
    assert budget_split(3.0, 30) == pytest.approx(0.1)


def test_repeated_private_exports_carry_noise_of_the_stated_scale(archive_lots):
    lots, _ = archive_lots
    exact, _ = build_tables(lots, ExportSettings(min_lots=1))
    truth = exact["summaries"].filter(attribute=TIME_TO_RESULT)["n_values"].item()
    assert truth == 24
    epsilon = 15.0
    counts, scales, stated = [], set(), []
    # 160 exports: the sample SD of this discrete Laplace falls outside 0.6-1.5 of the stated one
    # in 1e-5 of runs (40 exports: 1 %; 100,000 simulated runs of each)
    for _ in range(160):
        tables, manifest = build_tables(lots, ExportSettings(min_lots=1, epsilon=epsilon))
        row = tables["summaries"].filter(attribute=TIME_TO_RESULT).row(0, named=True)
        counts.append(row["n_values"])
        scales.add(round(row["noise_scale_count"], 6))
        stated.append(manifest["privacy"])
    privacy = stated[0]
    # 8 numeric attributes × 3 queries + 2 categorical × 1 + the time to result's 3 + the organisms' 1
    assert privacy["queries_per_platform"] == 30
    assert privacy["epsilon"] == epsilon
    assert privacy["epsilon_per_query"] == pytest.approx(epsilon / 30)
    # each count's scale is 1/(ε/30) = 2 lots, as every export states
    assert scales == {2.0}
    q = math.exp(-1 / 2.0)
    expected_sd = math.sqrt(2 * q) / (1 - q)
    assert len(set(counts)) > 1
    assert statistics.fmean(counts) == pytest.approx(truth, abs=4 * expected_sd / math.sqrt(len(counts)))
    assert 0.6 * expected_sd < statistics.stdev(counts) < 1.5 * expected_sd
    # no quantile leaves a private export: it would need a mechanism and budget of its own
    assert tables["summaries"]["q50"].null_count() == tables["summaries"].height


def test_a_private_export_names_an_organism_only_above_the_noise(run, archive_lots, project_root):
    _, releases = archive_lots
    taxonomy = Taxonomy.from_tsv(project_root / "resources" / "reference" / "taxonomy.tsv")
    lots, names = shared_lots(run, releases, taxonomy), organism_names(taxonomy)
    # HIST-019's Staphylococcus epidermidis, one lot: its noisy count clears the threshold
    # (scale × ln(vocabulary / 0.1)) only when the noise is small against one lot
    tables, _ = build_tables(lots, ExportSettings(min_lots=5, epsilon=6000.0), names)
    assert tables["organisms"].select("organism", "lots").rows() == [("Staphylococcus epidermidis", 1)]
    tables, _ = build_tables(lots, ExportSettings(min_lots=5, epsilon=30.0), names)
    assert "Staphylococcus epidermidis" not in tables["organisms"]["organism"].to_list()


def test_a_private_export_needs_bounds_for_every_numeric_attribute(archive_lots):
    lots, _ = archive_lots
    unbounded = [
        dataclasses.replace(
            lot, attributes=tuple((a, dataclasses.replace(s, share_bounds=None)) for a, s in lot.attributes)
        )
        for lot in lots
    ]
    with pytest.raises(ShareError, match="marks car_of_cd3 share without bounds"):
        build_tables(unbounded, ExportSettings(epsilon=1.0))
    # exact aggregates need no bounds
    tables, _ = build_tables(unbounded, ExportSettings(min_lots=5))
    assert tables["summaries"].height == 11
