"""Microbial flow's and potency's operating characteristics, as validate-method states them."""

from __future__ import annotations

import numpy as np
import pytest

from rapidrelease.flow.microbial import critical_count
from rapidrelease.validation.flow_characteristics import (
    critical_counts,
    exact_false_rate,
    lod95_linear,
    microbial_false_detected,
    potency_misclassification,
    reported_pass,
)


def test_the_exact_conditional_test_holds_its_size_at_every_background() -> None:
    table = critical_counts(300, 0.01)
    assert table[10] == critical_count(10, 0.5, 0.01)
    # issue 17: the old rule called 10 % of sterile tubes DETECTED at 40 background events; the exact
    # worst case of the new one over 0.5-80 events is 0.82 %
    rates = [exact_false_rate(b, table) for b in (0.5, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)]
    assert max(rates) == pytest.approx(0.0082, abs=5e-4) and max(rates) <= 0.01
    rows = microbial_false_detected((40.0,), 20_000, 0.01, np.random.default_rng(1))
    assert rows[0].exact == pytest.approx(0.0074, abs=5e-4) and rows[0].simulated <= 0.01


def test_lod95_is_interpolated_between_the_levels_around_95_percent() -> None:
    assert lod95_linear((100, 200), (0.90, 1.00)) == pytest.approx(150.0)
    assert lod95_linear((100, 200), (0.5, 0.9)) is None


def test_potency_near_the_limit_and_a_refused_control() -> None:
    # reported ≥ 5.0 % after rounding half-up; a negative net is reported as 0
    assert reported_pass(np.array([4.95, 4.94, -3.0]), 5.0).tolist() == [True, False, False]
    rows = potency_misclassification(
        np.random.default_rng(3), 4_000, (100, 3_000), (2.0, 7.0), 3_000, 5.0, 99.5
    )
    refused = [r for r in rows if r.control_events == 100]
    # a 100-event control cannot hold 10 events above its 99.5th percentile: refused, never a PASS
    assert all((r.passed, r.inconclusive) == (0.0, 1.0) for r in refused)
    two, seven = (r for r in rows if r.control_events == 3_000)
    # issue 17: a true 2 % response read ≥ 5 % in 4.9 % of lots with a 100-event control; now none
    assert two.misclassified(5.0) == 0.0 and seven.passed == 1.0
