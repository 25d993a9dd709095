"""The records the stages hand each other: one typed contract, validated and sealed in one place.

Every JSON file a stage writes for another stage to read is one of these records:

- a unit record (:class:`UnitRecord`): ``results/<lot>/flow/<unit>/metrics.json`` (stage
  ``measure``), ``results/_measured/reads/<key>/reads.json`` (``gather``, once for every lot
  listing the same read files) and
  ``results/<lot>/reads/<unit>/metrics.json`` (``call``);
- the lot's decision (:class:`rapidrelease.release.record.Release`), ``results/<lot>/release.json``.

Writing (:func:`write_record`) serialises the dataclass in field order and appends a ``seal``: the
SHA-256 of the canonical JSON of everything else in the file (keys sorted, no white space). Reading
(:func:`read_record`) parses strictly (no NaN, no duplicate keys), checks every key's type against
the dataclass, recomputes the seal and checks the record's own consistency (a percentage must follow
from its numerator and denominator and lie in its interval, an ok metric must have a value). A
record that was edited by hand, truncated, written by another version or is inconsistent is a
:class:`~rapidrelease.errors.RecordError` naming the file: its unit becomes an error, never a value.

Each record lists what it was made from (``inputs``: data files and the records of earlier stages,
each with its SHA-256) and the files it was written with (``outputs``), so a reader can check the
chain back to the instrument's bytes (:mod:`rapidrelease.release.integrity`).

The seal detects an edit by a person or a tool that does not know the format. It is no signature:
someone who knows it can recompute it, which is why the consistency checks stand beside it and why
signing a decision is a separate, audited step.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import sys
import traceback
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

import jsonschema

from rapidrelease.config.schemas import SCHEMA_DIR
from rapidrelease.config.vocabulary import (
    ACCEPTED,
    FAIL,
    NOT_ACCEPTED,
    NOT_RELEASABLE,
    PASS,
    RELEASE_CANDIDATE,
)
from rapidrelease.errors import RapidReleaseError, RecordError
from rapidrelease.outputs import dumps_json, sha256_file, write_text

__all__ = [
    "Json",
    "Population",
    "Metric",
    "FileRef",
    "Acquisition",
    "UnitRecord",
    "LotInfo",
    "FileHash",
    "AttributeEvidence",
    "EvidenceFigure",
    "AttributeResult",
    "ResultCounts",
    "StartingMaterial",
    "UnitSummary",
    "Release",
    "OK",
    "ERROR",
    "file_ref",
    "to_json",
    "from_json",
    "seal_of",
    "record_json",
    "write_record",
    "read_record",
    "read_unit_record",
    "read_release",
    "loads_strict",
]

_JSON = "a JSON value"
Json = Annotated[Any, _JSON]
"""A JSON value (null, true/false, a number, text, a list or an object of JSON values): evidence
shown to people whose shape the decision does not depend on. Checked as JSON when read."""

OK, ERROR = "ok", "error"
_SEAL_KEY = "seal"
_TOLERANCE = 1e-9

R = TypeVar("R")


# --- the records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Population:
    """A gated population (``/``-joined gate path, or what a count is of) and its events."""

    population: str
    count: int


@dataclass(frozen=True)
class Metric:
    """One measured quantity of a unit, with what it rests on.

    ``status`` is ``ok`` (``value`` is the measurement) or why there is none (``insufficient_events``,
    ``missing_control``, ``not_computable``, ``invalid_control``, ``not_applicable``), with
    ``reason`` the sentence saying so. ``kind`` says what the value is (``percent`` 0–100,
    ``ratio``, ``count``, ``concentration`` per mL, ``category`` such as DETECTED …) and ``unit`` its
    unit. ``numerator`` and ``denominator`` are the populations a percent or ratio was computed from;
    ``ci95`` its two-sided 95 % confidence interval in the same unit. ``evidence`` holds what else a
    person needs to see the value is right (a background tube, a volume, a control comparison).
    """

    value: float | str | None
    unit: str | None
    kind: str
    status: str = OK
    reason: str | None = None
    numerator: Population | None = None
    denominator: Population | None = None
    ci95: tuple[float, float] | None = None
    description: str | None = None
    detail: str | None = None
    evidence: Mapping[str, Json] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise_json_fields(self)

    def consistency_problem(self) -> str | None:
        """Why the metric contradicts itself, or None.

        An ok metric has a value; a percent or ratio is its numerator over its denominator (a percent
        net of a background: its ``gross`` value is, and the value is gross less the background's, or
        0 when the background is the larger: no response is reported as none);
        an ok numeric value lies inside its interval.
        """
        value = self.value
        if self.status == OK and value is None:
            return "has status ok but no value"
        if isinstance(value, str) and self.kind != "category":
            return f"is the text {value!r}, but a {self.kind} is a number"
        if self.numerator is not None and self.numerator.count < 0:
            return "has a negative numerator count"
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        measured = value
        background = self.evidence.get("background")
        if "gross" in self.evidence:
            gross = self.evidence["gross"]
            if not isinstance(gross, int | float):
                return "has a background but no gross value"
            net = max(0.0, gross - background["value"]) if isinstance(background, Mapping) else None
            if isinstance(net, int | float) and not _close(value, net):
                return f"is {value}, but its gross value less its background is {net}"
            measured = gross
        if self.numerator is not None and self.denominator is not None and self.denominator.count > 0:
            share = self.numerator.count / self.denominator.count
            expected = {"percent": 100.0 * share, "ratio": share}.get(self.kind)
            if expected is not None and not _close(measured, expected):
                return (
                    f"is {measured}, but {self.numerator.count} of {self.denominator.count} events "
                    f"make {expected}"
                )
        if self.ci95 is not None:
            low, high = self.ci95
            if low > high + _TOLERANCE * max(1.0, abs(high)):
                return f"has an interval whose lower bound {low} is above its upper bound {high}"
            if self.status == OK and not (
                low - _TOLERANCE * max(1.0, abs(low)) <= value <= high + _TOLERANCE * max(1.0, abs(high))
            ):
                return f"is {value}, outside its own 95 % interval {low}–{high}"
        return None


def _normalise_json_fields(record: Any) -> None:
    """Hold a record's free-form JSON fields as JSON reads them back (lists, not tuples; dicts), so a
    record written and read again is equal to the one written."""
    for name in _json_fields(type(record)):
        object.__setattr__(record, name, to_json(getattr(record, name)))


@functools.cache
def _json_fields(cls: type) -> tuple[str, ...]:
    hints = _hints(cls)

    def holds_json(hint: Any) -> bool:
        if typing.get_origin(hint) in (dict, Mapping):
            return _is_json(typing.get_args(hint)[1])
        return _is_json(hint)

    return tuple(f.name for f in dataclasses.fields(cls) if holds_json(hints[f.name]))


def _is_json(hint: Any) -> bool:
    return typing.get_origin(hint) is Annotated and _JSON in hint.__metadata__


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE)


@dataclass(frozen=True)
class FileRef:
    """A file a record was made from or written with: its role, path as given, SHA-256 and size.

    ``sha256`` and ``size_bytes`` are None when the file did not exist. ``details`` holds what the
    stage read off the file (an FCS file's version, events and reader warnings).
    """

    role: str
    path: str
    sha256: str | None
    size_bytes: int | None
    details: Mapping[str, Json] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise_json_fields(self)


def file_ref(path: Path, role: str, hashed: bool = True) -> FileRef:
    """The :class:`FileRef` of ``path`` as it is now (None values when it is missing).

    ``hashed=False`` leaves its SHA-256 and size to be filled in by the step that reads the file and
    hashes what it read, so that a large file is not read twice.
    """
    path = Path(path)
    if not hashed or not path.is_file():
        return FileRef(role, str(path), None, None)
    return FileRef(role, str(path), sha256_file(path), path.stat().st_size)


@dataclass(frozen=True)
class Acquisition:
    """When and on what a unit's data were acquired: the instrument's local clock, as written."""

    start: str | None
    end: str | None
    cytometer: str | None


@dataclass(frozen=True)
class UnitRecord:
    """What one stage found for one unit of a lot.

    ``stage`` is ``measure`` (a flow tube gated and its metrics computed), ``gather`` (a sequencing
    unit's classified reads added up) or ``call`` (its contaminants called against the lot's
    controls). ``status`` is ``ok`` or ``error``; ``error`` the one sentence (naming the file and
    the problem) saying why the unit could not be measured, and then ``metrics`` is empty.
    ``evidence`` is what the stage shows a reviewer (the panel, thresholds, calls, checklist …).
    """

    RECORD_TYPE: ClassVar[str] = "unit"
    RECORD_VERSION: ClassVar[int] = 1

    stage: Literal["measure", "gather", "call"]
    lot_id: str
    unit_id: str
    assay: str
    role: str
    status: Literal["ok", "error"] = OK
    error: str | None = None
    inputs: tuple[FileRef, ...] = ()
    outputs: tuple[FileRef, ...] = ()
    acquisition: Acquisition | None = None
    evidence: Mapping[str, Json] = field(default_factory=dict)
    metrics: Mapping[str, Metric] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise_json_fields(self)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def failed(self, exc: BaseException, doing: str) -> UnitRecord:
        """This record as not measured because of ``exc``, its metrics dropped.

        A :class:`RapidReleaseError` is a bad input and its sentence is the reason. Anything else is
        a bug: its traceback goes to stderr and the reason says "internal error while ``doing``
        unit …", so that a bug makes this lot INCONCLUSIVE instead of stopping every other lot's run.
        """
        if isinstance(exc, RapidReleaseError):
            message = str(exc)
        else:
            traceback.print_exception(exc, file=sys.stderr)
            message = (
                f"internal error while {doing} unit {self.unit_id} of lot {self.lot_id} "
                f"({type(exc).__name__}: {exc})."
            )
        return dataclasses.replace(self, status=ERROR, error=message, metrics={})


@dataclass(frozen=True)
class LotInfo:
    """The lot as the lot sheet describes it, with its decision window (``deadline`` in ISO 8601)."""

    lot_id: str
    product: str
    spec: str
    spec_description: str
    site: str
    collected_at: str
    deadline_hours: float
    deadline: str
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileHash:
    """A file a unit was measured from, as the decision saw it: path, SHA-256, size (None if missing)."""

    path: str | None
    sha256: str | None
    size_bytes: int | None


@dataclass(frozen=True)
class EvidenceFigure:
    """One number a call was decided on: ``label`` says what it is (``test events``), ``value`` is in
    ``unit`` (None for a plain number such as a p-value), ``ci95`` its 95 % interval if it has one."""

    label: str
    value: float | str
    unit: str | None = None
    ci95: tuple[float, float] | None = None


@dataclass(frozen=True)
class AttributeEvidence:
    """What an attribute's judgement rests on: the unit, the metric as measured and its input files;
    for a category (DETECTED, NOT_DETECTED) the ``figures`` it was decided on."""

    unit_id: str | None
    metric_status: str | None
    measured_value: float | str | None
    numerator: Population | None
    denominator: Population | None
    ci95: tuple[float, float] | None
    inputs: tuple[FileHash, ...] = ()
    figures: tuple[EvidenceFigure, ...] = ()


@dataclass(frozen=True)
class AttributeResult:
    """One attribute of a specification judged: PASS, FAIL or INCONCLUSIVE with the reason.

    ``value`` is the measured value rounded to the specification's ``decimals`` (None when
    INCONCLUSIVE), ``value_text`` as written in the report; ``comparison`` with ``limit`` (or
    ``lower`` and ``upper``) is the criterion, ``criterion`` its text. ``validity`` marks a criterion
    that judges the run rather than the product; ``covers`` says what a limit of detection is claimed
    for (None for any other attribute).
    """

    name: str
    description: str
    assay: str
    metric: str
    role: str
    unit_id: str | None
    value: float | str | None
    value_text: str | None
    unit: str
    criterion: str
    comparison: str
    limit: float | str | None
    lower: float | None
    upper: float | None
    decimals: int | None
    validity: bool
    covers: str | None
    result: Literal["PASS", "FAIL", "INCONCLUSIVE"]
    reason: str
    evidence: AttributeEvidence


@dataclass(frozen=True)
class ResultCounts:
    """How many attributes have each result."""

    PASS: int
    FAIL: int
    INCONCLUSIVE: int

    @classmethod
    def of(cls, attributes: tuple[AttributeResult, ...]) -> ResultCounts:
        results = [a.result for a in attributes]
        return cls(
            results.count(PASS), results.count(FAIL), len(results) - results.count(PASS) - results.count(FAIL)
        )


@dataclass(frozen=True)
class StartingMaterial:
    """The lot's starting material judged against its own specification: ACCEPTED, NOT_ACCEPTED or
    INCONCLUSIVE."""

    spec: str
    spec_description: str
    status: Literal["ACCEPTED", "NOT_ACCEPTED", "INCONCLUSIVE"]
    status_reason: str
    counts: ResultCounts
    attributes: tuple[AttributeResult, ...]


@dataclass(frozen=True)
class UnitSummary:
    """A unit of the lot as the decision saw it: measured (``ok``) or not, with the reason."""

    unit_id: str
    assay: str
    role: str
    path: str | None
    status: Literal["ok", "error"]
    error: str | None
    inputs: tuple[FileHash, ...]
    acquisition: Acquisition | None


@dataclass(frozen=True)
class Release:
    """A lot's decision record, ``release.json`` (published schema: workflow/schemas/release.schema.json).

    ``status`` is RELEASE_CANDIDATE only when every attribute passes, every unit was measured and
    the starting material (if any) is accepted; NOT_RELEASABLE when an attribute fails or the
    starting material is not accepted; INCONCLUSIVE otherwise. ``audit`` is the only part that may
    differ between runs of the same inputs (times, host, the files' hashes as they were read).
    """

    RECORD_TYPE: ClassVar[str] = "release"
    RECORD_VERSION: ClassVar[int] = 1

    schema_version: str
    lot: LotInfo
    status: Literal["RELEASE_CANDIDATE", "NOT_RELEASABLE", "INCONCLUSIVE"]
    status_reason: str
    counts: ResultCounts
    attributes: tuple[AttributeResult, ...]
    starting_material: StartingMaterial | None
    units: tuple[UnitSummary, ...]
    audit: Mapping[str, Json] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise_json_fields(self)

    def consistency_problem(self) -> str | None:
        """Why the record contradicts itself (its counts, or a status its results do not allow), or None."""
        if self.counts != ResultCounts.of(self.attributes):
            return "its counts do not match its attributes"
        if self.starting_material is not None:
            starting = self.starting_material
            if starting.counts != ResultCounts.of(starting.attributes):
                return "the starting material's counts do not match its attributes"
            if starting.status == ACCEPTED and any(a.result != PASS for a in starting.attributes):
                return "the starting material is ACCEPTED although not every attribute passes"
        if self.status == RELEASE_CANDIDATE:
            if not self.attributes or any(a.result != PASS for a in self.attributes):
                return "it is a RELEASE_CANDIDATE although not every attribute passes"
            if any(u.status != OK for u in self.units):
                return "it is a RELEASE_CANDIDATE although a unit could not be measured"
            if self.starting_material is not None and self.starting_material.status != ACCEPTED:
                return "it is a RELEASE_CANDIDATE although its starting material is not accepted"
        failed = any(a.result == FAIL for a in self.attributes) or (
            self.starting_material is not None and self.starting_material.status == NOT_ACCEPTED
        )
        if failed and self.status != NOT_RELEASABLE:
            return f"it is {self.status} although an attribute fails"
        return None


# --- JSON <-> dataclasses ----------------------------------------------------------------------


def to_json(value: Any) -> Json:
    """``value`` as plain JSON values: dataclasses as objects in field order, tuples as arrays."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} cannot be written to a record")
    return value


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (tuple, list):
        return "a list"
    if origin in (dict, Mapping) or hint is dict:
        return "an object"
    if dataclasses.is_dataclass(hint):
        return "an object"
    return {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(hint, str(hint))


def _shown(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


class _Mismatch(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"key '{where}': {message}" if where else message)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # once per class: the annotations are strings (postponed evaluation), and evaluating them again
    # for every nested record took an evaluate job 3,000 compile() calls. Callers only read the dict.
    return typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]), include_extras=True)


