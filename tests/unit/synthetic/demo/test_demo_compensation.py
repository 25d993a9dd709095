"""Compensating a demo file with its own $SPILLOVER recovers the simulated dye amounts.

Each check is paired with the same computation using the transposed matrix, the classic mistake of
reading $SPILLOVER column-wise: the check must fail for it, so a simulator that applied spillover in
the wrong direction could not pass.
"""

from __future__ import annotations

from pathlib import Path

import flowkit
import numpy as np
import polars as pl
import pytest

from rapidrelease.synthetic.demo.lots import DEMO_LOTS
from rapidrelease.synthetic.demo.panel import FLUORESCENCE, SPILLOVER
from rapidrelease.synthetic.demo.simulate import DEFAULT_SEED, simulate_tube


def _compensated(path: Path, matrix: flowkit.Matrix | str | None = None) -> np.ndarray:
    """(n_events, 11) compensated events; ``None`` means the file's own $SPILLOVER."""
    sample = flowkit.Sample(path)
    sample.apply_compensation(sample.metadata["spillover"] if matrix is None else matrix)
    return sample.get_events(source="comp")


@pytest.fixture(scope="module")
def demo_001(demo_dir: Path, fcs_paths: dict[str, Path]) -> dict[str, object]:
    path = fcs_paths["DEMO-001"]
    return {
        "path": path,
        "raw": flowkit.Sample(path).get_events(source="raw"),
        "comp": _compensated(path),
        "transposed": _compensated(path, flowkit.Matrix(SPILLOVER.T.copy(), list(FLUORESCENCE))),
        "labels": pl.read_parquet(demo_dir / "DEMO-001" / "events_truth.parquet"),
    }


def _median_gap(events: np.ndarray, column: int, a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(events[a, column]) - np.median(events[b, column]))


def test_car_bright_cells_are_pe_negative_after_compensation(demo_001: dict) -> None:
    """CAR+ CCR7− T cells look PE-positive raw (FITC spills ~20 % into PE) and are PE-negative compensated."""
    labels: pl.DataFrame = demo_001["labels"]
    t_cell = ((labels["kind"] == "live") & labels["cd3"].fill_null(False)).to_numpy()
    car = labels["car"].fill_null(False).to_numpy()
    ccr7_neg = ~labels["ccr7"].fill_null(True).to_numpy()
    car_pos, car_neg = t_cell & car & ccr7_neg, t_cell & ~car & ccr7_neg
    pe = 4  # YG586-A, the CCR7 detector

    assert _median_gap(demo_001["raw"], pe, car_pos, car_neg) > 500
    assert abs(_median_gap(demo_001["comp"], pe, car_pos, car_neg)) < 50
    assert _median_gap(demo_001["transposed"], pe, car_pos, car_neg) > 500


def test_compensation_recovers_dye_amounts_of_bright_events(demo_001: dict) -> None:
    """Compensated minus autofluorescence is the simulated dye amount within 2 % (median, bright events)."""
    tube = simulate_tube(DEMO_LOTS[0], DEFAULT_SEED)
    # The committed file holds exactly these events (Time aside, which FlowKit scales by $TIMESTEP).
    np.testing.assert_array_equal(tube.events[:, :10], demo_001["raw"][:, :10].astype(np.float32))
    af = tube.autofluorescence @ np.linalg.inv(SPILLOVER)
    transposed_af = tube.autofluorescence @ np.linalg.inv(SPILLOVER.T)
    bright = tube.dye > 3000
    worst_right, worst_transposed = 0.0, 0.0
    for j in range(len(FLUORESCENCE)):
        rows = bright[:, j]
        right = np.median((demo_001["comp"][rows, 3 + j] - af[rows, j]) / tube.dye[rows, j])
        wrong = np.median((demo_001["transposed"][rows, 3 + j] - transposed_af[rows, j]) / tube.dye[rows, j])
        worst_right = max(worst_right, abs(right - 1))
        worst_transposed = max(worst_transposed, abs(wrong - 1))
    assert worst_right < 0.02
    assert worst_transposed > 0.05
