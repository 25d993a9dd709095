"""A sequencing unit's evidence as views: reads by the vocabulary's categories, calls and controls."""

from __future__ import annotations

from pathlib import Path

from rapidrelease.config.vocabulary import CATEGORIES
from rapidrelease.records import Metric, UnitRecord
from rapidrelease.report.sections.sequencing import sequencing_evidence


def _unit(role: str, metrics: dict[str, Metric] | None = None, **evidence: object) -> UnitRecord:
    shares = {f"{c}_pct": Metric(100.0 if c == "host" else 0.0, "%", "percent") for c in CATEGORIES}
    counts = {"fragments_total": Metric(2500, "fragments", "count"), **shares}
    return UnitRecord(
        "call", "L", "STER", "sterility_reads", role, evidence=evidence, metrics=counts | (metrics or {})
    )


def test_fragments_are_listed_by_every_category_of_the_vocabulary(tmp_path: Path) -> None:
    evidence = sequencing_evidence(_unit("test"), tmp_path, "unit-STER")
    assert evidence.classification is not None
    named = [r.called_to for r in evidence.classification.categories]
    assert named == [
        {"spike_in": "spike-in", "other": "above every category (root)"}.get(c, c) for c in CATEGORIES
    ]
    assert evidence.classification.categories[0].fragments == 2500
    assert evidence.classification.taxa == ()  # no taxa.tsv beside the record


def test_blocks_show_only_what_the_record_holds(tmp_path: Path) -> None:
    bare = sequencing_evidence(_unit("test"), tmp_path, "unit-STER").calls
    assert bare is not None
    assert (bare.call, bare.invalid, bare.lod, bare.calls, bare.checklist) == (None, None, (), None, None)
    assert (bare.negative_controls, bare.positive_controls) == (None, None)
    record = _unit("test", validity={"valid": False, "problems": []}, controls={"negative": []}, calls=[])
    shown = sequencing_evidence(record, tmp_path, "unit-STER").calls
    assert shown is not None
    assert (shown.invalid, shown.negative_controls, shown.positive_controls) == ((), (), None)
    assert (shown.calls, shown.calls_figure) == ((), None)


def test_a_negative_controls_worst_contaminant_and_a_positive_controls_spike(tmp_path: Path) -> None:
    worst = Metric(None, "RPM", "rate", "not_computable", "no fragments.")
    negative = sequencing_evidence(_unit("negative_control", {"max_contaminant_rpm": worst}), tmp_path, "u")
    assert negative.worst_contaminant is not None and negative.calls is None
    assert (negative.worst_contaminant.rpm, negative.worst_contaminant.status) == (
        "unknown",
        "NOT_COMPUTABLE",
    )
    spike = {
        "organism": "Staphylococcus aureus",
        "concentration": 100.0,
        "unit": "CFU/mL",
        "rpm_per_unit": 1166.7,
    }
    positive = sequencing_evidence(_unit("positive_control", spike=spike), tmp_path, "u")
    assert positive.spike is not None
    assert (positive.spike.concentration, positive.spike.sensitivity) == ("100 CFU/mL", "1170 RPM per CFU/mL")


def test_the_lod_says_whether_it_is_predicted_validated_or_the_sampling_floor(tmp_path: Path) -> None:
    def lod_clause(detail: str) -> str:
        lod = Metric(2.9957, "CFU/mL", "concentration", detail=detail)
        calls = sequencing_evidence(_unit("test", {"lod": lod}), tmp_path, "u").calls
        assert calls is not None
        return calls.lod[0]

    assert lod_clause("predicted LOD95 9.62 CFU/mL, for Staphylococcus aureus").endswith(
        "for the spiked organism (predicted from the positive control)"
    )
    assert lod_clause("empirical LOD95 (the lab's validation table) 4.5 CFU/mL").endswith(
        "(the lab's validated LOD95)"
    )
    assert lod_clause("LOD95 at the sampling floor of the tested volume 3 CFU/mL").endswith(
        "(the sampling floor of the tested volume)"
    )


def test_a_call_shows_its_fold_and_holm_adjusted_p(tmp_path: Path) -> None:
    call = {
        "taxid": 573,
        "name": "Klebsiella pneumoniae",
        "reads": 20,
        "rpm": 100.0,
        "control_rpm": [0.0, 0.0],
    }
    call |= {"fold": None, "p_value": 0.004, "p_adjusted": 0.004, "call": "DETECTED", "reason": "r"}
    calls = sequencing_evidence(_unit("test", calls=[call]), tmp_path, "u").calls
    assert calls is not None and calls.calls is not None
    assert calls.calls[0].background == "∞× · Holm p 0.004"


def test_a_test_with_an_internal_control_shows_its_recovery_and_the_lod_it_set(tmp_path: Path) -> None:
    detail = (
        "predicted LOD95 6.1 CFU/mL, for Staphylococcus aureus, the positive control's spike, at the "
        "sample's own sensitivity: internal control Streptococcus suis at 100 CFU/mL: 400 reads"
    )
    metrics = {
        "lod": Metric(6.1, "CFU/mL", "concentration", detail=detail),
        "spike_recovery": Metric(41.5, "%", "ratio", ci95=(37.6, 45.8)),
    }
    calls = sequencing_evidence(_unit("test", metrics), tmp_path, "u").calls
    assert calls is not None
    assert calls.lod == (
        "Limit of detection (95 %): 6.1 CFU/mL for the spiked organism (predicted from the sample's "
        "internal control)",
        "internal control recovery 41.5 % (95 % CI 37.6–45.8 %) of the positive control's sensitivity",
    )
