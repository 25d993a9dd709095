"""Release specifications: quality attributes, their acceptance criteria, and how a value is judged.

A specification (``config/specs.yaml``) names, for each quality attribute, the assay and metric
that measure it, a comparison (``>=``, ``>``, ``<=``, ``<``, ``between`` inclusive, ``equals``) and
its limit(s). The measured value is first rounded half-up to the reportable number of decimals
and the rounded value is compared with the limit, as USP General Notices 7.20 (Rounding Rules)
requires: "the observed or calculated values shall be rounded off to the number of decimal places
that is in agreement with the limit expression" -- by default the decimals written in the limit
(``70`` -> 0, ``4.0`` -> 1), or the attribute's ``decimals``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import Any

from rapidrelease.config.schemas import (
    in_document_order,
    load_schema,
    problems_error,
    schema_problems,
    show_value,
)
from rapidrelease.config.vocabulary import FAIL, LOD_METRIC, PASS, READS_ASSAYS
from rapidrelease.config.yaml_files import load_yaml

__all__ = [
    "COMPARISONS",
    "Attribute",
    "Spec",
    "Judgement",
    "load_specs",
    "specs_from_data",
    "round_half_up",
    "reportable_text",
    "written_decimals",
    "value_problem",
    "judge",
    "with_unit",
]

COMPARISONS = (">=", ">", "<=", "<", "between", "equals")
_ORDERED = (">=", ">", "<=", "<")
_SYMBOL = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}
# The relation that holds when the criterion fails, for the FAIL reason ("65.2 % < 70 %").
_NEGATION = {">=": "<", ">": "≤", "<=": ">", "<": "≥"}

Limit = Decimal | str


@dataclass(frozen=True)
class Attribute:
    """One quality attribute of a specification and its acceptance criterion.

    ``limit`` is a Decimal for the ordered comparisons and numeric ``equals``, or a category (text)
    for ``equals``; ``lower``/``upper`` are set for ``between`` only. ``decimals`` is the number of
    decimals of the reportable value (None for a categorical criterion). ``unit`` is the value's
    unit as printed (``"%"``, or ``""`` for a ratio). The metric is read from the lot's unit of
    ``assay`` with ``role`` (``test`` by default), or from the unit ``unit_id`` when it is given.
    ``validity`` marks an assay-validity criterion (it judges the run, not the product).
    ``covers`` is, for a limit of detection, what it is claimed for: ``("spike",)``,
    ``("checklist",)`` or the checklist organisms by name (:data:`LOD_COVERAGE`).
    ``share`` says the attribute may leave the site in a de-identified package
    (:mod:`rapidrelease.share`); ``share_bounds`` (lowest, highest, in ``unit``) clip its values for
    differentially private aggregates (None: no private aggregate of its values can be made).
    """

    name: str
    assay: str
    metric: str
    comparison: str
    limit: Limit | None = None
    lower: Decimal | None = None
    upper: Decimal | None = None
    decimals: int | None = 0
    unit: str = ""
    description: str = ""
    role: str = "test"
    unit_id: str | None = None
    validity: bool = False
    covers: tuple[str, ...] = ()
    share: bool = False
    share_bounds: tuple[float, float] | None = None

    @property
    def categorical(self) -> bool:
        """True when the criterion is a category (``equals`` with a text limit)."""
        return isinstance(self.limit, str)

    def criterion_text(self) -> str:
        """The criterion for people, e.g. ``≥ 70 %``, ``0.5–4.0``, ``NOT_DETECTED``."""
        if self.comparison == "between":
            return with_unit(f"{_plain(self.lower)}–{_plain(self.upper)}", self.unit)
        if self.comparison == "equals" and self.categorical:
            return str(self.limit)
        symbol = "=" if self.comparison == "equals" else _SYMBOL[self.comparison]
        return f"{symbol} {with_unit(_plain(self.limit), self.unit)}"

    def coverage_text(self) -> str | None:
        """What a limit of detection is claimed for, in words; None for any other attribute."""
        if not self.covers:
            return None
        if self.covers == ("spike",):
            return "the organism spiked into the positive control"
        if self.covers == ("checklist",):
            return f"every organism of the {self.assay} checklist"
        return ", ".join(self.covers)

    def criterion_record(self) -> dict[str, Any]:
        """The criterion in machine form, keyed as in specs.yaml (JSON-ready)."""
        return {
            "comparison": self.comparison,
            "limit": self.limit if self.categorical else _json_number(self.limit),
            "lower": _json_number(self.lower),
            "upper": _json_number(self.upper),
            "decimals": self.decimals,
        }


@dataclass(frozen=True)
class Spec:
    """A named specification: its attributes in the order they are evaluated and reported."""

    name: str
    description: str
    attributes: tuple[Attribute, ...]


@dataclass(frozen=True)
class Judgement:
    """A value compared with its criterion: PASS or FAIL, the reportable value and the reason."""

    result: str
    value: int | float | str
    value_text: str
    reason: str


def with_unit(text: str, unit: str) -> str:
    """``text`` followed by its unit, separated by a space (SI style: ``70 %``), or alone."""
    return f"{text} {unit}" if unit else text


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _plain(value: Decimal | str | None) -> str:
    """A limit as written: ``70``, ``4.0``; one written with an exponent (``1.0e6``) as ``1.0×10⁶``."""
    if not isinstance(value, Decimal):
        return str(value)
    if value.as_tuple().exponent > 0:
        mantissa, exponent = f"{value:E}".split("E")
        digits = len(value.as_tuple().digits)
        mantissa = f"{float(mantissa):.{max(digits - 1, 0)}f}"
        return f"{mantissa}×10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    return format(value, "f")


def _json_number(value: Decimal | None) -> int | float | None:
    """A Decimal as a JSON number that prints as written: ``70`` -> 70, ``4.0`` -> 4.0."""
    if value is None:
        return None
    if value.as_tuple().exponent >= 0:
        return int(value)
    return float(value)


def written_decimals(value: Decimal) -> int:
    """How many decimals ``value`` was written with (``70`` -> 0, ``4.0`` -> 1, ``0.50`` -> 2); a
    limit written with an exponent counts its mantissa's digits, so that it is negative where the
    last digit written is left of the point (``1.0e6`` -> -5: to the hundred thousand, as USP
    General Notices 7.20 reads ``1.0 × 10⁶``)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def reportable_text(value: int | float, decimals: int) -> str:
    """``value`` rounded half-up to ``decimals`` and written as a limit with those decimals is:
    ``88.1``, or with an exponent when ``decimals`` is negative (``5.5×10⁶``); for an interval's
    bounds, so that they read in the notation of the value and the limits."""
    return _plain(round_half_up(value, decimals))


