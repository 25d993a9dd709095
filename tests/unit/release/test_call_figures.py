"""The numbers behind a categorical call: what release.json shows beside DETECTED / NOT_DETECTED."""

from __future__ import annotations

from rapidrelease.records import EvidenceFigure, Metric, Population
from rapidrelease.release.call_figures import call_figures

MICROBIAL_EVIDENCE = {
    "test": {"unit_id": "MICRO", "metric": "microbes_per_ml", "count": 4, "volume_ml": 0.025},
    "negative_control": {"unit_id": "MICRO-NC", "count": 1, "volume_ml": 0.025, "per_ml": 40.0},
    "method": "exact conditional binomial test of two Poisson counts (one-sided)",
    "test_share": 0.5,
    "p_value": 0.1875,
    "alpha": 0.01,
    "expected_background_events": 1.0,
    "detection_threshold_events": 10,
    "detection_probability": 0.95,
}


def test_microbial_flow_shows_both_tubes_counts_the_critical_count_and_the_lod() -> None:
    metrics = {
        "microbes_per_ml": Metric(
            160.0, "events/mL", "concentration", numerator=Population("Microbes", 4), ci95=(43.59, 409.66)
        ),
        "microbial_lod_per_ml": Metric(588.2, "events/mL", "lod", evidence=MICROBIAL_EVIDENCE),
    }
    call = Metric("NOT_DETECTED", None, "category", evidence=MICROBIAL_EVIDENCE)
    figures = {f.label: f for f in call_figures("microbial_flow", metrics, {}, call)}
    assert figures["test events"] == EvidenceFigure("test events", 4, "events")
    assert figures["test count per mL"] == EvidenceFigure(
        "test count per mL", 160.0, "events/mL", (43.59, 409.66)
    )
    assert figures["sterile-medium control MICRO-NC count per mL"].value == 40.0
    assert figures["detected from (critical count)"].value == 10
    assert figures["one-sided p against the control"].value == 0.1875
    assert figures["limit of detection"] == EvidenceFigure("limit of detection", 588.2, "events/mL")


def test_sterility_lists_each_detected_organism_with_its_reads_rpm_and_holm_p() -> None:
    detected = {
        "taxid": 573,
        "name": "Klebsiella pneumoniae",
        "reads": 400,
        "rpm": 400.0,
        "control_reads": 0,
        "p_adjusted": 1.2e-30,
        "call": "DETECTED",
    }
    background = detected | {"taxid": 562, "name": "Escherichia coli", "reads": 2, "call": "NOT_DETECTED"}
    evidence = {
        "detection_threshold": {"reads": 5, "rpm": 5.0, "taxa_tested": 300, "alpha": 0.01},
        "calls": [background, detected],
    }
    metrics = {
        "fragments_total": Metric(1_000_000, "fragments", "count"),
        "lod": Metric(None, "CFU/mL", "lod", "invalid_control", "the positive control missed its spike"),
    }
    call = Metric("DETECTED", None, "category")
    figures = call_figures("sterility_reads", metrics, evidence, call)
    assert [(f.label, f.value, f.unit) for f in figures] == [
        ("test fragments", 1_000_000, "fragments"),
        ("detection threshold", 5, "reads"),
        ("detection threshold", 5.0, "RPM"),
        ("taxa tested (Holm)", 300, "taxa"),
        ("Klebsiella pneumoniae reads", 400, "reads"),
        ("Klebsiella pneumoniae RPM", 400.0, "RPM"),
        ("Klebsiella pneumoniae negative controls' reads", 0, "reads"),
        ("Klebsiella pneumoniae Holm-adjusted p", 1.2e-30, None),
    ]  # E. coli, not detected, is not a figure of the call; an LOD the run could not give is left out


def test_a_phenotype_category_has_no_figures() -> None:
    assert call_figures("phenotype", {}, {}, Metric("PASS", None, "category")) == ()
