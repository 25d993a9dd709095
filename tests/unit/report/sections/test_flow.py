"""A flow tube's evidence as views: metrics with the events behind them, and the single-stain spillover."""

from __future__ import annotations

from pathlib import Path

from rapidrelease.records import Metric, Population, UnitRecord
from rapidrelease.report.sections.flow import SpilloverCell, flow_evidence, spillover_matrix


def test_a_tubes_metrics_leave_calls_and_limits_of_detection_to_the_microbial_block(tmp_path: Path) -> None:
    metrics = {
        "microbes_per_ml": Metric(
            160.0, "events/mL", "concentration", numerator=Population("Microbes", 4), ci95=(43.6, 410.0)
        ),
        "microbial_call": Metric(None, None, "category", "missing_control", "no sterile medium."),
        "microbial_lod_per_ml": Metric(None, "events/mL", "lod", "missing_control", "no sterile medium."),
        "viability_pct": Metric(None, "%", "percent", "insufficient_events", "12 events."),
    }
    record = UnitRecord("measure", "L", "MICRO", "microbial_flow", "test", metrics=metrics)
    flow = flow_evidence(record, tmp_path, "unit-MICRO")
    assert [(m.name, m.value, m.ci, m.status) for m in flow.metrics] == [
        ("microbes_per_ml", "160 events/mL", "43.6–410", None),
        ("viability_pct", "—", "—", "insufficient_events"),
    ]
    assert flow.microbial is not None and flow.microbial.call == "INCONCLUSIVE"
    # an inconclusive call has no tubes to compare and nothing to draw
    assert (flow.microbial.reason, flow.microbial.tubes, flow.microbial.figure) == (
        "no sterile medium.",
        (),
        None,
    )
    assert (flow.gates, flow.populations, flow.potency, flow.lysis) == ([], [], [], [])


def test_the_spillover_matrix_is_shaded_by_size_off_its_diagonal() -> None:
    block = {
        "population": "Cells",
        "positive_fraction": 0.05,
        "applied": True,
        "controls": [{"unit_id": "UNST", "stain": "unstained", "events": 20000, "positive_events": None}],
        "detectors": ["FITC-A", "PE-A"],
        "matrix": [[1.0, 0.2], [0.04, 1.0]],
        "check_against_file": None,
        "problem": None,
    }
    record = UnitRecord("measure", "L", "PHENO", "phenotype", "test", evidence={"single_stains": block})
    matrix = spillover_matrix(record)
    assert matrix is not None and matrix.detectors == ("FITC-A", "PE-A")
    assert matrix.rows[0] == ("FITC-A", (SpilloverCell("1.0000", None), SpilloverCell("0.2000", "0.12")))
    assert matrix.note.startswith(
        "The matrix compensates this tube. Controls: UNST (unstained, 20,000 events)"
    )
    failed = {**block, "detectors": None, "matrix": None, "problem": "too few events."}
    record = UnitRecord("measure", "L", "PHENO", "phenotype", "test", evidence={"single_stains": failed})
    assert spillover_matrix(record) == type(matrix)("too few events.", (), (), "")
    assert spillover_matrix(UnitRecord("measure", "L", "PHENO", "phenotype", "test")) is None
