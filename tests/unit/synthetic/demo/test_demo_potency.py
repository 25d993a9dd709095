"""The demo potency tubes: deterministic, labelled with their truth, on target, and bright where expected.

Each lot has a stimulated and an unstimulated tube on the phenotype tube's instrument and dyes, with
IFN-γ (PE), TNF-α (PerCP-Cy5.5), CD107a (BV421) and IL-2 (BV605) in place of four phenotype markers.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime
from pathlib import Path

import flowio
import flowkit
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rapidrelease.synthetic.demo.lots import DEMO_LOTS, FUNCTIONS, DemoLot, PotencyResponse
from rapidrelease.synthetic.demo.panel import SPILLOVER
from rapidrelease.synthetic.demo.simulate import DEFAULT_SEED, simulate_potency_tube, simulate_tube
from rapidrelease.synthetic.demo.truth import POTENCY_METRICS, potency_truth_table

LOTS = {lot.lot_id: lot for lot in DEMO_LOTS}
LOT_IDS = list(LOTS)
CONDITIONS = {"stimulated": True, "unstimulated": False}

ALL_PNN = [
    "FSC-A",
    "FSC-H",
    "SSC-A",
    "B530-A",
    "YG586-A",
    "B695-A",
    "R780-A",
    "V450-A",
    "V525-A",
    "V610-A",
    "Time",
]
MARKERS = ["CAR", "IFNg", "TNFa", "Viability", "CD107a", "CD3", "IL2"]
# Compensated event column of each function's detector (FUNCTIONS order: CD107a, IFN-γ, TNF-α, IL-2).
DETECTOR = dict(
    zip(FUNCTIONS, (ALL_PNN.index(d) for d in ("V450-A", "YG586-A", "B695-A", "V610-A")), strict=True)
)


def _fcs(demo_dir: Path, lot_id: str, condition: str) -> Path:
    return demo_dir / lot_id / f"{lot_id}_potency_{condition}.fcs"


def _labels(demo_dir: Path, lot_id: str, condition: str) -> pl.DataFrame:
    return pl.read_parquet(demo_dir / lot_id / f"{lot_id}_potency_{condition}_events_truth.parquet")


def _car_t(labels: pl.DataFrame) -> np.ndarray:
    """(n,) bool: live CAR+ T cells, the potency metrics' denominator."""
    return (
        (labels["kind"] == "live") & labels["cd3"].fill_null(False) & labels["car"].fill_null(False)
    ).to_numpy()


def _polyfunctional(response: PotencyResponse) -> float:
    """Expected share of live CAR+ T cells with at least two functions from antigen activation."""
    given = response.given_activation()
    at_least_two = sum(
        math.prod(q if on else 1 - q for on, q in zip(pattern, given, strict=True))
        for pattern in itertools.product((False, True), repeat=len(given))
        if sum(pattern) >= 2
    )
    return response.activated * at_least_two


@pytest.mark.parametrize("stimulated", [True, False])
def test_potency_tubes_are_deterministic_and_on_their_own_streams(stimulated: bool, tmp_path: Path) -> None:
    lot = DEMO_LOTS[0]
    first, again = (simulate_potency_tube(lot, stimulated, DEFAULT_SEED) for _ in range(2))
    np.testing.assert_array_equal(first.events, again.events)
    assert_frame_equal(first.labels, again.labels)
    other = simulate_potency_tube(lot, not stimulated, DEFAULT_SEED)
    phenotype = simulate_tube(lot, DEFAULT_SEED)
    assert not np.array_equal(first.events[:, :3], other.events[:, :3])
    assert not np.array_equal(first.events[:, :3], phenotype.events[:, :3])
    assert not np.array_equal(first.events, simulate_potency_tube(lot, stimulated, 7).events)


@pytest.mark.parametrize("lot_id", LOT_IDS)
def test_potency_truth_tsv_is_counted_from_the_event_labels(demo_dir: Path, lot_id: str) -> None:
    stimulated, unstimulated = (_labels(demo_dir, lot_id, c) for c in CONDITIONS)
    committed = pl.read_csv(demo_dir / lot_id / "potency_truth.tsv", separator="\t")
    assert_frame_equal(potency_truth_table(stimulated, unstimulated), committed)
    assert committed["metric"].to_list() == list(POTENCY_METRICS)
    cd107a = committed.row(0, named=True)
    car = _car_t(stimulated)
    assert cd107a["stimulated_denominator_events"] == car.sum()
    assert (
        cd107a["stimulated_numerator_events"]
        == (car & stimulated["cd107a"].fill_null(False).to_numpy()).sum()
    )
    for row in committed.iter_rows(named=True):
        assert row["net"] == pytest.approx(row["stimulated"] - row["unstimulated"], abs=1e-3)


