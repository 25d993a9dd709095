"""Decisions as release.json holds them, and the published schema they must follow."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema

from rapidrelease.config.run import RunConfig
from rapidrelease.config.schemas import SCHEMA_DIR
from rapidrelease.records import (
    AttributeEvidence,
    AttributeResult,
    LotInfo,
    Population,
    Release,
    ResultCounts,
    UnitRecord,
    seal_of,
    to_json,
    write_record,
)
from rapidrelease.release.decision import RELEASE_SCHEMA_VERSION, evaluate_lot

RELEASE_SCHEMA = json.loads((SCHEMA_DIR / "release.schema.json").read_text(encoding="utf-8"))


def judged(
    run: RunConfig, lot_id: str, records: list[UnitRecord], unreadable: dict[str, str] | None = None
) -> dict[str, Any]:
    """The decision as release.json holds it (without the audit block)."""
    decision = to_json(evaluate_lot(run, lot_id, records, unreadable))
    assert isinstance(decision, dict)
    return decision


def assert_valid_release(document: dict[str, Any]) -> None:
    """``document`` follows the published schema; a decision made in memory is checked as it would be
    written (rapidrelease.records.write_record: header first, seal last)."""
    if "seal" not in document:
        document = {"record_type": "release", "record_version": 1, **document}
        document["seal"] = {"sha256": seal_of(document)}
    validator = jsonschema.Draft202012Validator(
        RELEASE_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def minimal_audit() -> dict[str, Any]:
    """An audit block with every key the schema requires and nothing in it."""
    return {
        "rapidrelease_version": "0",
        "python_version": "3.11",
        "packages": {},
        "workflow": None,
        "files": [],
        "settings": {},
        "command_line": [],
        "run_command": None,
        "host": "h",
        "user": "u",
        "started_at": "2026-11-24T10:00:00.000Z",
        "finished_at": "2026-11-24T10:00:01.000Z",
        "timeline": None,
    }


def sealed_release(path: Path, run: RunConfig, lot_id: str, records: list[UnitRecord]) -> Release:
    """The decision of ``lot_id`` on ``records``, written to ``path`` as the evaluate stage writes it."""
    release = dataclasses.replace(evaluate_lot(run, lot_id, records), audit=minimal_audit())
    write_record(path, release)
    return release


def demo_attribute(
    name: str,
    metric: str,
    value: float | str | None,
    unit: str,
    criterion: str,
    result: str,
    reason: str,
    populations: tuple[tuple[str, int], tuple[str, int]] | None = None,
    ci95: tuple[float, float] | None = None,
    unit_id: str = "PHENO",
) -> AttributeResult:
    """An attribute judged as the demo's release.json holds it (the figures a QA reviewer checks)."""
    numerator, denominator = (Population(*p) for p in populations) if populations else (None, None)
    return AttributeResult(
        name=name,
        description=name,
        assay="phenotype" if unit_id == "PHENO" else "sterility_reads",
        metric=metric,
        role="test",
        unit_id=unit_id,
        value=value,
        value_text=None if value is None else str(value),
        unit=unit,
        criterion=criterion,
        comparison=">=" if isinstance(value, float) else "equals",
        limit=criterion,
        lower=None,
        upper=None,
        decimals=1 if isinstance(value, float) else None,
        validity=False,
        covers=None,
        result=result,  # type: ignore[arg-type]
        reason=reason,
        evidence=AttributeEvidence(unit_id, "ok", value, numerator, denominator, ci95),
    )


def demo_release(lot_id: str, attributes: Sequence[AttributeResult], status: str) -> Release:
    """A decision of a demo lot on ``attributes`` (lot sheet as the demo's), with an empty audit."""
    lot = LotInfo(
        lot_id,
        "CAR-T (demo, synthetic)",
        "CART-DEMO-release",
        "Demo CAR-T release specification",
        "SITE-A" if lot_id == "DEMO-001" else "SITE-B",
        "2026-11-25T09:10:00+01:00",
        24.0,
        "2026-11-26T09:10:00+01:00",
    )
    return Release(
        schema_version=RELEASE_SCHEMA_VERSION,
        lot=lot,
        status=status,  # type: ignore[arg-type]
        status_reason=f"{lot_id} is {status}.",
        counts=ResultCounts.of(tuple(attributes)),
        attributes=tuple(attributes),
        starting_material=None,
        units=(),
        audit=minimal_audit(),
    )


DEMO_001_VIABILITY = demo_attribute(
    "viability",
    "viability_pct",
    88.1,
    "%",
    "≥ 70 %",
    "PASS",
    "88.1 % ≥ 70 %.",
    (("Cells/Singlets/Live", 23217), ("Cells/Singlets", 26349)),
    (87.7170689370956, 88.49862124335455),
)
DEMO_002_CAR = demo_attribute(
    "car_of_cd3",
    "car_pct_cd3",
    8.9,
    "%",
    "≥ 15 %",
    "FAIL",
    "8.9 % < 15 %, so ≥ 15 % is not met.",
    (("Cells/Singlets/Live/CD3pos/CARpos", 1807), ("Cells/Singlets/Live/CD3pos", 20262)),
    (8.533490411752334, 9.31842788224987),
)
STERILITY_NOT_DETECTED = demo_attribute(
    "sterility",
    "contaminant_call",
    "NOT_DETECTED",
    "",
    "NOT_DETECTED",
    "PASS",
    "Result NOT_DETECTED, as required.",
    unit_id="STER",
)
