"""A unit's ``metrics.json`` record: what every measuring stage writes and the decision reads.

``lot_id``, ``unit_id``, ``assay`` and ``role`` name the unit; ``status`` is ``"ok"`` or ``"error"``,
with ``error`` the one sentence (naming the file and the problem) that says why it could not be
measured; ``inputs`` lists every file read (:func:`rapidrelease.outputs.input_record`); then the
stage's own evidence; last ``metrics``, each with ``value``, ``unit``, ``kind``, ``status`` and
``reason`` (:mod:`rapidrelease.release.decision` reads them).
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

from rapidrelease.errors import RapidReleaseError

__all__ = ["new_unit_record", "record_failure"]


def new_unit_record(lot_id: str, unit_id: str, assay: str, role: str, **evidence: Any) -> dict[str, Any]:
    """A record with status ok, no inputs or metrics yet, and the stage's ``evidence`` keys in order."""
    return {
        "lot_id": lot_id,
        "unit_id": unit_id,
        "assay": assay,
        "role": role,
        "status": "ok",
        "error": None,
        "inputs": [],
        **evidence,
        "metrics": {},
    }


def record_failure(record: dict[str, Any], exc: Exception, doing: str) -> None:
    """Mark ``record`` as not measured because of ``exc``, dropping its metrics.

    A :class:`RapidReleaseError` is a bad input and its sentence is the reason. Anything else is a
    bug: its traceback goes to stderr and the reason says "internal error while ``doing`` unit …",
    so that a bug makes this lot INCONCLUSIVE instead of stopping every other lot's run.
    """
    record["status"], record["metrics"] = "error", {}
    if isinstance(exc, RapidReleaseError):
        record["error"] = str(exc)
        return
    traceback.print_exception(exc, file=sys.stderr)
    record["error"] = (
        f"internal error while {doing} unit {record['unit_id']} of lot {record['lot_id']} "
        f"({type(exc).__name__}: {exc})."
    )
