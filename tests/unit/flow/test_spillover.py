"""Spillover from simulated single stains with a known matrix: the value, which tubes it compensates,
and every control problem, each named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rapidrelease.flow.measure import ControlTube, measure_tube
from rapidrelease.records import UnitRecord

from support.tubes import rectangle_gate, write_gatingml, write_tube

# true spillover: FITC's dye shows 20 % of its signal in PE-A, PE's 4 % in FITC-A
TRUE = np.array([[1.0, 0.20], [0.04, 1.0]])
DETECTORS = ("FITC-A", "PE-A")


def _tube(path: Path, fitc: float, pe: float, seed: int, n: int = 20_000, spill: bool = False) -> Path:
    """Cells with dye amounts (median ``fitc``, ``pe``; 0 = unstained), detector values = dyes · TRUE."""
    rng = np.random.default_rng(seed)
    dyes = np.column_stack([rng.lognormal(np.log(v), 0.4, n) if v else np.zeros(n) for v in (fitc, pe)])
    detected = dyes @ TRUE + rng.normal(200, 30, (n, 2))  # autofluorescence and noise
    keywords = {"$SPILLOVER": "2,FITC-A,PE-A,1,0.3,0.04,1"} if spill else {}
    columns = {"FSC-A": rng.normal(60_000, 6_000, n), "FITC-A": detected[:, 0], "PE-A": detected[:, 1]}
    return write_tube(path, columns, keywords)


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    template = write_gatingml(
        tmp_path / "t.gatingml.xml", rectangle_gate("Cells", {"FSC-A": (30_000, 90_000)})
    )
    for apply in ("when_missing", "always"):
        (tmp_path / f"{apply}.yaml").write_text(
            f"name: two colours\nassay: phenotype\ngating_template: {template}\n"
            f"single_stains: {{population: Cells, apply: {apply}}}\n"
            "metrics:\n  cells: {kind: count, numerator: Cells}\n"
        )
    _tube(tmp_path / "unstained.fcs", 0, 0, seed=1)
    _tube(tmp_path / "fitc.fcs", 20_000, 0, seed=2)
    _tube(tmp_path / "pe.fcs", 0, 20_000, seed=3)
    return tmp_path


def _controls(lab: Path, **changes: str) -> list[ControlTube]:
    stains = {"UNST": "unstained", "FITC": "FITC-A", "PE": "PE-A"} | changes
    files = {"UNST": "unstained.fcs", "FITC": "fitc.fcs", "PE": "pe.fcs"}
    return [ControlTube(u, "compensation", lab / files.get(u, "pe.fcs"), stain=s) for u, s in stains.items()]


def _measure(lab: Path, tube: Path, controls: list[ControlTube], panel: str = "when_missing") -> UnitRecord:
    return measure_tube(
        lot_id="LOT",
        unit_id="PHENO",
        assay="phenotype",
        role="test",
        fcs_path=tube,
        panel_path=lab / f"{panel}.yaml",
        out_dir=lab / "out",
        controls=controls,
    )


def test_the_matrix_of_simulated_single_stains_is_the_true_one(lab: Path):
    record = _measure(lab, _tube(lab / "test.fcs", 5000, 5000, seed=4), _controls(lab))
    assert record.status == "ok", record.error
    block = record.evidence["single_stains"]
    assert block["detectors"] == list(DETECTORS) and block["applied"]
    assert np.abs(np.array(block["matrix"]) - TRUE).max() < 0.005
    assert [c["unit_id"] for c in block["controls"]] == ["UNST", "FITC", "PE"]
    assert block["controls"][1]["positive_events"] == 1000  # the brightest 5 % of 20,000 cells
    assert (
        record.evidence["compensation"]
        == "the spillover matrix computed from the lot's single-stain controls"
    )
    assert block["check_against_file"] is None


def test_a_tube_with_its_own_spillover_keeps_it_unless_the_panel_says_always(lab: Path):
    tube = _tube(lab / "test.fcs", 5000, 5000, seed=4, spill=True)
    record = _measure(lab, tube, _controls(lab))
    assert record.status == "ok", record.error
    assert record.evidence["compensation"] == "the tube's own $SPILLOVER"
    assert not record.evidence["single_stains"]["applied"]
    # the file's FITC → PE of 0.3 against the true 0.2
    check = record.evidence["single_stains"]["check_against_file"]
    assert check["emitter"] == "FITC-A" and check["receiver"] == "PE-A"
    assert check["max_abs_difference"] == pytest.approx(0.1, abs=0.005)
    forced = _measure(lab, tube, _controls(lab), panel="always")
    assert forced.evidence["single_stains"]["applied"]


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({"PE": "FITC-A"}, "compensation controls FITC and PE both stain FITC-A."),
        ({"PE": "unstained"}, "need exactly one unstained control; the lot has 2 (UNST, PE)."),
        (
            {"PE": "APC-A"},
            "compensation control PE: its stain 'APC-A' is not a fluorescence detector of the tubes",
        ),
        ({"DIM": "PE-A", "PE": "unstained"}, "need exactly one unstained control"),
    ],
)
def test_a_tube_that_needs_the_matrix_cannot_be_measured_when_the_controls_are_wrong(lab, controls, message):
    record = _measure(lab, _tube(lab / "test.fcs", 5000, 5000, seed=4), _controls(lab, **controls))
    assert record.status == "error"
    assert record.error.startswith(
        "the spillover matrix this tube needs cannot be computed from the lot's single-stain controls: "
    )
    assert message.rstrip(".") in record.error


def test_a_control_no_brighter_than_unstained_is_named(lab: Path):
    _tube(lab / "pe.fcs", 0, 0, seed=3)  # the PE tube was never stained
    record = _measure(lab, _tube(lab / "test.fcs", 5000, 5000, seed=4), _controls(lab))
    assert "compensation control PE is no brighter than the unstained control in PE-A" in record.error


def test_a_tube_with_its_own_matrix_is_measured_whatever_the_controls(lab: Path):
    tube = _tube(lab / "test.fcs", 5000, 5000, seed=4, spill=True)
    record = _measure(lab, tube, _controls(lab, PE="unstained"))
    assert record.status == "ok"
    assert "need exactly one unstained control" in record.evidence["single_stains"]["problem"]
