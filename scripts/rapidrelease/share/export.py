"""``rapidrelease share export``: what a platform does, from the site's decisions, without the site.

The lots' sealed decisions (release.json, read through :mod:`rapidrelease.records`) are grouped by
platform (the lot sheet's platform columns, :data:`~rapidrelease.config.vocabulary.PLATFORM_COLUMNS`:
closed vocabularies, so no free text) and, within it, by each attribute the specification marks
``share``. Per group the package holds numbers only (:mod:`.package` lists the tables):

- lots, and how many passed, failed and were inconclusive, with the reason of each failure or
  inconclusive result as a category of a fixed vocabulary (:func:`reason_category`), never its text;
- for a numeric attribute, the count, mean, SD and 5/25/50/75/95 % quantiles of the values as
  measured (as the lots index's trends use them: only judged values, not inconclusive ones);
- the time from collection to result (hours), as the pseudo-attribute ``time_to_result``;
- per platform, the organisms the sterility assays detected, by name from the reference
  taxonomy's species (an allow-list: a name is never copied from a reason's text) and number of lots;
- with ``lot_rows``, one row per lot and attribute: a keyed hash of the lot id (HMAC-SHA256 with the
  site's secret key, which never leaves), the ISO week of collection, result, category and value.

A group of fewer than ``min_lots`` lots is suppressed (left out; only their number is stated). With
a privacy budget ε every aggregate is released through OpenDP (:mod:`.privacy`), quantiles and lot
rows are left out (they would need budget of their own, or none would do), and groups are
suppressed by their noisy count.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rapidrelease.config.run import RunConfig
from rapidrelease.config.schemas import load_schema
from rapidrelease.config.specs import Attribute
from rapidrelease.config.vocabulary import (
    CONTAMINANT_CATEGORIES,
    DETECTED,
    FAIL,
    INCONCLUSIVE,
    NOT_DETECTED,
    PASS,
    PLATFORM_COLUMNS,
    READS_ASSAYS,
)
from rapidrelease.errors import ShareError
from rapidrelease.reads.taxonomy import Taxonomy
from rapidrelease.records import AttributeResult, Release, read_release
from rapidrelease.report.sections.timeline import timeline_of
from rapidrelease.share.package import TABLES, empty_table, write_package
from rapidrelease.share.privacy import budget_split, private_count, private_histogram, private_sum

__all__ = [
    "TIME_TO_RESULT",
    "TIME_BOUNDS_H",
    "QUANTILES",
    "REASON_CATEGORIES",
    "UNSPECIFIED",
    "ExportSettings",
    "SharedLot",
    "platform_of",
    "reason_category",
    "detected_organisms",
    "keyed_id",
    "iso_week",
    "build_tables",
    "export_package",
    "read_key_file",
    "shared_lots",
    "release_files",
]

TIME_TO_RESULT = "time_to_result"
TIME_BOUNDS_H = (0.0, 72.0)
"""Bounds (hours) a time to result is clipped to for a private sum: three 24-hour windows."""
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
UNSPECIFIED = "unspecified"

REASON_CATEGORIES: Mapping[str, tuple[str, ...]] = {
    PASS: ("pass",),
    FAIL: ("below_limit", "above_limit", "outside_range", "detected", "not_equal"),
    INCONCLUSIVE: (
        "insufficient_events",
        "missing_control",
        "invalid_control",
        "not_computable",
        "not_applicable",
        "assay_invalid",
        "not_measured",
        "other",
    ),
}
"""Every (result, category) a reason is shared as: a fixed vocabulary, so the histogram over it is
one query of a private export and no text of a reason leaves the site."""

ORGANISMS_PER_LOT = 3
"""Most organisms one lot contributes to a private histogram of organisms (its first, by name): the
bound the histogram's noise is calibrated for."""

_ORGANISM_FALSE_DISCOVERY = 0.05
"""Chance that a private export lists, for one platform, any organism no lot had (by the noise)."""


@dataclass(frozen=True)
class ExportSettings:
    """How to export: ``min_lots`` (K) per group, ``epsilon`` (None: exact aggregates), ``lot_rows``
    with the site's secret ``key`` (bytes) for the keyed hashes of lot ids."""

    min_lots: int = 5
    epsilon: float | None = None
    lot_rows: bool = False
    key: bytes | None = None