def round_half_up(value: int | float | Decimal, decimals: int) -> Decimal:
    """``value`` rounded half-up (away from zero on a tie) to ``decimals`` decimals.

    USP General Notices 7.20: look only at the digit right of the last place kept; below 5 it is
    dropped, 5 or more increases the kept digit by one. A float is taken as its shortest printed
    form (``repr``), i.e. the figure the measuring step reported: 69.95 -> 70.0 at one decimal,
    although the binary double nearest 69.95 is slightly below it.
    """
    exact = (
        value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    )
    # Enough digits for the integer part and the decimals kept, whatever the magnitude.
    context = Context(prec=max(28, exact.adjusted() + decimals + 2), rounding=ROUND_HALF_UP)
    return exact.quantize(Decimal(1).scaleb(-decimals), context=context)


def value_problem(attribute: Attribute, value: Any) -> str | None:
    """Why ``value`` cannot be judged against ``attribute``'s criterion (a phrase), or None if it can."""
    if value is None:
        return "has no value"
    if attribute.categorical:
        if not isinstance(value, str) or not value:
            return f"as {show_value(value)}, but the criterion needs a category such as {attribute.limit}"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"as {show_value(value)}, which is not a number"
    if isinstance(value, float) and not math.isfinite(value):
        return f"as {value}, which is not a finite number"
    return None