@pytest.mark.parametrize("lot_id", LOT_IDS)
def test_net_fractions_are_the_lot_design_within_sampling_error(demo_dir: Path, lot_id: str) -> None:
    response = LOTS[lot_id].potency
    targets = {f"{f}_pct_car": getattr(response, f) for f in FUNCTIONS}
    targets["polyfunctional_pct_car"] = _polyfunctional(response)
    truth = pl.read_csv(demo_dir / lot_id / "potency_truth.tsv", separator="\t")
    for row in truth.iter_rows(named=True):
        p, n = targets[row["metric"]], row["stimulated_denominator_events"]
        standard_error = 100 * math.sqrt(p * (1 - p) / n)
        # 4 standard errors, plus the spontaneous background the net leaves of the stimulated tube.
        assert row["net"] == pytest.approx(100 * p, abs=4 * standard_error + 0.3), row["metric"]
        assert 0 <= row["unstimulated"] < 1.0, row["metric"]
    rows = {row["metric"]: row for row in truth.iter_rows(named=True)}
    # The functions share the activated state: polyfunctional cells are common and IL-2 the rarest.
    assert rows["polyfunctional_pct_car"]["net"] > rows["il2_pct_car"]["net"]


def test_demo_001_realises_the_requested_gross_fractions(demo_dir: Path) -> None:
    truth = pl.read_csv(demo_dir / "DEMO-001" / "potency_truth.tsv", separator="\t")
    gross = dict(zip(truth["metric"], truth["stimulated"], strict=True))
    expected = {"cd107a_pct_car": 35, "ifng_pct_car": 25, "tnfa_pct_car": 30, "il2_pct_car": 12}
    for metric, value in expected.items():
        assert gross[metric] == pytest.approx(value, abs=1.5), metric


@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("lot_id", LOT_IDS)
def test_only_live_t_cells_respond_and_labels_have_identity_for_cells_only(
    demo_dir: Path, lot_id: str, condition: str
) -> None:
    labels = _labels(demo_dir, lot_id, condition)
    # DEMO-002 acquires 50,000 so that its unstimulated tube holds 2,000 CAR+ T cells for a threshold
    assert labels.height == {"DEMO-001": 30_000, "DEMO-002": 50_000}[lot_id]
    assert labels.columns == ["event", "kind", "lineage", "cd3", "car", "activated", *FUNCTIONS]
    not_cell = labels.filter(pl.col("kind").is_in(["debris", "doublet"]))
    assert not_cell.height > 0
    assert all(not_cell[c].null_count() == not_cell.height for c in ("cd3", "car", "activated", *FUNCTIONS))
    responders = labels.filter(pl.any_horizontal(pl.col(f).fill_null(False) for f in FUNCTIONS))
    assert (responders["kind"] == "live").all() and responders["cd3"].all()
    activated = labels["activated"].fill_null(False)
    if CONDITIONS[condition]:
        assert _car_t(labels)[activated.to_numpy()].all()
        car_neg_t = labels.filter((pl.col("kind") == "live") & pl.col("cd3") & ~pl.col("car"))
        bystander = car_neg_t.select(pl.col("ifng").mean()).item()
        assert 0.001 < bystander < 0.01  # bystander + spontaneous background
    else:
        assert not activated.any()