@dataclass(frozen=True)
class SharedLot:
    """A decided lot as shared: its platform (one value per platform column), its shareable
    attributes with their specification's share settings, its hours to result, its organisms."""

    lot_id: str
    collected_at: str
    platform: tuple[str, ...]
    attributes: tuple[tuple[AttributeResult, Attribute], ...]
    hours_to_result: float | None
    organisms: tuple[str, ...]


@dataclass(frozen=True)
class _Group:
    platform: tuple[str, ...]
    attribute: str
    unit: str
    kind: str
    bounds: tuple[float, float] | None
    fail_category: str | None
    entries: tuple[tuple[SharedLot, AttributeResult | None], ...]


def _platform_vocabulary() -> Mapping[str, Mapping[str, Any]]:
    properties = load_schema("lots.schema.yaml")["properties"]
    return {column: properties[column] for column in PLATFORM_COLUMNS}


def platform_of(cells: Mapping[str, str]) -> tuple[str, ...]:
    """A lot's platform from its lot-sheet cells: each platform column's value when it is one the
    lot schema allows (process_days as whole days, 0–60), else ``unspecified``; never free text."""
    vocabulary = _platform_vocabulary()
    values = []
    for column in PLATFORM_COLUMNS:
        text = str(cells.get(column, "")).strip()
        allowed = vocabulary[column]
        if "enum" in allowed:
            values.append(text if text in allowed["enum"] else UNSPECIFIED)
            continue
        try:
            days = float(text)
        except ValueError:
            values.append(UNSPECIFIED)
            continue
        low, high = allowed.get("minimum", 0), allowed.get("maximum", 60)
        values.append(str(round(days)) if math.isfinite(days) and low <= days <= high else UNSPECIFIED)
    return tuple(values)


def platform_label(platform: Sequence[str]) -> str:
    """The platform as people read it: ``T cell · lentiviral · 4-1BB · 7 d · central``."""
    cells = [
        f"{v} d" if c == "process_days" and v != UNSPECIFIED else v
        for c, v in zip(PLATFORM_COLUMNS, platform, strict=True)
    ]
    return " · ".join(cells)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def measured_value(attribute: AttributeResult) -> float | None:
    """An attribute's value as measured (not rounded), when the decision judged it; else None."""
    if attribute.result == INCONCLUSIVE:
        return None
    measured = _number(attribute.evidence.measured_value)
    return measured if measured is not None else _number(attribute.value)


def reason_category(attribute: AttributeResult) -> str:
    """The category of an attribute's result in :data:`REASON_CATEGORIES`, from its structured
    fields (comparison, limits, value, metric status), never from the text of its reason."""
    if attribute.result == PASS:
        return "pass"
    if attribute.result == FAIL:
        return _failure_of(attribute.comparison, attribute.limit)
    status = attribute.evidence.metric_status
    if status is None:
        return "not_measured"
    if status == "ok":
        # judged, then overruled: an assay-validity criterion of the same assay was not met
        return "assay_invalid"
    return status if status in REASON_CATEGORIES[INCONCLUSIVE] else "other"


def fail_category(attribute: Attribute) -> str:
    """The one category a failure of ``attribute``'s criterion can have (its comparison says which:
    public, like the specification, not data)."""
    return _failure_of(attribute.comparison, attribute.limit)


def _failure_of(comparison: str, limit: object) -> str:
    if comparison in (">=", ">"):
        return "below_limit"
    if comparison in ("<=", "<"):
        return "above_limit"
    if comparison == "between":
        return "outside_range"
    # a category required NOT_DETECTED and the result was another: something was detected
    return "detected" if limit == NOT_DETECTED else "not_equal"


def _vocabulary(group: _Group) -> dict[str, tuple[str, ...]]:
    """The categories a group's histogram runs over: pass, its criterion's failure, every
    inconclusive reason."""
    assert group.fail_category is not None
    return {PASS: ("pass",), FAIL: (group.fail_category,), INCONCLUSIVE: REASON_CATEGORIES[INCONCLUSIVE]}