def judge(attribute: Attribute, value: int | float | str) -> Judgement:
    """Compare a measured ``value`` (checked by :func:`value_problem`) with the criterion.

    Numbers are rounded half-up to ``attribute.decimals`` first and the rounded value is compared
    (USP General Notices 7.20); ``between`` is inclusive at both ends.
    """
    criterion = attribute.criterion_text()
    if attribute.categorical:
        text = str(value)
        if value == attribute.limit:
            return Judgement(PASS, text, text, f"Result {text}, as required.")
        return Judgement(FAIL, text, text, f"Result {text}, but {attribute.limit} is required.")
    decimals = attribute.decimals if attribute.decimals is not None else 0
    rounded = round_half_up(value, decimals)
    shown = with_unit(_plain(rounded), attribute.unit)
    reportable = _json_number(rounded)
    if attribute.comparison == "between":
        passed = attribute.lower <= rounded <= attribute.upper
        relation = "within" if passed else "outside"
        reason = f"{shown} is {relation} {criterion}."
    elif attribute.comparison == "equals":
        passed = rounded == attribute.limit
        reason = f"{shown} {'=' if passed else '≠'} {with_unit(_plain(attribute.limit), attribute.unit)}."
    else:
        passed = _holds(attribute.comparison, rounded, attribute.limit)
        limit = with_unit(_plain(attribute.limit), attribute.unit)
        if passed:
            reason = f"{shown} {_SYMBOL[attribute.comparison]} {limit}."
        else:
            reason = f"{shown} {_NEGATION[attribute.comparison]} {limit}, so {criterion} is not met."
    return Judgement(PASS if passed else FAIL, reportable, _plain(rounded), reason)


def _holds(comparison: str, value: Decimal, limit: Decimal) -> bool:
    if comparison == ">=":
        return value >= limit
    if comparison == ">":
        return value > limit
    if comparison == "<=":
        return value <= limit
    return value < limit


# ---------------------------------------------------------------------------- loading specs.yaml


def _location(path: Path, keys: tuple[Any, ...]) -> str:
    """``config/specs.yaml, spec 'X', attribute 'y', key 'limit'`` for a key path in the file."""
    parts = [str(path)]
    rest = list(keys)
    if rest[:1] == ["specs"] and len(rest) >= 2:
        parts.append(f"spec '{rest[1]}'")
        rest = rest[2:]
        if rest[:1] == ["attributes"] and len(rest) >= 2:
            parts.append(f"attribute '{rest[1]}'")
            rest = rest[2:]
    if rest:
        parts.append("key '" + ".".join(str(k) for k in rest) + "'")
    return ", ".join(parts)


def _exact(value: Any) -> Any:
    """A number as an exact Decimal (a float from a non-exact loader via its shortest form)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _attribute_problems(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules joining an attribute's keys, which the schema cannot say plainly: (key, phrase)."""
    comparison = raw["comparison"]
    problems: list[tuple[str, str]] = []
    needed = ("lower", "upper") if comparison == "between" else ("limit",)
    unused = ("limit",) if comparison == "between" else ("lower", "upper")
    for key in needed:
        if key not in raw:
            problems.append((key, f"a value is required for comparison '{comparison}'."))
    for key in unused:
        if key in raw:
            problems.append((key, f"is not used with comparison '{comparison}'."))
    numbers = {}
    for key in ("limit", "lower", "upper"):
        value = raw.get(key)
        if key not in raw or (key == "limit" and comparison == "equals" and isinstance(value, str)):
            continue
        if isinstance(value, str):
            problems.append((key, f"{show_value(value)} is not a number."))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((key, f"{value} is not a finite number."))
        else:
            numbers[key] = _exact(value)
    if "lower" in numbers and "upper" in numbers and numbers["lower"] > numbers["upper"]:
        problems.append(("upper", f"{_plain(numbers['upper'])} is below lower ({_plain(numbers['lower'])})."))
    is_lod = raw.get("metric") == LOD_METRIC and raw.get("assay") in READS_ASSAYS
    if is_lod and "covers" not in raw:
        problems.append(
            (
                "covers",
                "a limit of detection must say what it is claimed for: spike (the positive control's "
                "organism), checklist (every compendial organism) or a list of checklist organisms.",
            )
        )
    elif "covers" in raw and not is_lod:
        problems.append(("covers", f"is only used for the metric {LOD_METRIC} of a sequencing assay."))
    bounds = raw["share"].get("bounds") if isinstance(raw.get("share"), Mapping) else None
    if isinstance(bounds, list) and len(bounds) == 2 and not bounds[0] < bounds[1]:
        problems.append(("share", f"bounds {bounds} must be a lowest value below a highest one."))
    if comparison == "equals" and isinstance(raw.get("limit"), str) and "decimals" in raw:
        problems.append(("decimals", "is not used with a category limit."))
    if "decimals" in raw and numbers:
        written = max(written_decimals(v) for v in numbers.values())
        if raw["decimals"] < written:
            problems.append(
                (
                    "decimals",
                    f"{raw['decimals']} is fewer than the {written} decimal{'s' if written != 1 else ''} "
                    "written in the limit; "
                    "the rounded value could not be compared with it.",
                )
            )
    return problems


