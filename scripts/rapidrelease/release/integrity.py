"""Inputs that changed during the run: a decision must rest on the bytes that were measured.

A unit's metrics.json records the SHA-256 of every file it was measured from (the FCS file or read
files, control tubes, a compensation matrix). An instrument that is still writing, a copy step that
replaces a file, or a person who edits one while the pipeline runs can leave a decision resting on
bytes nobody measured. Every recorded input is therefore hashed again just before release.json and
again just before report.html are written; a file that is gone or whose hash differs makes its
unit an error — the lot's attributes that rest on it become INCONCLUSIVE and the lot cannot be a
release candidate until it is measured again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rapidrelease.outputs import sha256_file

__all__ = ["changed_inputs", "with_changed_inputs_as_errors"]


def changed_inputs(inputs: Iterable[Mapping[str, Any]]) -> list[str]:
    """One sentence per input whose file is gone or no longer has its recorded SHA-256.

    ``inputs`` are records of the audit trail (``path``, ``sha256``); one recorded without a hash
    (the file was missing when measured) is already its unit's error and is not checked again.
    """
    problems = []
    for entry in inputs:
        recorded, path = entry.get("sha256"), entry.get("path")
        if not isinstance(recorded, str) or not isinstance(path, str):
            continue
        try:
            now = sha256_file(Path(path))
        except FileNotFoundError:
            problems.append(f"{path}: was removed after it was measured; measure the lot again.")
            continue
        except OSError as exc:
            problems.append(f"{path}: can no longer be read ({exc.strerror or exc}); measure the lot again.")
            continue
        if now != recorded:
            problems.append(
                f"{path}: changed after it was measured (SHA-256 {recorded[:12]}… then, {now[:12]}… now);"
                " measure the lot again."
            )
    return problems


def with_changed_inputs_as_errors(record: dict[str, Any]) -> dict[str, Any]:
    """A unit's metrics.json record, or, when an input changed since, the same record as that error."""
    if record.get("status") == "error":
        return record
    problems = changed_inputs(record.get("inputs") or [])
    if not problems:
        return record
    return {**record, "status": "error", "error": " ".join(problems)}
