"""Reading what a stage recorded for people: a record's free-form JSON (:data:`rapidrelease.records.Json`).

Evidence is shown, never judged. A key that is missing or has another shape shows as nothing, so a
record written before a block of evidence existed is shown with what it holds.
"""

from __future__ import annotations

from collections.abc import Mapping

from rapidrelease.records import Json
from rapidrelease.report.page import is_number

__all__ = ["as_mapping", "as_mappings", "as_number", "as_text"]


def as_mapping(value: Json) -> Mapping[str, Json]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_mappings(value: Json) -> list[Mapping[str, Json]]:
    """The JSON objects ``value`` lists, or none when it is not a list."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def as_number(value: Json) -> int | float | None:
    """``value`` if it is a number (true and false are not), else None."""
    return value if is_number(value) else None


def as_text(value: Json) -> str | None:
    """``value`` as text, None for null."""
    return None if value is None else str(value)