def _build_attribute(name: str, raw: Mapping[str, Any]) -> Attribute:
    comparison = raw["comparison"]
    limit = raw.get("limit")
    limit = limit if isinstance(limit, str) else _exact(limit)
    lower, upper = _exact(raw.get("lower")), _exact(raw.get("upper"))
    decimals: int | None
    if isinstance(limit, str):
        decimals = None
    elif "decimals" in raw:
        decimals = int(raw["decimals"])
    else:
        decimals = max(written_decimals(v) for v in (limit, lower, upper) if v is not None)
    return Attribute(
        name=name,
        assay=raw["assay"],
        metric=raw["metric"],
        comparison=comparison,
        limit=limit,
        lower=lower,
        upper=upper,
        decimals=decimals,
        unit=raw.get("unit", ""),
        description=raw.get("description", ""),
        role=raw.get("role", "test"),
        unit_id=raw.get("unit_id"),
        validity=bool(raw.get("validity", False)),
        covers=(raw["covers"],) if isinstance(raw.get("covers"), str) else tuple(raw.get("covers", ())),
        share=bool(raw.get("share", False)),
        share_bounds=_share_bounds(raw.get("share")),
    )


def _share_bounds(share: Any) -> tuple[float, float] | None:
    """The clipping bounds of a shared attribute's values, as floats, or None."""
    if not isinstance(share, Mapping):
        return None
    lowest, highest = share["bounds"]
    return float(lowest), float(highest)


def specs_from_data(data: Any, source: Path) -> tuple[dict[str, Spec], tuple[str, ...], list[str]]:
    """Build specifications from parsed specs.yaml content.

    Returns the valid specifications by name, every specification name the file lists (valid or
    not, so that lots naming an invalid one are not also reported as naming an unknown one), and
    the problems, one line each, naming the file, spec, attribute and key.
    """
    located = schema_problems(data, load_schema("specs.schema.yaml"))
    if not isinstance(data, Mapping) or not isinstance(data.get("specs"), Mapping):
        return {}, (), [f"{_location(source, keys)}: {message}" for keys, message in located]
    broken = {keys[:4] for keys, _ in located}
    names = tuple(str(name) for name in data["specs"])
    specs: dict[str, Spec] = {}
    joined: list[tuple[tuple[Any, ...], str]] = []
    for spec_name, raw_spec in data["specs"].items():
        spec_valid = not any(keys[:2] == ("specs", spec_name) for keys, _ in located)
        if not isinstance(raw_spec, Mapping) or not isinstance(raw_spec.get("attributes"), Mapping):
            continue
        attributes = []
        for attr_name, raw in raw_spec["attributes"].items():
            prefix = ("specs", spec_name, "attributes", attr_name)
            if prefix in broken:
                continue
            extra = [((*prefix, key), message) for key, message in _attribute_problems(raw)]
            joined.extend(extra)
            if extra:
                spec_valid = False
                continue
            attributes.append(_build_attribute(attr_name, raw))
        if spec_valid:
            specs[spec_name] = Spec(
                name=spec_name, description=raw_spec.get("description", ""), attributes=tuple(attributes)
            )
    ordered = in_document_order(data, [*located, *joined])
    problems = [f"{_location(source, keys)}: {message}" for keys, message in ordered]
    return specs, names, problems


def load_specs(path: Path) -> dict[str, Spec]:
    """Load and check a specifications file; ConfigError listing every problem, one per line."""
    data, _ = load_yaml(path, exact_decimals=True)
    specs, _, problems = specs_from_data(data, path)
    if problems:
        raise problems_error(problems, path)
    return specs
