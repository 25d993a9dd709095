"""The demo microbial-flow tubes: Accuri-like FCS files, sterile lots, and a template that finds microbes.

The committed tubes are sterile, so the template's fixed gates are also checked on contaminated tubes
simulated at test time: nearly every simulated microbe must land in ``Microbes``, the intact ones in
``Microbes/Intact``, and the noise, aggregates and product fragments rarely in either.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import flowio
import flowkit
import numpy as np
import polars as pl
import pytest

from rapidrelease.stats import upper_bound
from rapidrelease.synthetic.demo.fcs_writer import write_fcs
from rapidrelease.synthetic.demo.lots import DEMO_LOTS
from rapidrelease.synthetic.demo.microbial import (
    MICROBIAL_CHANNELS,
    MICROBIAL_KINDS,
    MicrobialTube,
    microbial_keywords,
    microbial_truth_table,
    simulate_medium_control,
    simulate_microbial_test,
    simulate_microbial_tube,
)
from rapidrelease.synthetic.demo.simulate import DEFAULT_SEED

LOT_IDS = [lot.lot_id for lot in DEMO_LOTS]
MICROBE = MICROBIAL_KINDS.index("microbe")


@pytest.fixture(scope="module")
def strategy(demo_dir: Path) -> flowkit.GatingStrategy:
    return flowkit.parse_gating_xml(str(demo_dir / "microbial_flow.gatingml.xml"))


def _tube_paths(demo_dir: Path) -> dict[str, Path]:
    paths = {lot_id: demo_dir / lot_id / f"{lot_id}_microbial.fcs" for lot_id in LOT_IDS}
    return {**paths, "medium": demo_dir / "FLOW-RUN-01" / "FLOW-RUN-01_medium.fcs"}


def _gate(strategy: flowkit.GatingStrategy, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(n,) bool membership of Microbes and of Microbes/Intact."""
    result = strategy.gate_sample(flowkit.Sample(path))
    return result.get_gate_membership("Microbes"), result.get_gate_membership("Intact")


def _write(tube: MicrobialTube, path: Path) -> Path:
    keywords = microbial_keywords(
        tube,
        seed=0,
        start=datetime(2026, 1, 1, 9, 0, 0),
        file_name=path.name,
        source="test",
        sample="test",
        operator="test",
        tube_name="test",
    )
    write_fcs(path, tube.events, MICROBIAL_CHANNELS, keywords)
    return path


def test_template_has_microbes_and_intact(strategy: flowkit.GatingStrategy) -> None:
    assert strategy.get_gate_ids() == [("Microbes", ("root",)), ("Intact", ("root", "Microbes"))]


@pytest.mark.parametrize(("seed", "microbes_per_ml"), [(1, 1e5), (2, 2e4), (3, 1e6)])
def test_contaminated_tube_puts_the_microbes_in_the_microbial_gate(
    strategy: flowkit.GatingStrategy, tmp_path: Path, seed: int, microbes_per_ml: float
) -> None:
    tube = simulate_microbial_tube(np.random.default_rng(seed), microbes_per_ml=microbes_per_ml)
    microbes, intact = _gate(strategy, _write(tube, tmp_path / "contaminated.fcs"))
    microbe = tube.kinds == MICROBE
    expected = microbes_per_ml * tube.volume_ul / 1000
    assert microbe.sum() == pytest.approx(expected, abs=5 * math.sqrt(expected))
    assert (microbes & microbe).sum() / microbe.sum() >= 0.98
    intact_microbe = microbe & ~tube.damaged
    assert (intact & intact_microbe).sum() / intact_microbe.sum() >= 0.98
    assert (intact & microbe & tube.damaged).sum() <= 0.02 * (microbe & tube.damaged).sum()
    # noise, aggregates and product fragments: only the handful of SYBR-bright aggregates get in
    assert (microbes & ~microbe).sum() < 10
    assert microbes[~microbe].mean() < 1e-3
    truth = dict(zip(*microbial_truth_table(tube).select("metric", "value"), strict=True))
    assert truth["microbes_simulated"] == microbe.sum()
    assert truth["microbes_per_ml"] == pytest.approx(microbe.sum() / (tube.volume_ul / 1000))
    assert truth["intact_per_ml"] == pytest.approx(intact_microbe.sum() / (tube.volume_ul / 1000))


