"""Decisions as release.json holds them, and the published schema they must follow."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema

from rapidrelease.config.run import RunConfig
from rapidrelease.config.schemas import SCHEMA_DIR
from rapidrelease.records import Release, UnitRecord, seal_of, to_json, write_record
from rapidrelease.release.decision import evaluate_lot

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
