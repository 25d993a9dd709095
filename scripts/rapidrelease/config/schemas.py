"""The JSON schemas in ``workflow/schemas/`` and their errors in words a lab can act on.

The schemas are the single statement of what config.yaml, the sheets and specs.yaml may hold
(types, allowed values, patterns, required keys); Snakemake's ``validate`` can read the same files.
jsonschema's own messages quote regular expressions and Python reprs, so each error is turned
into one plain phrase here, and the caller puts the file, row and column in front of it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from rapidrelease.errors import ConfigError

__all__ = [
    "SCHEMA_DIR",
    "WORKFLOW_DIR",
    "SAFE_ID_PATTERN",
    "NAME_PATTERN",
    "ISO_TIME_PATTERN",
    "load_schema",
    "schema_problems",
    "show_value",
    "problems_error",
    "in_document_order",
]

# scripts/rapidrelease/config/schemas.py -> the project root holds workflow/ (Snakefile, schemas/).
WORKFLOW_DIR = Path(__file__).resolve().parents[3] / "workflow"
SCHEMA_DIR = WORKFLOW_DIR / "schemas"

# Lot, unit and spec identifiers name folders and appear in shell commands: no '/', no '..',
# no spaces or shell metacharacters, and not starting with '.' or '-'. The only lookahead looks
# at the next character, so the pattern stays exact when used inside a longer path regex (the
# workflow's wildcard_constraints).
SAFE_ID_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,63}$"
# Sampling time: ISO 8601 with a time zone offset (the release window is counted from it).
ISO_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
# Attribute and metric names are identifiers.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"

_PATTERN_HINTS = {
    SAFE_ID_PATTERN: (
        "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'"
    ),
    NAME_PATTERN: "use a letter followed by up to 63 letters, digits or '_'",
    ISO_TIME_PATTERN: (
        "write an ISO 8601 date and time with a time zone offset, e.g. 2026-11-24T08:30:00+01:00"
    ),
}

_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "object": "a mapping of keys to values",
    "array": "a list",
    "boolean": "true or false",
    "null": "empty",
}


@functools.cache
def load_schema(name: str) -> Mapping[str, Any]:
    """The schema ``workflow/schemas/<name>`` (YAML or JSON).

    The schemas ship with the workflow and are checked against JSON Schema 2020-12's metaschema by
    the test suite (``tests/unit/config/test_schemas.py``), not by every job that reads one: that
    check took about 0.1 CPU s of every call and flow job.
    """
    path = SCHEMA_DIR / name
    try:
        # libyaml's loader where PyYAML has it: 4 instead of 35 ms for the schemas every job reads
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        schema = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except OSError:
        raise ConfigError(
            f"{path}: schema not found; rapidrelease reads its schemas from the project's workflow/schemas/."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not a valid JSON schema ({str(exc).splitlines()[0]}).") from None
    if not isinstance(schema, dict):
        raise ConfigError(f"{path}: not a valid JSON schema (it is not a mapping of keywords).")
    return schema


def problems_error(problems: Sequence[str], source: Path) -> ConfigError:
    """One ConfigError for all ``problems`` (one line each), headed by their count when several."""
    if len(problems) == 1:
        return ConfigError(problems[0])
    return ConfigError("\n".join([f"{len(problems)} problems in the configuration ({source}):", *problems]))


def show_value(value: Any) -> str:
    """A value as a person wrote it: text quoted, numbers plain."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "empty"
    return str(value)


def _missing_key(error: ValidationError) -> str:
    # jsonschema reports one error per missing key, naming it as the repr at the start of the message.
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    for key in error.validator_value:
        if key not in instance and error.message.startswith(repr(key)):
            return key
    return str(error.message.split(" ", 1)[0]).strip("'")


def _phrase(error: ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    path = tuple(error.absolute_path)
    kind, expected, value = error.validator, error.validator_value, error.instance
    schema_path = list(error.schema_path)
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        hint = _PATTERN_HINTS.get(expected, f"it must match {expected}")
        return [((*path, value), f"the name is not allowed; {hint}.")]
    if kind == "required":
        return [((*path, _missing_key(error)), "a value is required.")]
    if kind == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        extra = [key for key in value if key not in known]
        allowed = f" (allowed: {', '.join(known)})" if known else ""
        return [((*path, key), f"is not a known key{allowed}.") for key in extra]
    if kind == "enum":
        return [(path, f"{show_value(value)} is not one of {', '.join(str(v) for v in expected)}.")]
    if kind == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        if value is None:
            return [(path, f"is empty; it must be {words}.")]
        return [(path, f"{show_value(value)} is not {words}.")]
    if kind == "pattern":
        hint = _PATTERN_HINTS.get(expected, f"it must match {expected}")
        return [(path, f"{show_value(value)} is not allowed; {hint}.")]
    if kind == "minLength":
        return [(path, "must not be empty.")]
    if kind == "minProperties":
        return [(path, "must list at least one entry.")]
    if kind == "exclusiveMinimum":
        return [(path, f"{show_value(value)} is not greater than {expected}.")]
    if kind == "minimum":
        return [(path, f"{show_value(value)} is less than {expected}.")]
    if kind == "maximum":
        return [(path, f"{show_value(value)} is more than {expected}.")]
    return [(path, error.message.rstrip(".") + ".")]


def schema_problems(instance: Any, schema: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Every way ``instance`` breaks ``schema``, as (location path, phrase), in document order.

    The location path is the sequence of keys down to the offending value (for a missing key, the
    key itself); the phrase is one sentence without its subject, e.g. ``"'x' is not a number."``.
    """
    problems = _non_text_keys(instance, ())
    for error in Draft202012Validator(schema).iter_errors(instance):
        problems.extend(_phrase(error))
    return in_document_order(instance, problems)


def in_document_order(
    instance: Any, located: Sequence[tuple[tuple[Any, ...], str]]
) -> list[tuple[tuple[Any, ...], str]]:
    """``located`` (location path, phrase) pairs sorted as their keys appear in ``instance``, repeats dropped.

    A missing key sorts after its parent's existing keys, so problems read top to bottom.
    """
    order = _document_order(instance)
    unique: list[tuple[tuple[Any, ...], str]] = []
    for item in sorted(located, key=lambda item: (_order_key(item[0], order), item[1])):
        if item not in unique:
            unique.append(item)
    return unique


def _non_text_keys(node: Any, prefix: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """Keys YAML read as numbers, booleans or dates: JSON Schema cannot check them, so they are refused."""
    found: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(node, Mapping):
        for key, child in node.items():
            if not isinstance(key, str):
                found.append(((*prefix, key), "the name must be text; put it in quotes."))
            found.extend(_non_text_keys(child, (*prefix, key)))
    return found


def _document_order(instance: Any) -> dict[tuple[Any, ...], int]:
    """Position of every key path in ``instance`` in reading order (mappings keep insertion order)."""
    order: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, prefix: tuple[Any, ...]) -> None:
        order.setdefault(prefix, len(order))
        if isinstance(node, Mapping):
            for key, child in node.items():
                walk(child, (*prefix, key))
        elif isinstance(node, Sequence) and not isinstance(node, str):
            for index, child in enumerate(node):
                walk(child, (*prefix, index))

    walk(instance, ())
    return order


def _order_key(path: tuple[Any, ...], order: Mapping[tuple[Any, ...], int]) -> tuple[int, ...]:
    # A missing key sorts right after its parent's existing keys, near where it belongs.
    keys = []
    for depth in range(1, len(path) + 1):
        keys.append(order.get(path[:depth], len(order)))
    return tuple(keys)