def test_sterile_tubes_have_few_events_in_the_microbial_gate(
    strategy: flowkit.GatingStrategy, demo_dir: Path
) -> None:
    counts = {name: int(_gate(strategy, path)[0].sum()) for name, path in _tube_paths(demo_dir).items()}
    assert counts["medium"] <= 5
    assert all(count < 10 for count in counts.values())
    # The sterile demo lots are NOT_DETECTED against the medium control (equal volumes, 95 %).
    threshold = math.floor(upper_bound(counts["medium"], 0.95)) + 1
    assert all(counts[lot_id] < threshold for lot_id in LOT_IDS)
    for lot_id in LOT_IDS:
        truth = pl.read_csv(demo_dir / lot_id / "microbial_truth.tsv", separator="\t")
        assert truth.filter(pl.col("metric") == "microbes_simulated")["value"].item() == 0


def test_a_contaminated_lot_is_detected_against_the_medium(
    strategy: flowkit.GatingStrategy, demo_dir: Path, tmp_path: Path
) -> None:
    medium = int(_gate(strategy, _tube_paths(demo_dir)["medium"])[0].sum())
    tube = simulate_microbial_tube(np.random.default_rng(4), microbes_per_ml=1000.0)
    count = int(_gate(strategy, _write(tube, tmp_path / "low.fcs"))[0].sum())
    assert count >= math.floor(upper_bound(medium, 0.95)) + 1


def test_microbial_tubes_are_deterministic() -> None:
    lot = DEMO_LOTS[0]
    np.testing.assert_array_equal(
        simulate_microbial_test(lot, DEFAULT_SEED).events, simulate_microbial_test(lot, DEFAULT_SEED).events
    )
    np.testing.assert_array_equal(
        simulate_medium_control(DEFAULT_SEED).events, simulate_medium_control(DEFAULT_SEED).events
    )
    assert not np.array_equal(
        simulate_microbial_test(lot, 7).events, simulate_microbial_test(lot, DEFAULT_SEED).events
    )


@pytest.mark.parametrize("name", [*LOT_IDS, "medium"])
def test_microbial_fcs_is_an_accuri_like_float_file_with_vol(demo_dir: Path, name: str) -> None:
    path = _tube_paths(demo_dir)[name]
    raw = path.read_bytes()
    assert raw[:10] == b"FCS3.1    " and raw.endswith(b"00000000")
    text = flowio.FlowData(str(path)).text
    assert (text["datatype"], text["mode"], int(text["par"])) == ("F", "L", 5)
    assert [text[f"p{n}n"] for n in range(1, 6)] == ["FSC-H", "SSC-H", "FL1-H", "FL3-H", "Time"]
    assert (text["p3s"], text["p4s"]) == ("SYBR Green I", "PI")
    assert all(text[f"p{n}r"] == "16777215" for n in range(1, 6))
    assert text["cyt"] == "BD Accuri C6 Plus"
    assert float(text["vol"]) == 25_000.0  # nanolitres: 25 µL
    assert float(text["timestep"]) == 0.01
    assert text["fil"] == path.name
    assert "spillover" not in text
    assert text["synthetic"] == "TRUE" and "SYNTHETIC" in text["com"]
    sample = flowkit.Sample(path)
    time = sample.get_channel_events("Time", source="raw")
    assert np.all(np.diff(time) >= 0) and time[-1] <= 25 / 35 * 60
    events = sample.get_events(source="raw")
    assert events[:, :4].min() >= 0 and events[:, :4].max() <= 16777215
    assert events[:, 2].min() >= 1000  # the FL1-H trigger


def test_product_fragments_are_in_test_tubes_only() -> None:
    fragment = MICROBIAL_KINDS.index("fragment")
    test, medium = simulate_microbial_test(DEMO_LOTS[0], DEFAULT_SEED), simulate_medium_control(DEFAULT_SEED)
    assert (test.kinds == fragment).sum() > 5000
    assert (medium.kinds == fragment).sum() == 0
    # microbes sit about two decades above the fragments in SYBR
    contaminated = simulate_microbial_tube(np.random.default_rng(5), microbes_per_ml=1e5)
    sybr = contaminated.events[:, 2]
    gap = np.log10(
        np.median(sybr[contaminated.kinds == MICROBE]) / np.median(sybr[contaminated.kinds == fragment])
    )
    assert 1.7 < gap < 2.3