def _decode(hint: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if _is_json(hint):
        _check_json(data, where)
        return data
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if data is None and type(None) in options:
            return None
        failures = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(option, data, where)
            except _Mismatch as exc:
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        raise _Mismatch(where, f"expected {_type_name(hint)}, found {_shown(data)}")
    if origin is Literal:
        if data not in typing.get_args(hint):
            raise _Mismatch(where, f"expected {_type_name(hint)}, found {_shown(data)}")
        return data
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(data, list):
            raise _Mismatch(where, f"expected a list, found {_shown(data)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(data))
        if len(data) != len(args):
            raise _Mismatch(where, f"expected a list of {len(args)}, found {len(data)} items")
        return tuple(
            _decode(a, item, f"{where}[{i}]") for i, (a, item) in enumerate(zip(args, data, strict=True))
        )
    if origin in (dict, Mapping):
        _, value_hint = typing.get_args(hint)
        if not isinstance(data, dict):
            raise _Mismatch(where, f"expected an object, found {_shown(data)}")
        return {k: _decode(value_hint, v, f"{where}.{k}" if where else k) for k, v in data.items()}
    if dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, data, where)
    if hint is bool:
        if not isinstance(data, bool):
            raise _Mismatch(where, f"expected true or false, found {_shown(data)}")
        return data
    if hint is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise _Mismatch(where, f"expected an integer, found {_shown(data)}")
        return data
    if hint is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise _Mismatch(where, f"expected a number, found {_shown(data)}")
        return data
    if hint is str:
        if not isinstance(data, str):
            raise _Mismatch(where, f"expected text, found {_shown(data)}")
        return data
    raise TypeError(f"records cannot hold {hint!r}")


def _check_json(data: Any, where: str) -> None:
    if data is None or isinstance(data, bool | int | str):
        return
    if isinstance(data, float):
        if not math.isfinite(data):
            raise _Mismatch(where, f"{data} is not a number a record may hold")
        return
    if isinstance(data, list):
        for i, item in enumerate(data):
            _check_json(item, f"{where}[{i}]")
        return
    if isinstance(data, dict):
        for k, v in data.items():
            _check_json(v, f"{where}.{k}" if where else k)
        return
    raise _Mismatch(where, f"{type(data).__name__} is not a JSON value")


def _decode_dataclass(cls: type[R], data: Any, where: str) -> R:
    if not isinstance(data, dict):
        raise _Mismatch(where, f"expected an object, found {_shown(data)}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        at = f"{where}.{unknown[0]}" if where else unknown[0]
        raise _Mismatch(at, "is not a key of this record")
    values = {}
    for name, f in fields.items():
        at = f"{where}.{name}" if where else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _Mismatch(at, "is missing")
            continue
        values[name] = _decode(hints[name], data[name], at)
    return cls(**values)


def from_json(cls: type[R], data: Any) -> R:
    """Build a record of dataclass ``cls`` from parsed JSON, checking every key's type.

    Raises :class:`ValueError` naming the first key that does not fit.
    """
    try:
        return _decode_dataclass(cls, data, "")
    except _Mismatch as exc:
        raise ValueError(str(exc)) from None


# --- writing and reading -----------------------------------------------------------------------


def _canonical(data: Mapping[str, Json]) -> bytes:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def seal_of(data: Mapping[str, Json]) -> str:
    """The SHA-256 of a record's canonical JSON (sorted keys, no white space), its seal left out."""
    return hashlib.sha256(_canonical({k: v for k, v in data.items() if k != _SEAL_KEY})).hexdigest()


def _header(record: Any) -> dict[str, Json]:
    return {"record_type": type(record).RECORD_TYPE, "record_version": type(record).RECORD_VERSION}


def record_json(record: Any) -> dict[str, Json]:
    """The record as the JSON object written to its file, header and seal included."""
    body = {**_header(record), **to_json(record)}  # type: ignore[dict-item]
    body[_SEAL_KEY] = {"sha256": seal_of(body)}
    return body


def write_record(path: Path, record: Any) -> str:
    """Write ``record`` (a record dataclass) sealed and atomically; return the file's SHA-256."""
    text = dumps_json(record_json(record))
    write_text(Path(path), text)
    return hashlib.sha256(text.encode()).hexdigest()


def loads_strict(text: str, what: str = "record") -> Any:
    """JSON ``text`` parsed strictly, as every rapidrelease file is read: a key twice in one object
    or a NaN/Infinity (which ``json`` accepts by default) raise ValueError naming it, so a file
    edited into ambiguity is refused, not read one way. ``what`` names the file's kind in that
    message."""

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number a {what} may hold")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in data:
                raise ValueError(f"key {key!r} appears twice")
            data[key] = value
        return data

    return json.loads(text, parse_constant=reject_constant, object_pairs_hook=no_duplicates)


def parse_record_text(path: Path, text: str, cls: type[R]) -> tuple[R, dict[str, Any]]:
    """Parse a record file's text (see :func:`read_record`); also return the raw object."""
    try:
        data = loads_strict(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: is not a complete JSON record (line {exc.lineno}: {exc.msg}).") from None
    except ValueError as exc:
        raise RecordError(f"{path}: is not a valid record ({exc}).") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: is not a JSON object.")
    expected = {"record_type": cls.RECORD_TYPE, "record_version": cls.RECORD_VERSION}  # type: ignore[attr-defined]
    for key, value in expected.items():
        if data.get(key) != value:
            raise RecordError(
                f"{path}: is not a {cls.RECORD_TYPE} record of version {cls.RECORD_VERSION} "  # type: ignore[attr-defined]
                f"({key} is {_shown(data.get(key))}); it was written by another version or by hand."
            )
    seal = data.get(_SEAL_KEY)
    recorded = seal.get("sha256") if isinstance(seal, dict) else None
    if not isinstance(recorded, str):
        raise RecordError(f"{path}: has no seal, so it was not written by rapidrelease.")
    if seal_of(data) != recorded:
        raise RecordError(
            f"{path}: its content does not match its seal: it was changed after it was written."
        )
    body = {k: v for k, v in data.items() if k not in (_SEAL_KEY, *expected)}
    try:
        record = from_json(cls, body)
    except (ValueError, TypeError) as exc:
        raise RecordError(f"{path}: {exc}.") from None
    return record, data


def read_record(path: Path, cls: type[R]) -> R:
    """Read a sealed record of dataclass ``cls`` from ``path``.

    Raises :class:`~rapidrelease.errors.RecordError` with one sentence naming the file when it is
    missing, unreadable, not complete JSON, of another record type or version, changed since it was
    sealed, or when a key does not have the type the record declares.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordError(f"{path}: file not found.") from None
    except UnicodeDecodeError:
        raise RecordError(f"{path}: is not UTF-8 text.") from None
    except OSError as exc:
        raise RecordError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    return parse_record_text(path, text, cls)[0]


def read_unit_record(
    path: Path,
    stage: str | tuple[str, ...] | None = None,
    lot_id: str | None = None,
    unit_id: str | None = None,
) -> UnitRecord:
    """Read and check a unit record: its seal, its stage, lot and unit, and every metric's consistency.

    ``stage``, ``lot_id`` and ``unit_id``, when given, are what the reader expects; a record of
    another stage, lot or unit is a :class:`~rapidrelease.errors.RecordError` (a file copied into
    the wrong folder). So is a metric that contradicts its own counts or interval.
    """
    record = read_record(path, UnitRecord)
    stages = (stage,) if isinstance(stage, str) else stage
    if stages is not None and record.stage not in stages:
        raise RecordError(f"{path}: is the record of stage {record.stage!r}, not {' or '.join(stages)}.")
    for key, expected in (("lot_id", lot_id), ("unit_id", unit_id)):
        if expected is not None and getattr(record, key) != expected:
            raise RecordError(
                f"{path}: is the record of {key.removesuffix('_id')} {getattr(record, key)!r}, "
                f"not {expected!r}; it was copied from another result folder."
            )
    if record.status == ERROR and not record.error:
        raise RecordError(f"{path}: has status error but no error sentence.")
    if record.status == OK and record.error:
        raise RecordError(f"{path}: has status ok and an error sentence.")
    for name, metric in record.metrics.items():
        problem = metric.consistency_problem()
        if problem is not None:
            raise RecordError(f"{path}: metric {name} {problem}, so the record is not consistent.")
    return record


def read_release(path: Path) -> Release:
    """Read and check a lot's ``release.json``: its seal, the published schema, and that its status
    follows from its own results (a record edited to show a release candidate is refused)."""
    path = Path(path)
    record = read_record(path, Release)
    problem = record.consistency_problem()
    if problem is not None:
        raise RecordError(f"{path}: {problem}, so the record is not consistent.")
    errors = sorted(_release_validator().iter_errors(record_json(record)), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "the top level"
        raise RecordError(f"{path}: does not follow the release schema at {where} ({errors[0].message}).")
    return record


@functools.cache
def _release_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / "release.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)
