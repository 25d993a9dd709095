"""The sequencing sterility calls' operating characteristics: the simulation validate-method runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rapidrelease.validation.sterility_characteristics import (
    CURVES,
    N_BACKGROUND,
    SCENARIOS,
    detection_curve,
    false_fail,
    lod95_off_curve,
)


def test_sterile_lots_sharing_300_reagent_taxa_with_their_controls_are_not_failed() -> None:
    shallow = SCENARIOS[-1]
    seen: list[tuple[int, int]] = []

    def main_rule(test: np.ndarray, controls: list[np.ndarray]) -> bool:
        # issue 17's z ≥ 3 rule against two controls fails essentially every such lot
        seen.append((test.size, len(controls)))
        rpm = np.array([1e6 * c / shallow.control_fragments for c in controls])
        z = (1e6 * test / shallow.test_fragments - rpm.mean(axis=0)) / np.maximum(rpm.std(axis=0, ddof=1), 1)
        return bool(((test >= 3) & (z >= 3)).any())

    result = false_fail(shallow, 6, np.random.default_rng(17), compare=main_rule)
    assert seen == [(N_BACKGROUND, 2)] * 6
    assert (result.fails, result.compared) == (0, 6)
    # no lot failed of 6 proves little: the Wilson bound says so
    assert result.upper95 == pytest.approx(0.390, abs=0.001)


def test_a_detection_curve_reaches_certainty_and_reports_an_lod_above_its_floor() -> None:
    shallow = CURVES[1]
    assert shallow.volume_ml == 10.0
    result = detection_curve(shallow, 3, np.random.default_rng(17))
    # 40 CFU/mL in 10 mL read at 10 RPM per CFU/mL: detected in every lot; 1 CFU/mL in none
    assert result.detected[0] == 0.0 and result.detected[-1] == 1.0
    assert result.reported_lod is not None and result.reported_lod > 3.0 / shallow.volume_ml
    assert result.compared is None


def test_the_lod95_is_read_off_the_curve_log_linearly() -> None:
    assert lod95_off_curve((1.0, 10.0), (0.5, 1.0)) == pytest.approx(10**0.9)
    assert lod95_off_curve((1.0, 10.0), (0.96, 1.0)) == 1.0
    assert lod95_off_curve((1.0, 10.0), (0.1, 0.5)) is None
    assert math.isfinite(lod95_off_curve((2.0, 4.0), (0.95, 0.95)) or math.nan)