def organism_names(taxonomy: Taxonomy) -> frozenset[str]:
    """The names an export may share as organisms: the taxonomy's species and genera under a node
    of a contaminant category (bacteria, fungi, mycoplasma, virus; categories are inherited)."""
    rows = {taxid: (parent, rank, name, category) for taxid, parent, rank, name, category in taxonomy.rows()}

    @functools.cache
    def category_of(taxid: int) -> str:
        parent, _, _, category = rows[taxid]
        if category or parent == taxid or parent not in rows:
            return category
        return category_of(parent)

    names = set()
    for taxid, (_, rank, name, _) in rows.items():
        if rank in ("species", "genus") and category_of(taxid) in CONTAMINANT_CATEGORIES:
            names.add(name)
    return frozenset(names)


def detected_organisms(attribute: AttributeResult, allowed: frozenset[str]) -> tuple[str, ...]:
    """The organisms a sterility attribute's DETECTED result names, as allowed names only.

    The decision names a detected organism in its evidence figures (``<name> reads``) and in its
    reason; an allowed name found in either is shared, and nothing else of either text.
    """
    if attribute.assay not in READS_ASSAYS or attribute.value != DETECTED:
        return ()
    text = " ".join([attribute.reason, *(f.label for f in attribute.evidence.figures)])
    found = {name for name in allowed if name in text}
    # a genus named only as part of a detected species is the species' name, not a second organism
    return tuple(sorted(n for n in found if not any(o != n and o.startswith(n + " ") for o in found)))


def keyed_id(key: bytes, lot_id: str) -> str:
    """A lot's keyed hash: the first 16 hex digits of HMAC-SHA256(key, lot id). Without the site's
    key it cannot be recomputed from a guessed lot id, and it is the same in every export."""
    return hmac.new(key, lot_id.encode(), hashlib.sha256).hexdigest()[:16]


def program_pseudonym(key: bytes | None) -> str:
    """The program's pseudonym in the manifest: keyed (the same for every export with the key), or
    random when there is no key."""
    if key is None:
        return secrets.token_hex(6)
    return hmac.new(key, b"rapidrelease share program", hashlib.sha256).hexdigest()[:12]


def iso_week(moment: str) -> str:
    """The ISO week (``2026-W48``) of an ISO 8601 time, as dated where it was taken."""
    year, week, _ = datetime.fromisoformat(moment).isocalendar()
    return f"{year}-W{week:02d}"


def shared_lots(run: RunConfig, releases: Iterable[Release], taxonomy: Taxonomy | None) -> list[SharedLot]:
    """The lots as shared: platform from the lot sheet when the lot is in it, else from the columns
    recorded with its decision; only attributes the lot's specification in ``run`` marks ``share``
    (a lot whose specification the configuration does not hold shares none)."""
    allowed = organism_names(taxonomy) if taxonomy is not None else frozenset()
    lots = []
    for release in releases:
        spec = run.specs.get(release.lot.spec)
        marked = {a.name: a for a in spec.attributes if a.share} if spec is not None else {}
        configured = run.lots.get(release.lot.lot_id)
        cells = configured.extra if configured is not None else release.lot.extra
        attributes = tuple((a, marked[a.name]) for a in release.attributes if a.name in marked)
        timeline = timeline_of(release)
        organisms = sorted({o for a, _ in attributes for o in detected_organisms(a, allowed)})
        lots.append(
            SharedLot(
                lot_id=release.lot.lot_id,
                collected_at=release.lot.collected_at,
                platform=platform_of(cells),
                attributes=attributes,
                hours_to_result=None if timeline is None else timeline.hours_to_result,
                organisms=tuple(organisms),
            )
        )
    return lots


def _groups(lots: Sequence[SharedLot]) -> dict[tuple[str, ...], list[_Group]]:
    by_platform: dict[tuple[str, ...], list[SharedLot]] = defaultdict(list)
    for lot in lots:
        by_platform[lot.platform].append(lot)
    groups: dict[tuple[str, ...], list[_Group]] = {}
    for platform, members in sorted(by_platform.items()):
        found: dict[str, tuple[Attribute, list[tuple[SharedLot, AttributeResult | None]]]] = {}
        for lot in members:
            for result, attribute in lot.attributes:
                found.setdefault(result.name, (attribute, []))[1].append((lot, result))
        platform_groups = [
            _Group(
                platform,
                name,
                attribute.unit,
                "category" if attribute.categorical else "numeric",
                attribute.share_bounds,
                fail_category(attribute),
                tuple(entries),
            )
            for name, (attribute, entries) in sorted(found.items())
        ]
        timed = tuple((lot, None) for lot in members if lot.hours_to_result is not None)
        if timed:
            platform_groups.append(_Group(platform, TIME_TO_RESULT, "h", "time", TIME_BOUNDS_H, None, timed))
        groups[platform] = platform_groups
    return groups


