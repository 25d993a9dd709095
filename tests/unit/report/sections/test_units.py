"""A unit's section: its record read as every stage reads it, or the sentence why it cannot be."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rapidrelease.records import Acquisition, FileHash, FileRef, Metric, UnitRecord, UnitSummary, write_record
from rapidrelease.report.sections.units import unit_view

SHA = "ab" * 32


def _summary(error: str | None = None) -> UnitSummary:
    return UnitSummary(
        "PHENO",
        "phenotype",
        "test",
        None,
        "ok" if error is None else "error",
        error,
        (FileHash("data/L.fcs", SHA, 1322609), FileHash("config/panels/p.yaml", SHA, 2337)),
        Acquisition("2026-11-24T10:02:11", "2026-11-24T10:02:31", "LSRFortessa"),
    )


def _record(folder: Path) -> Path:
    record = UnitRecord(
        "measure",
        "L",
        "PHENO",
        "phenotype",
        "test",
        inputs=(
            FileRef("fcs", "data/L.fcs", SHA, 1322609),
            FileRef("panel", "config/panels/p.yaml", SHA, 2337),
        ),
        evidence={"compensation": "the tube's own $SPILLOVER"},
        metrics={"viability_pct": Metric(88.1, "%", "percent")},
    )
    write_record(folder / "metrics.json", record)
    return folder


def test_a_measured_unit_shows_its_files_with_the_role_its_record_gives_them_and_its_evidence(
    tmp_path: Path,
) -> None:
    view = unit_view(_summary(), _record(tmp_path / "PHENO"))
    assert [(f.label, f.path) for f in view.inputs] == [
        ("fcs", "data/L.fcs"),
        ("panel", "config/panels/p.yaml"),
    ]
    assert view.unreadable is None and view.compensation == "the tube's own $SPILLOVER"
    assert view.flow is not None and [m.name for m in view.flow.metrics] == ["viability_pct"]
    assert view.sequencing is None


def test_a_record_that_cannot_be_read_is_shown_as_the_sentence_naming_it(tmp_path: Path) -> None:
    path = _record(tmp_path / "PHENO") / "metrics.json"
    path.write_text(path.read_text(encoding="utf-8").replace("88.1", "98.1"), encoding="utf-8")
    view = unit_view(_summary(), path.parent)
    assert (
        view.unreadable
        == f"{path}: its content does not match its seal: it was changed after it was written."
    )
    assert (view.flow, view.compensation, view.spillover) == (None, None, None)
    # the decision's own record of the files is still shown
    assert [f.path for f in view.inputs] == ["data/L.fcs", "config/panels/p.yaml"]


def test_a_unit_the_decision_could_not_measure_shows_its_sentence_and_no_evidence(tmp_path: Path) -> None:
    view = unit_view(_summary("data/L.fcs: file not found."), _record(tmp_path / "PHENO"))
    assert view.error == "data/L.fcs: file not found." and view.flow is None


def test_gate_plots_changed_after_the_record_sealed_them_are_not_shown(tmp_path: Path) -> None:
    folder = tmp_path / "PHENO"
    folder.mkdir()
    plots = folder / "gate_plots.json"
    plots.write_text('{"plots": []}', encoding="utf-8")
    record = UnitRecord(
        "measure", "L", "PHENO", "phenotype", "test",
        outputs=(FileRef("gate plots", str(plots), hashlib.sha256(b'{"plots": []}').hexdigest(), 13),),
        metrics={"viability_pct": Metric(88.1, "%", "percent")},
    )  # fmt: skip
    write_record(folder / "metrics.json", record)
    assert unit_view(_summary(), folder).flow is not None
    # gates redrawn by hand beside an untouched record: the report shows neither
    plots.write_text('{"plots": [{"gate": "a gate nobody measured"}]}', encoding="utf-8")
    view = unit_view(_summary(), folder)
    assert view.flow is None
    assert view.unreadable is not None and view.unreadable.startswith(
        f"{plots}: changed after it was measured"
    )
