"""Gating the committed demo files with the committed template reproduces the simulator's truth.

FlowKit is the correctness reference for gating (DESIGN.md §4). An analyst accepts a manual gate that
lands within 2 percentage points of the true percentage and a CD4:CD8 ratio within 10 %.
"""

from __future__ import annotations

from pathlib import Path

import flowkit
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rapidrelease.synthetic.demo.lots import DEMO_LOTS
from rapidrelease.synthetic.demo.truth import TRUTH_METRICS, truth_table

LOT_IDS = [lot.lot_id for lot in DEMO_LOTS]

PERCENT_TOLERANCE = 2.0  # percentage points
RATIO_TOLERANCE = 0.10  # relative

# metric -> (numerator population, denominator population), populations by FlowKit gate name.
GATED = {
    "viability_pct": ("Live", "Singlets"),
    "cd3_pct_live": ("CD3pos", "Live"),
    "car_pct_cd3": ("CARpos", "CD3pos"),
    "cd4_pct_car": ("CD4posCD8neg", "CARpos"),
    "cd8_pct_car": ("CD4negCD8pos", "CARpos"),
    "cd4_cd8_ratio": ("CD4posCD8neg", "CD4negCD8pos"),
    "cd45ra_pos_ccr7_pos_pct_car": ("CD45RAposCCR7pos", "CARpos"),
    "cd45ra_neg_ccr7_pos_pct_car": ("CD45RAnegCCR7pos", "CARpos"),
    "cd45ra_neg_ccr7_neg_pct_car": ("CD45RAnegCCR7neg", "CARpos"),
    "cd45ra_pos_ccr7_neg_pct_car": ("CD45RAposCCR7neg", "CARpos"),
}


@pytest.fixture(scope="module")
def strategy(demo_dir: Path) -> flowkit.GatingStrategy:
    return flowkit.parse_gating_xml(str(demo_dir / "car_t_phenotype.gatingml.xml"))


def _gated_counts(strategy: flowkit.GatingStrategy, path: Path) -> dict[str, int]:
    report = strategy.gate_sample(flowkit.Sample(path)).report
    return dict(zip(report["gate_name"], report["count"], strict=True))


def _truth(demo_dir: Path, lot_id: str) -> dict[str, float]:
    table = pl.read_csv(demo_dir / lot_id / "truth.tsv", separator="\t")
    return dict(zip(table["metric"], table["value"], strict=True))


def test_template_has_the_gate_tree_other_stages_address(strategy: flowkit.GatingStrategy) -> None:
    ids = dict(strategy.get_gate_ids())
    car_path = ("root", "Cells", "Singlets", "Live", "CD3pos")
    assert ids["CARpos"] == car_path
    assert ids["CD4vCD8"] == (*car_path, "CARpos")
    assert ids["Memory"] == (*car_path, "CARpos")
    assert [g for g, p in strategy.get_gate_ids() if p == (*car_path, "CARpos", "CD4vCD8")] == [
        "CD4posCD8neg",
        "CD4posCD8pos",
        "CD4negCD8pos",
        "CD4negCD8neg",
    ]
    assert [g for g, p in strategy.get_gate_ids() if p == (*car_path, "CARpos", "Memory")] == [
        "CD45RAposCCR7pos",
        "CD45RAnegCCR7pos",
        "CD45RAnegCCR7neg",
        "CD45RAposCCR7neg",
    ]


@pytest.mark.parametrize("lot_id", LOT_IDS)
def test_flowkit_gating_reproduces_truth(
    strategy: flowkit.GatingStrategy, demo_dir: Path, fcs_paths: dict[str, Path], lot_id: str
) -> None:
    counts = _gated_counts(strategy, fcs_paths[lot_id])
    truth = _truth(demo_dir, lot_id)
    assert list(truth) == list(TRUTH_METRICS)
    for metric, (numerator, denominator) in GATED.items():
        if metric == "cd4_cd8_ratio":
            gated = counts[numerator] / counts[denominator]
            assert gated == pytest.approx(truth[metric], rel=RATIO_TOLERANCE), metric
        else:
            gated = 100 * counts[numerator] / counts[denominator]
            assert gated == pytest.approx(truth[metric], abs=PERCENT_TOLERANCE), metric


def test_gated_lots_fall_on_either_side_of_a_15_percent_car_specification(
    strategy: flowkit.GatingStrategy, fcs_paths: dict[str, Path]
) -> None:
    car = {}
    for lot_id in LOT_IDS:
        counts = _gated_counts(strategy, fcs_paths[lot_id])
        car[lot_id] = 100 * counts["CARpos"] / counts["CD3pos"]
    assert car["DEMO-001"] == pytest.approx(38, abs=2)
    assert car["DEMO-002"] == pytest.approx(9, abs=2)


@pytest.mark.parametrize(
    ("lot_id", "viability", "cd3", "car", "ratio"),
    [("DEMO-001", 88, 95, 38, 1.4), ("DEMO-002", 84, 94, 9, 1.25)],
)
def test_truth_matches_the_lot_design(
    demo_dir: Path, lot_id: str, viability: float, cd3: float, car: float, ratio: float
) -> None:
    truth = _truth(demo_dir, lot_id)
    assert truth["viability_pct"] == pytest.approx(viability, abs=1.0)
    assert truth["cd3_pct_live"] == pytest.approx(cd3, abs=1.0)
    assert truth["car_pct_cd3"] == pytest.approx(car, abs=1.0)
    assert truth["cd4_cd8_ratio"] == pytest.approx(ratio, rel=0.05)
    memory = [m for m in TRUTH_METRICS if m.startswith("cd45ra_")]
    assert sum(truth[m] for m in memory) == pytest.approx(100.0, abs=1e-3)


@pytest.mark.parametrize("lot_id", LOT_IDS)
def test_truth_tsv_is_counted_from_the_event_labels(demo_dir: Path, lot_id: str) -> None:
    labels = pl.read_parquet(demo_dir / lot_id / "events_truth.parquet")
    committed = pl.read_csv(demo_dir / lot_id / "truth.tsv", separator="\t")
    assert_frame_equal(truth_table(labels), committed)
    singlets = labels.filter(pl.col("kind").is_in(["live", "dead"])).height
    live = labels.filter(pl.col("kind") == "live").height
    row = committed.row(0, named=True)
    assert (row["metric"], row["numerator_events"], row["denominator_events"]) == (
        "viability_pct",
        live,
        singlets,
    )
    assert labels.height == 30_000