def _queries(groups: Sequence[_Group]) -> int:
    """Sequentially composed queries of one platform: per attribute the histogram of its results'
    categories (whose PASS and FAIL cells also count a numeric attribute's values), and per numeric
    attribute the sum and sum of squares of its values; for the time to result a count, sum and sum
    of squares; the organisms' histogram."""
    per_kind = {"category": 1, "numeric": 3, "time": 3}  # numeric: histogram, sum, sum of squares
    return sum(per_kind[g.kind] for g in groups) + 1


def _platform_columns(platform: Sequence[str]) -> dict[str, str]:
    return {**dict(zip(PLATFORM_COLUMNS, platform, strict=True)), "platform": platform_label(platform)}


def _value_of(group: _Group, lot: SharedLot, result: AttributeResult | None) -> float | None:
    if group.kind == "time":
        return lot.hours_to_result
    return None if result is None else measured_value(result)


def _exact_statistics(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return dict.fromkeys(("mean", "sd", "q05", "q25", "q50", "q75", "q95"))
    array = np.asarray(values, dtype=float)
    quantiles = np.quantile(array, QUANTILES)
    return {
        "mean": float(array.mean()),
        "sd": float(array.std(ddof=1)) if array.size > 1 else None,
        **{f"q{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
    }


def _private_moments(
    values: Sequence[float], n: int, bounds: tuple[float, float], epsilon: float
) -> tuple[dict[str, float | None], float]:
    """Mean and SD from OpenDP's noisy sum and sum of squares (of clamped values) and the noisy
    ``n``: post-processing, clamped back into the bounds. Returns them and the sum's scale."""
    lowest, highest = bounds
    clamped = [min(max(v, lowest), highest) for v in values]
    total = private_sum(clamped, bounds, epsilon)
    square_bounds = (
        0.0 if lowest <= 0 <= highest else min(lowest**2, highest**2),
        max(lowest**2, highest**2),
    )
    squares = private_sum([v * v for v in clamped], square_bounds, epsilon)
    if n < 1:
        return dict.fromkeys(("mean", "sd")), total.scale
    mean = min(max(total.value / n, lowest), highest)
    sd = None
    if n > 1:
        variance = (squares.value - n * mean * mean) / (n - 1)
        sd = math.sqrt(min(max(variance, 0.0), (highest - lowest) ** 2 / 4))
    return {"mean": mean, "sd": sd}, total.scale


def build_tables(
    lots: Sequence[SharedLot], settings: ExportSettings, organisms: frozenset[str] = frozenset()
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """The package's tables from the shared lots, and what the manifest states of the export
    (suppressed groups, the privacy budget's split). ``organisms`` is the vocabulary a private
    export's histogram of organisms runs over (:func:`organism_names`)."""
    if settings.min_lots < 1:
        raise ShareError(f"--min-lots must be at least 1, not {settings.min_lots}.")
    if settings.epsilon is not None and settings.lot_rows:
        raise ShareError(
            "lot rows cannot be released under a privacy budget (each would spend it whole); "
            "export either with --epsilon or with --lot-rows."
        )
    if settings.lot_rows and not settings.key:
        raise ShareError("lot rows need the site's secret key (--key-file) for the keyed hashes of lot ids.")
    groups = _groups(lots)
    per_query = None
    queries = max((_queries(g) for g in groups.values()), default=1)
    if settings.epsilon is not None:
        per_query = budget_split(settings.epsilon, queries)
        unbounded = sorted(
            {g.attribute for gs in groups.values() for g in gs if g.kind == "numeric" and g.bounds is None}
        )
        if unbounded:
            raise ShareError(
                f"the specification marks {unbounded[0]} share without bounds; a private export needs "
                "share: {bounds: [lowest, highest]} to clip its values (or export without --epsilon)."
            )
    summaries: list[dict[str, Any]] = []
    reasons: list[dict[str, Any]] = []
    organisms_rows: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    suppressed = 0
    for platform, platform_groups in groups.items():
        columns = _platform_columns(platform)
        for group in platform_groups:
            histogram: Counter[tuple[str, str]] = Counter()
            for _, result in group.entries:
                if result is not None:
                    histogram[(result.result, reason_category(result))] += 1
            values = [v for lot, r in group.entries if (v := _value_of(group, lot, r)) is not None]
            noise_count = noise_sum = None
            statistics: dict[str, float | None] = {}
            if per_query is None:
                raw = {key: float(n) for key, n in histogram.items()}
                n_values = len(values)
                if group.kind != "category":
                    statistics = _exact_statistics(values)
            else:
                # the whole fixed vocabulary, zeros included: which categories occur is data too
                raw = {}
                if group.kind != "time":
                    for result_name, categories in _vocabulary(group).items():
                        for category in categories:
                            noised = private_count(histogram[(result_name, category)], per_query)
                            raw[(result_name, category)] = noised.value
                            noise_count = noised.scale
                if group.kind == "time":
                    noised_n = private_count(len(values), per_query)
                    noise_count = noised_n.scale
                    n_values = max(0, round(noised_n.value))
                else:
                    judged = sum(v for (r, _), v in raw.items() if r in (PASS, FAIL))
                    n_values = max(0, round(judged))
                if group.kind != "category" and group.bounds is not None:
                    statistics, noise_sum = _private_moments(values, n_values, group.bounds, per_query)
            # totals from the unclamped noisy counts (unbiased), each clamped at 0 once summed
            by_result = {
                r: max(0, round(sum(v for (res, _), v in raw.items() if res == r))) for r in REASON_CATEGORIES
            }
            n_lots = n_values if group.kind == "time" else max(0, round(sum(raw.values())))
            if n_lots < settings.min_lots:
                suppressed += 1
                continue
            for (result_name, category), lots_in in sorted(raw.items()):
                if round(lots_in) > 0:
                    reasons.append(
                        {
                            **columns,
                            "attribute": group.attribute,
                            "result": result_name,
                            "category": category,
                            "lots": round(lots_in),
                        }
                    )
            summaries.append(
                {
                    **columns,
                    "attribute": group.attribute,
                    "unit": group.unit,
                    "kind": group.kind,
                    "n_lots": n_lots,
                    "n_pass": by_result[PASS] if group.kind != "time" else None,
                    "n_fail": by_result[FAIL] if group.kind != "time" else None,
                    "n_inconclusive": by_result[INCONCLUSIVE] if group.kind != "time" else None,
                    "n_values": n_values if group.kind != "category" else None,
                    **{k: statistics.get(k) for k in ("mean", "sd", "q05", "q25", "q50", "q75", "q95")},
                    "noise_scale_count": noise_count,
                    "noise_scale_sum": noise_sum,
                }
            )
            if settings.lot_rows and settings.key is not None:
                for lot, result in group.entries:
                    # whole hours: a minute-exact time could be matched with a lot's report
                    hours = None if lot.hours_to_result is None else float(round(lot.hours_to_result))
                    rows.append(
                        {
                            "lot_key": keyed_id(settings.key, lot.lot_id),
                            "collected_week": iso_week(lot.collected_at),
                            **columns,
                            "attribute": group.attribute,
                            "result": None if result is None else result.result,
                            "category": None if result is None else reason_category(result),
                            "value": _value_of(group, lot, result) if group.kind != "time" else hours,
                            "hours_to_result": hours,
                        }
                    )
        organisms_rows.extend(_organism_rows(platform, columns, lots, settings, per_query, organisms))
    tables = {
        "summaries": _frame("summaries", summaries),
        "reasons": _frame("reasons", reasons),
        "organisms": _frame("organisms", organisms_rows),
    }
    if settings.lot_rows:
        tables["lots"] = _frame("lots", rows)
    privacy = None
    if settings.epsilon is not None and per_query is not None:
        privacy = {
            "library": "OpenDP",
            "mechanism": "Laplace (discrete for counts) on counts and on sums of values clamped to "
            "the specification's share bounds",
            "epsilon": settings.epsilon,
            "epsilon_per_query": per_query,
            "queries_per_platform": queries,
            "unit_of_privacy": "one lot",
            "time_to_result_bounds_h": list(TIME_BOUNDS_H),
        }
    stated = {
        "min_lots": settings.min_lots,
        "lot_rows": settings.lot_rows,
        "privacy": privacy,
        "suppressed_groups": suppressed,
        "attributes": sorted({a.name for lot in lots for a, _ in lot.attributes}),
    }
    return tables, stated


def _organism_rows(
    platform: tuple[str, ...],
    columns: Mapping[str, str],
    lots: Sequence[SharedLot],
    settings: ExportSettings,
    per_query: float | None,
    vocabulary: frozenset[str],
) -> list[dict[str, Any]]:
    members = [lot for lot in lots if lot.platform == platform]
    # organisms are shared only where a sterility attribute is, and only for a platform of ≥ K lots
    tested = [lot for lot in members if any(a.assay in READS_ASSAYS for a, _ in lot.attributes)]
    if len(tested) < settings.min_lots:
        return []
    counted = Counter(o for lot in tested for o in lot.organisms)
    if per_query is None:
        return [{**columns, "organism": name, "lots": n} for name, n in sorted(counted.items())]
    # the fixed vocabulary, not the organisms found: which names appear would itself be a release
    names = sorted(vocabulary)
    if not names:
        return []
    rows = [o for lot in tested for o in lot.organisms[:ORGANISMS_PER_LOT]]
    noisy, scale = private_histogram(rows, names, ORGANISMS_PER_LOT, per_query)
    # post-processing: report only counts above what noise alone exceeds with small chance
    threshold = scale * math.log(len(names) / (2 * _ORGANISM_FALSE_DISCOVERY))
    released = [
        {**columns, "organism": name, "lots": round(value)}
        for name, value in zip(names, noisy, strict=True)
        if value > threshold
    ]
    return released


def _frame(name: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return empty_table(name)
    return pl.DataFrame(rows, schema=dict(TABLES[name]))


def release_files(run: RunConfig, archive: bool = True) -> list[Path]:
    """The decisions an export reads by default: ``<results>/<lot>/release.json`` of each configured
    lot that has one, and, with ``archive``, the archived lots of config.yaml ``trends.archive`` as
    the lots index reads them (a lot decided again in this run is not counted twice)."""
    from rapidrelease.report.archive import read_archive

    current = [path for lot in run.lots if (path := run.results_dir / lot / "release.json").is_file()]
    folder = (run.settings.get("trends") or {}).get("archive")
    if not archive or not folder:
        return current
    archived = read_archive(Path(folder), [(path, read_release(path)) for path in current])
    if archived.refused:
        raise ShareError(archived.refused[0])
    return [*current, *(path for path, _ in archived.releases)]


MIN_KEY_BYTES = 16
"""The shortest secret key accepted for keyed hashes (128 bits)."""


def read_key_file(path: Path) -> bytes:
    """The site's secret key for keyed hashes: the bytes of the file at ``path``, surrounding
    whitespace removed. Raises ShareError, naming the file, when it cannot be read or holds fewer
    than :data:`MIN_KEY_BYTES` bytes."""
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ShareError(f"{path}: the key file cannot be read ({exc.strerror or exc}).") from None
    if len(key) < MIN_KEY_BYTES:
        raise ShareError(f"{path}: holds fewer than {MIN_KEY_BYTES} bytes, too short a secret key.")
    return key


def export_package(
    run: RunConfig,
    release_paths: Sequence[Path],
    out_dir: Path,
    settings: ExportSettings,
    taxonomy: Taxonomy | None = None,
) -> Path:
    """``rapidrelease share export``: read each release.json, build the tables, write the package.

    Returns the manifest's path. A release.json that cannot be read is a
    :class:`~rapidrelease.errors.RecordError` naming it: a package never silently leaves a lot out.
    """
    releases = [read_release(Path(p)) for p in release_paths]
    if not releases:
        raise ShareError(
            "no decided lots to export: give the release.json files or a results folder with them."
        )
    lots = shared_lots(run, releases, taxonomy)
    if not any(lot.attributes for lot in lots):
        raise ShareError(
            f"{run.settings['specs']}: marks no attribute of these lots' specifications share, "
            "so nothing may leave the site."
        )
    vocabulary = organism_names(taxonomy) if taxonomy is not None else frozenset()
    tables, stated = build_tables(lots, settings, vocabulary)
    week = iso_week(datetime.now(UTC).isoformat())
    return write_package(out_dir, tables, program_pseudonym(settings.key), stated, week)
