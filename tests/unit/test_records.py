"""The record contract: what one stage writes is exactly what the next reads, and an edit is caught."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from rapidrelease.errors import RecordError
from rapidrelease.records import (
    Acquisition,
    FileRef,
    Metric,
    Population,
    UnitRecord,
    read_unit_record,
    record_json,
    seal_of,
    write_record,
)


def _viability(
    value: float = 88.1, numerator: int = 8810, ci95: tuple[float, float] = (87.5, 88.7)
) -> Metric:
    return Metric(
        value,
        "%",
        "percent",
        numerator=Population("Cells/Singlets/Live", numerator),
        denominator=Population("Cells/Singlets", 10_000),
        ci95=ci95,
        evidence={"min_events": 100},
    )


def _record(**changes: Any) -> UnitRecord:
    record = UnitRecord(
        "measure",
        "LOT-1",
        "PHENO",
        "phenotype",
        "test",
        inputs=(FileRef("fcs", "data/pheno.fcs", "a" * 64, 1_300_000, {"n_events": 30_000}),),
        acquisition=Acquisition("2026-11-25T09:41:12", "2026-11-25T09:41:27", "LSRFortessa"),
        evidence={"thresholds": [], "panel": {"name": "CAR-T phenotype"}},
        metrics={"viability_pct": _viability()},
    )
    return dataclasses.replace(record, **changes)


def _resealed(path: Path, edit: Any) -> None:
    """Edit the file's JSON and compute its seal again, as someone who knows the format could."""
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    data["seal"]["sha256"] = seal_of(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_a_record_reads_back_equal_to_what_was_written(tmp_path: Path) -> None:
    record = _record()
    write_record(tmp_path / "metrics.json", record)
    assert read_unit_record(tmp_path / "metrics.json", "measure", "LOT-1", "PHENO") == record
    written = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    # header first, seal last, the record's fields in between in their declared order
    assert list(written)[:3] == ["record_type", "record_version", "stage"]
    assert list(written)[-1] == "seal" and written["seal"]["sha256"] == seal_of(written)
    assert written == record_json(record)


def test_free_form_evidence_is_held_as_json_reads_it_back() -> None:
    # tuples inside evidence would come back as lists: the record holds lists from the start
    record = _record(evidence={"controls": ({"unit_id": "NC", "rpm": (0.0, 1.5)},)})
    assert record.evidence == {"controls": [{"unit_id": "NC", "rpm": [0.0, 1.5]}]}


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        # an analyst raising CAR+ of CD3+ by hand, counts and interval left as they were
        (lambda text: text.replace('"value": 88.1', '"value": 90.1'), "does not match its seal"),
        (lambda text: text[: len(text) // 2], "is not a complete JSON record"),
        (lambda text: text.replace('"value": 88.1', '"value": NaN'), "NaN is not a number a record may hold"),
        (
            lambda text: text.replace('"stage": "measure"', '"stage": "measure", "stage": "call"'),
            "appears twice",
        ),
        (lambda text: text.replace('"record_version": 1', '"record_version": 2'), "another version"),
    ],
)
def test_a_record_changed_after_it_was_written_is_refused_naming_the_file(
    tmp_path: Path, edit: Any, problem: str
) -> None:
    path = tmp_path / "metrics.json"
    write_record(path, _record())
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(RecordError, match=problem) as caught:
        read_unit_record(path)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda d: d["metrics"]["viability_pct"].update(value=90.1, ci95=[89.5, 90.7]),
            "metric viability_pct is 90.1, but 8810 of 10000 events make 88.1",
        ),
        (
            lambda d: d["metrics"]["viability_pct"].update(ci95=[80.0, 85.0]),
            "metric viability_pct is 88.1, outside its own 95 % interval 80.0–85.0",
        ),
        (
            lambda d: d["metrics"]["viability_pct"].update(value=None),
            "metric viability_pct has status ok but no value",
        ),
        (
            lambda d: d["metrics"]["viability_pct"].update(value="88.1"),
            "metric viability_pct is the text '88.1', but a percent is a number",
        ),
        (lambda d: d["metrics"]["viability_pct"]["numerator"].update(count="8810"), "expected an integer"),
        (lambda d: d.update(status="maybe"), "key 'status': expected one of 'ok', 'error'"),
        (lambda d: d.update(reviewed=True), "key 'reviewed': is not a key of this record"),
        (lambda d: d.pop("lot_id"), "key 'lot_id': is missing"),
        (lambda d: d.update(status="error", metrics={}), "has status error but no error sentence"),
        (lambda d: d.update(unit_id="PHENO2"), "is the record of unit 'PHENO2', not 'PHENO'"),
        (lambda d: d.update(stage="call"), "is the record of stage 'call', not measure"),
    ],
)
def test_a_resealed_record_that_contradicts_itself_or_its_place_is_refused(
    tmp_path: Path, edit: Any, problem: str
) -> None:
    path = tmp_path / "metrics.json"
    write_record(path, _record())
    _resealed(path, edit)
    with pytest.raises(
        RecordError, match=problem.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        read_unit_record(path, "measure", "LOT-1", "PHENO")


@pytest.mark.parametrize(
    ("metric", "problem"),
    [
        (_viability(), None),
        # a net percentage: its gross value follows from its counts, the value is gross less background
        (
            dataclasses.replace(
                _viability(value=85.0, ci95=(84.0, 86.0)),
                evidence={"gross": 88.1, "background": {"value": 3.1}},
            ),
            None,
        ),
        (
            dataclasses.replace(
                _viability(value=88.1, ci95=(84.0, 90.0)),
                evidence={"gross": 88.1, "background": {"value": 3.1}},
            ),
            "is 88.1, but its gross value less its background is 85.0",
        ),
        (
            Metric(1.5, "", "ratio", numerator=Population("CD4", 300), denominator=Population("CD8", 200)),
            None,
        ),
        (Metric("DETECTED", None, "category"), None),
        (Metric(None, "%", "percent", "insufficient_events", "only 12 events."), None),
    ],
)
def test_consistency_of_a_metric(metric: Metric, problem: str | None) -> None:
    assert metric.consistency_problem() == problem
