"""Microbial detection by flow on simulated tubes: the call against sterile medium, the LOD, and
every INCONCLUSIVE path (no control, no volume, a control that cannot be read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom, poisson

from rapidrelease.flow.measure import ControlTube, measure_tube
from rapidrelease.flow.microbial import conditional_p_value, critical_count
from rapidrelease.records import Metric, read_unit_record
from rapidrelease.stats import mean_detected, upper_bound

from support.tubes import rectangle_gate, write_gatingml, write_tube

VOLUME_NL = 50_000.0  # 50 µL acquired, as $VOL (nanolitres)


def _tube(path: Path, microbes: int, noise: int, seed: int, volume_nl: float | None = VOLUME_NL) -> Path:
    """Dye-positive microbes (bright SYBR, small scatter) among medium debris and noise (dim SYBR)."""
    rng = np.random.default_rng(seed)
    n = microbes + noise
    sybr = np.concatenate(
        [rng.lognormal(np.log(20_000), 0.3, microbes), rng.lognormal(np.log(150), 0.6, noise)]
    )
    order = rng.permutation(n)
    keywords = {} if volume_nl is None else {"$VOL": f"{volume_nl}"}
    return write_tube(
        path, {"SSC-H": rng.lognormal(np.log(3000), 0.5, n)[order], "SYBR-H": sybr[order]}, keywords
    )


@pytest.fixture
def panel(tmp_path: Path) -> Path:
    template = write_gatingml(
        tmp_path / "microbes.gatingml.xml", rectangle_gate("Microbes", {"SYBR-H": (3000, None)})
    )
    path = tmp_path / "microbial.yaml"
    path.write_text(
        f"name: microbial test panel\nassay: microbial_flow\ngating_template: {template}\nmin_events: 1\n"
        "metrics:\n  microbes_per_ml: {kind: concentration, numerator: Microbes}\n"
        "detection: {metric: microbes_per_ml}\n"
    )
    return path


def _metrics(panel: Path, role: str, fcs: Path, controls=(), volume_ul=None) -> dict[str, Metric]:
    record = measure_tube(
        lot_id="LOT-1",
        unit_id="MIC",
        assay="microbial_flow",
        role=role,
        fcs_path=fcs,
        panel_path=panel,
        out_dir=panel.parent / "out",
        controls=controls,
        volume_ul=volume_ul,
    )
    assert record.status == "ok", record.error
    # the sealed metrics.json reads back, consistent, as the record returned
    assert read_unit_record(panel.parent / "out" / "metrics.json", "measure", "LOT-1", "MIC") == record
    return dict(record.metrics)


def test_a_contaminated_sample_is_detected_against_sterile_medium(panel: Path, tmp_path: Path):
    medium = _tube(tmp_path / "medium.fcs", microbes=4, noise=3000, seed=1)
    test = _tube(tmp_path / "test.fcs", microbes=40, noise=3000, seed=2)
    metrics = _metrics(panel, "test", test, [ControlTube("NC", "negative_control", medium)])
    assert metrics["microbes_per_ml"].value == pytest.approx(40 / 0.05)
    call = metrics["microbial_call"]
    assert call.value == "DETECTED" and call.status == "ok"
    evidence = call.evidence
    # equal volumes: under H0 each of the 44 events is the test's with probability 1/2
    assert evidence["test_share"] == pytest.approx(0.5)
    assert evidence["p_value"] == pytest.approx(binom.sf(39, 44, 0.5)) and evidence["alpha"] == 0.01
    # against 4 medium events, 14 test events give p = 0.0154 and 15 give 0.0096: detected from 15
    assert evidence["detection_threshold_events"] == 15
    assert evidence["negative_control"] == {"unit_id": "NC", "count": 4, "volume_ml": 0.05, "per_ml": 80.0}
    assert "40 events in Microbes (800 events/mL) against the negative control NC's 4" in call.detail
    lod = metrics["microbial_lod_per_ml"]
    assert lod.value == pytest.approx((mean_detected(15) - 4) / 0.05)
    assert lod.unit == "events/mL"


def test_a_sample_at_the_mediums_level_is_not_detected(panel: Path, tmp_path: Path):
    medium = _tube(tmp_path / "medium.fcs", microbes=4, noise=3000, seed=1)
    test = _tube(tmp_path / "test.fcs", microbes=6, noise=3000, seed=2)
    call = _metrics(panel, "test", test, [ControlTube("NC", "negative_control", medium)])["microbial_call"]
    assert call.value == "NOT_DETECTED" and call.detail is None


def test_a_larger_test_volume_scales_the_background(panel: Path, tmp_path: Path):
    # the same 9 events in twice the control's volume are background, not a finding
    medium = _tube(tmp_path / "medium.fcs", microbes=4, noise=3000, seed=1)
    test = _tube(tmp_path / "test.fcs", microbes=9, noise=3000, seed=2, volume_nl=2 * VOLUME_NL)
    call = _metrics(panel, "test", test, [ControlTube("NC", "negative_control", medium)])["microbial_call"]
    assert call.evidence["test_share"] == pytest.approx(2 / 3)
    assert call.evidence["expected_background_events"] == pytest.approx(8.0)
    assert call.value == "NOT_DETECTED" and call.evidence["p_value"] > 0.3


def test_the_sheets_volume_is_used_before_the_files_when_they_agree(panel: Path, tmp_path: Path):
    # the sheet's 52 µL (a measured volume) beside the instrument's 50 µL $VOL, within 10 %
    test = _tube(tmp_path / "test.fcs", microbes=40, noise=100, seed=2)
    per_ml = _metrics(panel, "test", test, volume_ul=52.0)["microbes_per_ml"]
    assert per_ml.value == pytest.approx(40 / 0.052)
    assert per_ml.evidence["volume"] == {"ml": 0.052, "source": "volume_ul"}
    # and alone when the file records no volume
    bare = _tube(tmp_path / "bare.fcs", microbes=40, noise=100, seed=2, volume_nl=None)
    assert _metrics(panel, "test", bare, volume_ul=100.0)["microbes_per_ml"].value == pytest.approx(400.0)


@pytest.mark.parametrize("volume_ul", [10_000.0, 0.25, 56.0])
def test_a_sheet_volume_that_contradicts_the_files_is_the_units_error(
    panel: Path, tmp_path: Path, volume_ul: float
):
    # 200× the file's $VOL would dilute a detected count to nothing, with no warning
    test = _tube(tmp_path / "test.fcs", microbes=1000, noise=3000, seed=2)
    medium = _tube(tmp_path / "medium.fcs", microbes=4, noise=3000, seed=1)
    record = measure_tube(
        "LOT-1", "MIC", "microbial_flow", "test", test, panel, tmp_path / "out",
        [ControlTube("NC", "negative_control", medium)], volume_ul=volume_ul,
    )  # fmt: skip
    assert (record.status, record.metrics) == ("error", {})
    assert record.error == (
        f"{test}: the unit sheet's volume_ul ({volume_ul:g} µL) disagrees with the file's $VOL (50 µL) by "
        "more than 10 %; correct the sheet or leave volume_ul empty to use $VOL."
    )


def test_a_sterile_medium_above_its_ceiling_makes_the_call_inconclusive(panel: Path, tmp_path: Path):
    # 60 events in 50 µL: 1,200/mL in the microbial gate, above the default 1,000/mL
    medium = _tube(tmp_path / "medium.fcs", microbes=60, noise=3000, seed=1)
    test = _tube(tmp_path / "test.fcs", microbes=4, noise=3000, seed=2)
    metrics = _metrics(panel, "test", test, [ControlTube("NC", "negative_control", medium)])
    call = metrics["microbial_call"]
    assert (call.value, call.status) == (None, "invalid_control")
    assert call.reason == (
        "the negative control NC holds 1200 events/mL in Microbes, above the 1000 events/mL a valid "
        "sterile-medium control allows"
    )
    assert metrics["microbial_lod_per_ml"].status == "invalid_control"


@pytest.mark.parametrize(
    "case", ["no control", "control without volume", "unreadable control", "test without volume"]
)
def test_the_call_is_inconclusive_without_a_usable_control_or_volume(panel: Path, tmp_path: Path, case: str):
    test = _tube(
        tmp_path / "test.fcs",
        microbes=40,
        noise=300,
        seed=2,
        volume_nl=None if case == "test without volume" else VOLUME_NL,
    )
    medium = _tube(
        tmp_path / "medium.fcs",
        microbes=4,
        noise=300,
        seed=1,
        volume_nl=None if case == "control without volume" else VOLUME_NL,
    )
    if case == "unreadable control":
        medium.write_bytes(b"\x00" * 100)
    controls = [] if case == "no control" else [ControlTube("NC", "negative_control", medium)]
    metrics = _metrics(panel, "test", test, controls)
    call, lod = metrics["microbial_call"], metrics["microbial_lod_per_ml"]
    assert call.value is None and lod.value is None
    assert call.status != "ok" and call.reason == lod.reason
    expected = {
        "no control": "microbes_per_ml needs the lot's negative control, and the lot has none.",
        "control without volume": "the negative control NC: microbes_per_ml: unit NC has no acquired volume",
        "unreadable control": (
            "microbes_per_ml needs the lot's negative control, which could not be used: unit NC:"
        ),
        "test without volume": "microbes_per_ml: unit MIC has no acquired volume",
    }[case]
    assert call.reason.startswith(expected), call.reason


def test_the_negative_control_itself_gets_no_call(panel: Path, tmp_path: Path):
    medium = _tube(tmp_path / "medium.fcs", microbes=4, noise=300, seed=1)
    metrics = _metrics(panel, "negative_control", medium)
    assert "microbial_call" not in metrics and metrics["microbes_per_ml"].value == pytest.approx(80.0)


def test_a_contaminated_tube_listed_as_its_own_sterile_medium_is_no_control(panel: Path, tmp_path: Path):
    # 2×10⁴ microbes/mL, and a byte-identical copy of the tube named as the run's medium control
    test = _tube(tmp_path / "test.fcs", microbes=1000, noise=3000, seed=2)
    copy = tmp_path / "medium.fcs"
    copy.write_bytes(test.read_bytes())
    metrics = _metrics(panel, "test", test, [ControlTube("NC", "negative_control", copy)])
    assert metrics["microbes_per_ml"].value == pytest.approx(2.0e4)
    call = metrics["microbial_call"]
    assert call.value is None and call.status == "missing_control"
    assert f"{copy}: holds the same bytes as the tube under test, {test}" in (call.reason or "")
    # its twin with a real medium control: the contamination is detected
    medium = _tube(tmp_path / "real_medium.fcs", microbes=4, noise=3000, seed=1)
    twin = _metrics(panel, "test", test, [ControlTube("NC", "negative_control", medium)])
    assert twin["microbial_call"].value == "DETECTED"


def _old_threshold(control: int, scale: float) -> int:
    """main's rule before issue 17: detected above the 95 % upper bound of the control's mean."""
    return int(upper_bound(control) * scale) + 1


def _false_detected_rate(background: float, threshold_of, scale: float = 1.0) -> float:
    """Exact P(DETECTED) of a sterile tube: both tubes Poisson at the same rate per mL, summed over c."""
    controls = np.arange(int(background + 12 * np.sqrt(background) + 30))
    weights = poisson.pmf(controls, background)
    detected = [poisson.sf(threshold_of(int(c)) - 1, background * scale) for c in controls]
    return float(np.dot(weights, detected))


def test_the_issues_ten_percent_of_sterile_tubes_at_40_background_events_is_now_at_most_alpha():
    # issue 17 item 5: the upper-bound rule called 10 % of sterile tubes DETECTED at 40 events
    assert _false_detected_rate(40.0, lambda c: _old_threshold(c, 1.0)) == pytest.approx(0.10, abs=0.005)
    # the exact conditional test holds α = 0.01 at every background level and volume ratio
    for scale in (1.0, 2.0, 0.5):
        share = scale / (1 + scale)
        for background in (0.5, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0):
            rate = _false_detected_rate(
                background, lambda c, share=share: critical_count(c, share, 0.01), scale
            )
            assert rate <= 0.01, (scale, background, rate)


def test_the_critical_count_is_where_the_p_value_crosses_alpha():
    for control in (0, 1, 4, 40, 400):
        k = critical_count(control, 0.5, 0.01)
        assert conditional_p_value(k, control, 0.5) <= 0.01 < conditional_p_value(k - 1, control, 0.5)
    # an empty medium: 7 events in the test are detected (0.5⁷ = 0.0078), 6 are not (0.0156)
    assert critical_count(0, 0.5, 0.01) == 7
    assert conditional_p_value(0, 10, 0.5) == 1.0


def test_a_panels_alpha_and_detection_probability_are_used(panel: Path, tmp_path: Path):
    text = panel.read_text().replace(
        "detection: {metric: microbes_per_ml}",
        "detection: {metric: microbes_per_ml, alpha: 0.05, detection_probability: 0.9}",
    )
    panel.write_text(text)
    medium = _tube(tmp_path / "medium.fcs", microbes=4, noise=300, seed=1)
    test = _tube(tmp_path / "test.fcs", microbes=12, noise=300, seed=2)
    metrics = _metrics(panel, "test", test, [ControlTube("NC", "negative_control", medium)])
    call = metrics["microbial_call"]
    # 12 against 4: p = 0.0384, DETECTED at α = 0.05 (it is not at the default 0.01)
    assert call.value == "DETECTED" and call.evidence["alpha"] == 0.05
    k = call.evidence["detection_threshold_events"]
    assert k == critical_count(4, 0.5, 0.05) == 12
    assert metrics["microbial_lod_per_ml"].value == pytest.approx((mean_detected(k, 0.9) - 4) / 0.05)