@pytest.fixture(scope="module")
def compensated(demo_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """Each potency tube of DEMO-001 compensated with its own $SPILLOVER, by condition."""
    tubes = {}
    for condition in CONDITIONS:
        sample = flowkit.Sample(_fcs(demo_dir, "DEMO-001", condition))
        sample.apply_compensation(sample.metadata["spillover"])
        tubes[condition] = sample.get_events(source="comp")
    return tubes


def test_responders_are_bright_in_their_own_detector_after_compensation(
    demo_dir: Path, compensated: dict[str, np.ndarray]
) -> None:
    stimulated, unstimulated = (_labels(demo_dir, "DEMO-001", c) for c in CONDITIONS)
    car, car_unstimulated = _car_t(stimulated), _car_t(unstimulated)
    positive = {f: stimulated[f].fill_null(False).to_numpy() for f in FUNCTIONS}
    for function, column in DETECTOR.items():
        events = compensated["stimulated"][:, column]
        pos, neg = events[car & positive[function]], events[car & ~positive[function]]
        # 1.5-2 decades above the negatives, with little overlap.
        assert 20 < np.median(pos) / np.median(neg) < 100, function
        cutoff = np.percentile(compensated["unstimulated"][car_unstimulated, column], 99.5)
        assert np.mean(pos > cutoff) > 0.95, function
        assert np.mean(neg > cutoff) < 0.02, function
        # A cell showing only this function is not bright in the other cytokine detectors.
        alone = car & positive[function] & ~np.any([positive[f] for f in FUNCTIONS if f != function], axis=0)
        silent = car & ~np.any(list(positive.values()), axis=0)
        for other, other_column in DETECTOR.items():
            if other != function:
                gap = np.median(compensated["stimulated"][alone, other_column]) - np.median(
                    compensated["stimulated"][silent, other_column]
                )
                assert abs(gap) < 60, (function, other)


def test_compensation_matters_for_the_pe_cytokine(demo_dir: Path, compensated: dict[str, np.ndarray]) -> None:
    """CAR (FITC) spills ~20 % into PE: raw, CAR+ non-producers look IFN-γ-dim; compensated they do not."""
    labels = _labels(demo_dir, "DEMO-001", "unstimulated")
    t_cell = ((labels["kind"] == "live") & labels["cd3"].fill_null(False)).to_numpy()
    car = labels["car"].fill_null(False).to_numpy()
    silent = ~np.any([labels[f].fill_null(False).to_numpy() for f in FUNCTIONS], axis=0)
    raw = flowkit.Sample(_fcs(demo_dir, "DEMO-001", "unstimulated")).get_events(source="raw")
    pe = DETECTOR["ifng"]
    car_pos, car_neg = t_cell & car & silent, t_cell & ~car & silent
    assert np.median(raw[car_pos, pe]) - np.median(raw[car_neg, pe]) > 500
    assert (
        abs(
            np.median(compensated["unstimulated"][car_pos, pe])
            - np.median(compensated["unstimulated"][car_neg, pe])
        )
        < 50
    )


@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("lot_id", LOT_IDS)
def test_potency_fcs_keywords(
    demo_dir: Path, fcs_paths: dict[str, Path], lot_id: str, condition: str
) -> None:
    path = _fcs(demo_dir, lot_id, condition)
    raw = path.read_bytes()
    assert raw[:10] == b"FCS3.1    " and raw.endswith(b"00000000")
    text = flowio.FlowData(str(path)).text
    phenotype = flowio.FlowData(str(fcs_paths[lot_id])).text
    events = {"DEMO-001": 30_000, "DEMO-002": 50_000}[lot_id]
    assert (text["datatype"], text["mode"], int(text["tot"]), int(text["par"])) == ("F", "L", events, 11)
    assert [text[f"p{n}n"] for n in range(1, 12)] == ALL_PNN
    assert [text[f"p{n}s"] for n in range(4, 11)] == MARKERS
    assert text["spillover"] == phenotype["spillover"]
    fields = text["spillover"].split(",")
    np.testing.assert_array_equal(np.array([float(v) for v in fields[8:]]).reshape(7, 7), SPILLOVER)
    for key in ("cyt", "cytsn", "timestep", "p4v", "p8v", "date"):
        assert text[key] == phenotype[key], key
    assert text["fil"] == path.name
    assert text["src"].startswith(lot_id) and condition in text["src"]
    assert text["tube name"] == f"Potency {condition}"
    assert text["experiment name"] == f"{lot_id} release potency"
    assert text["synthetic"] == "TRUE" and "SYNTHETIC" in text["com"]

    def start(t: dict[str, str]) -> datetime:
        return datetime.strptime(f"{t['date']} {t['btim']}", "%d-%b-%Y %H:%M:%S")

    assert start(text) > start(phenotype)
    lot: DemoLot = LOTS[lot_id]
    assert start(text) == (lot.stimulated_start if CONDITIONS[condition] else lot.unstimulated_start)


@pytest.fixture(scope="module")
def potency_strategy(demo_dir: Path) -> flowkit.GatingStrategy:
    return flowkit.parse_gating_xml(str(demo_dir / "car_t_potency.gatingml.xml"))


def test_potency_template_is_the_phenotype_tree_down_to_car_pos(
    potency_strategy: flowkit.GatingStrategy, demo_dir: Path
) -> None:
    phenotype = flowkit.parse_gating_xml(str(demo_dir / "car_t_phenotype.gatingml.xml"))
    ids = potency_strategy.get_gate_ids()
    assert ids == [
        ("Cells", ("root",)),
        ("Singlets", ("root", "Cells")),
        ("Live", ("root", "Cells", "Singlets")),
        ("CD3pos", ("root", "Cells", "Singlets", "Live")),
        ("CARpos", ("root", "Cells", "Singlets", "Live", "CD3pos")),
    ]
    assert ids == phenotype.get_gate_ids()[: len(ids)]
    xml = (demo_dir / "car_t_potency.gatingml.xml").read_text()
    phenotype_xml = (demo_dir / "car_t_phenotype.gatingml.xml").read_text()
    # Same gates, byte for byte: the potency file is the phenotype file without the quadrant gates.
    shared = xml[xml.index("<transforms:transformation") : xml.index("</gating:Gating-ML>")]
    assert shared in phenotype_xml
    assert "QuadrantGate" not in xml


@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("lot_id", LOT_IDS)
def test_potency_template_gates_the_car_t_cells(
    potency_strategy: flowkit.GatingStrategy, demo_dir: Path, lot_id: str, condition: str
) -> None:
    result = potency_strategy.gate_sample(flowkit.Sample(_fcs(demo_dir, lot_id, condition)))
    gated = result.get_gate_membership("CARpos")
    car = _car_t(_labels(demo_dir, lot_id, condition))
    assert gated.sum() == pytest.approx(car.sum(), rel=0.03)
    assert (gated & car).sum() / car.sum() > 0.95


def test_every_unstimulated_tube_holds_the_car_t_cells_a_99_5th_percentile_needs(demo_dir: Path) -> None:
    # rapidrelease.flow.thresholds: 10 events above the 99.5th percentile need 2,000 in the control
    for lot_id in LOT_IDS:
        truth = pl.read_csv(demo_dir / lot_id / "potency_truth.tsv", separator="\t")
        assert truth["unstimulated_denominator_events"].min() >= 2_500, lot_id
