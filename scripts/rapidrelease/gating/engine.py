"""The gating engine: a whole gate tree evaluated over event chunks with NumPy kernels.

For each chunk of events the engine evaluates every gate of a :class:`~rapidrelease.gating.template.GateTree`
in order. What makes it fast, compared with FlowKit's gate-by-gate evaluation on DataFrames:

- each compensated and transformed dimension is computed at most once per event, and only for
  the events a gate actually needs — a gate deep in the tree transforms only its parent's events;
- a gate's kernel runs on its parent's events only, and parent masks are reused, not recomputed;
- events are read and gated ``chunk_size`` at a time, so memory is bounded whatever the file size.

The engine works on arrays and writes nothing: gating files and writing ``populations.tsv`` and
per-event Parquet is :mod:`rapidrelease.gating.io`'s.

Every per-event computation is independent of which other events share its chunk, so the result
never depends on the chunk size. Compensation solves ``x = c · S`` for each event with the spillover
matrix ``S`` factored once (LU with partial pivoting, as LAPACK's ``gesv``), by substitution in a fixed
order: the same answer whatever the number of events, equal to FlowKit's to ~1e-13.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rapidrelease.errors import GatingError, RapidReleaseError
from rapidrelease.gating.kernels import in_ellipsoid, in_polygon, in_rectangle
from rapidrelease.gating.template import Dimension, GateNode, GateTree, population_path

if TYPE_CHECKING:
    from flowkit._models.transforms._base_transform import Transform

    from rapidrelease.fcs.compensation import Spillover
    from rapidrelease.fcs.reader import FCSFile

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ColumnKey",
    "CompiledTree",
    "EventColumns",
    "GatingResult",
    "PopulationCount",
    "SampleLayout",
    "compile_tree",
    "gate_chunks",
    "gate_events",
    "gate_fcs",
    "pull_back_bound",
    "transform_domain_floor",
]

Path_ = tuple[str, ...]

DEFAULT_CHUNK_SIZE = 131_072
"""Events gated at a time. A chunk's columns (8 bytes × events) then stay in the CPU caches across the
dozens of passes a gate tree makes over them: on 1 M events gating ran 1.9× faster than with one
chunk of 1 M (tests/benchmarks/bench_gating.py), and the result does not depend on the chunk size."""


@dataclass(frozen=True)
class SampleLayout:
    """What the engine needs to know about a sample's columns.

    ``spillover`` is ``(detectors, matrix)`` from the file's ``$SPILLOVER`` (rows emitting, columns
    receiving) or ``None``.
    """

    sample_id: str
    pnn_labels: tuple[str, ...]
    pns_labels: tuple[str, ...]
    spillover: tuple[tuple[str, ...], np.ndarray] | None = None
    spillover_error: str | None = None
    """Why the file's spillover keyword cannot be used: an error only for gates that compensate with it."""

    @classmethod
    def of(cls, fcs: FCSFile) -> SampleLayout:
        """The layout of an :class:`~rapidrelease.fcs.reader.FCSFile`."""
        try:
            spill = fcs.spillover()
        except RapidReleaseError as exc:
            spill, error = None, str(exc)
        else:
            error = None
        matrix = (
            None if spill is None else (tuple(spill.detectors), np.asarray(spill.matrix, dtype=np.float64))
        )
        return cls(fcs.sample_id, tuple(fcs.pnn_labels), tuple(fcs.pns_labels), matrix, error)

    def with_spillover(self, spillover: Spillover) -> SampleLayout:
        """This layout with ``spillover`` (a :class:`~rapidrelease.fcs.compensation.Spillover`, e.g. from a
        matrix file a panel names) in place of the file's own, for gates that compensate with "FCS"."""
        matrix = (tuple(spillover.detectors), np.asarray(spillover.matrix, dtype=np.float64))
        return SampleLayout(self.sample_id, self.pnn_labels, self.pns_labels, matrix, None)

    def channel_index(self, label: str) -> int | None:
        """Index of a channel named by $PnN, then $PnS, then FlowJo's label ($PnN with ``/`` as ``_``)."""
        for labels in (self.pnn_labels, self.pns_labels, tuple(p.replace("/", "_") for p in self.pnn_labels)):
            if label in labels:
                return labels.index(label)
        return None


@dataclass(frozen=True)
class _Compensation:
    """A spillover matrix factored for per-event substitution; ``channels`` are event-array columns."""

    channels: tuple[int, ...]
    lu: np.ndarray
    pivots: np.ndarray

    @classmethod
    def factor(cls, channels: Sequence[int], spill: np.ndarray) -> _Compensation:
        """Factor spillover matrix ``spill`` (``(k, k)``, detectors in ``channels`` order) as P L U.

        Compensated values c satisfy c · S = x, i.e. Sᵀ cᵀ = xᵀ: Sᵀ is factored once, with LAPACK's
        getf2 steps (partial pivoting; ``pivots[j]`` the row swapped with row j), here rather than by
        SciPy, whose import took 0.15 s of each flow job for a matrix of a dozen detectors. Raises
        ``ValueError`` for a value that is not finite, ``np.linalg.LinAlgError`` for a singular one.
        """
        lu = np.asarray(spill, dtype=np.float64).T.copy()
        if not np.isfinite(lu).all():
            raise ValueError("it holds a value that is not finite")
        k = len(lu)
        pivots = np.arange(k)
        for j in range(k):
            p = j + int(np.argmax(np.abs(lu[j:, j])))
            if lu[p, j] == 0.0:
                raise np.linalg.LinAlgError(f"it is singular: column {j + 1} has no pivot")
            pivots[j] = p
            if p != j:
                lu[[j, p]] = lu[[p, j]]
            lu[j + 1 :, j] /= lu[j, j]
            lu[j + 1 :, j + 1 :] -= np.outer(lu[j + 1 :, j], lu[j, j + 1 :])
        return cls(tuple(channels), lu, pivots)

    def apply(self, raw: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Compensate columns ``raw[i]`` (one per detector, shape ``(n,)``); returns the same layout."""
        cols = [np.array(c, dtype=np.float64) for c in raw]
        for i, p in enumerate(self.pivots):
            if p != i:
                cols[i], cols[p] = cols[p], cols[i]
        k = len(cols)
        for j in range(k):  # L y = P x, L unit lower triangular
            for i in range(j + 1, k):
                if self.lu[i, j] != 0.0:
                    cols[i] = cols[i] - cols[j] * self.lu[i, j]
        for j in range(k - 1, -1, -1):  # U c = y
            cols[j] = cols[j] / self.lu[j, j]
            for i in range(j):
                if self.lu[i, j] != 0.0:
                    cols[i] = cols[i] - cols[j] * self.lu[i, j]
        return cols


# A column key names one computed dimension, its transform always last: ("channel", comp_ref, index,
# transform_ref) or ("ratio", x_index, y_index, a, b, c, transform_ref); transform_ref None means raw.
ColumnKey = tuple[Any, ...]


@dataclass(frozen=True)
class _CompiledGate:
    node: GateNode
    columns: tuple[ColumnKey, ...]


@dataclass(frozen=True)
class CompiledTree:
    """A gate tree resolved against one sample's channels, ready for :func:`gate_events`."""

    tree: GateTree
    layout: SampleLayout
    gates: tuple[_CompiledGate, ...]
    compensations: dict[str, _Compensation | None]
    _raw_bounds: dict[tuple[str, float], tuple[float, float] | None] = field(default_factory=dict, repr=False)

    def raw_bound(self, xform_ref: str, bound: float) -> tuple[float, float] | None:
        """The raw-value band bracketing a bound given in transformed units (see :func:`pull_back_bound`)."""
        key = (xform_ref, bound)
        if key not in self._raw_bounds:
            self._raw_bounds[key] = pull_back_bound(self.tree.transforms[xform_ref], bound)
        return self._raw_bounds[key]

    @property
    def populations(self) -> list[tuple[Path_, Path_]]:
        return self.tree.populations()


def compile_tree(tree: GateTree, layout: SampleLayout) -> CompiledTree:
    """Resolve every gate dimension of ``tree`` to a column of the sample described by ``layout``.

    Raises :class:`GatingError` naming the sample, the gate and the channel when the sample lacks a
    channel the template needs, or when a spillover matrix names a detector the sample lacks.
    """
    compensations: dict[str, _Compensation | None] = {}
    gates = []
    for node in tree.nodes:
        keys = []
        for dim in node.dimensions:
            if dim.comp_ref is not None and dim.comp_ref not in compensations:
                compensations[dim.comp_ref] = _compile_compensation(tree, layout, dim.comp_ref, node)
            keys.append(_column_key(tree, layout, dim, node))
        gates.append(_CompiledGate(node, tuple(keys)))
    return CompiledTree(tree, layout, tuple(gates), compensations)


def _compile_compensation(
    tree: GateTree, layout: SampleLayout, comp_ref: str, node: GateNode
) -> _Compensation | None:
    if comp_ref == "FCS":
        if layout.spillover_error is not None:
            raise GatingError(
                f"{layout.spillover_error.rstrip('.')}, and gate {node.name!r} compensates with it."
            )
        if layout.spillover is None:
            return None  # GatingML 2.0 §4: "FCS" with no spillover in the file means uncompensated
        detectors, spill = layout.spillover
        source = "its $SPILLOVER keyword"
    else:
        detectors, _, spill = tree.matrices[comp_ref]
        source = f"matrix {comp_ref!r} of {tree.source}"
    channels = []
    for detector in detectors:
        index = layout.channel_index(detector)
        if index is None:
            raise GatingError(
                f"{layout.sample_id}: detector {detector!r} of {source} (needed by gate {node.name!r}) "
                f"is not a channel of the file."
            )
        channels.append(index)
    # Solve in the file's channel order, as FlowKit does for a file's own spillover.
    order = np.argsort(channels, kind="stable") if comp_ref == "FCS" else np.arange(len(channels))
    spill = np.asarray(spill, dtype=np.float64)[np.ix_(order, order)]
    try:
        return _Compensation.factor([channels[i] for i in order], spill)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise GatingError(
            f"{layout.sample_id}: the spillover matrix of {source} cannot be inverted ({exc})."
        ) from exc


def _column_key(tree: GateTree, layout: SampleLayout, dim: Dimension, node: GateNode) -> ColumnKey:
    if dim.ratio is not None:
        r = dim.ratio
        x, y = layout.channel_index(r.x_label), layout.channel_index(r.y_label)
        for label, index in ((r.x_label, x), (r.y_label, y)):
            if index is None:
                raise GatingError(_missing_channel(layout, node, label))
        return ("ratio", x, y, r.a, r.b, r.c, dim.xform_ref)
    assert dim.label is not None
    index = layout.channel_index(dim.label)
    if index is None and dim.comp_ref not in (None, "FCS"):
        # a template may name the fluorochrome of its matrix instead of the detector
        detectors, fluorochromes, _ = tree.matrices[dim.comp_ref]
        if dim.label in fluorochromes:
            index = layout.channel_index(detectors[fluorochromes.index(dim.label)])
    if index is None:
        raise GatingError(_missing_channel(layout, node, dim.label))
    return ("channel", dim.comp_ref, index, dim.xform_ref)


def _missing_channel(layout: SampleLayout, node: GateNode, label: str) -> str:
    return (
        f"{layout.sample_id}: gate {population_path(node.path)!r} needs channel {label!r}, which the file "
        f"does not have (its channels: {', '.join(layout.pnn_labels)})."
    )


# Transforms FlowKit applies that are non-decreasing in the raw value on their whole domain.
_MONOTONE_TRANSFORMS = {
    "LinearTransform",
    "LogTransform",
    "HyperlogTransform",
    "LogicleTransform",
    "AsinhTransform",
    "WSPLogTransform",
    "WSPBiexTransform",
}


# Raw values at or below which a transform is not finite (FlowUtils' log gives NaN for x < 0, -inf at 0):
# such values are always decided with the exact transform.
_DOMAIN_FLOOR = {"LogTransform": 0.0}


def transform_domain_floor(transform: Transform) -> float | None:
    """Raw value at or below which ``transform`` is not a finite, non-decreasing function (or ``None``)."""
    return _DOMAIN_FLOOR.get(type(transform).__name__)


def _forward(transform: Transform, x: float) -> float:
    with np.errstate(all="ignore"):
        return float(np.asarray(transform.apply(np.array([[x]], dtype=np.float64))).reshape(-1)[0])


def _crossing(transform: Transform, bound: float) -> float | None:
    """A raw value where ``transform`` reaches ``bound``: its inverse, or bisection when it has none."""
    if hasattr(transform, "inverse"):
        with np.errstate(all="ignore"):
            x = float(np.asarray(transform.inverse(np.array([[bound]], dtype=np.float64))).reshape(-1)[0])
        return x if np.isfinite(x) else None
    lo, hi = -1.0, 1.0
    while _forward(transform, lo) >= bound and lo > -1e300:
        lo *= 16.0
    while not _forward(transform, hi) >= bound and hi < 1e300:
        hi *= 16.0
    if not (_forward(transform, lo) < bound <= _forward(transform, hi)):
        return None
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _forward(transform, mid) >= bound:
            hi = mid
        else:
            lo = mid
    return hi


def pull_back_bound(transform: Transform, bound: float) -> tuple[float, float] | None:
    """Bracket, in raw units, where a non-decreasing transform crosses ``bound``.

    Returns ``(r_lo, r_hi)`` with ``T(r_lo) < bound - m`` and ``T(r_hi) > bound + m`` for a margin ``m``
    (1e-8 of the bound's scale) far above the transform's rounding error, both checked with the exact
    transform. Because ``T`` never decreases, every raw value below ``r_lo`` transforms below the bound
    and every value at or above ``r_hi`` above it: only values in between need the exact transform to
    decide a rectangle or quadrant boundary. Returns ``None`` when no such band exists (the bound sits
    on a flat stretch of ``T``, or the transform is not known to be monotone); then every event is
    transformed exactly.
    """
    if type(transform).__name__ not in _MONOTONE_TRANSFORMS or not np.isfinite(bound):
        return None
    centre = _crossing(transform, bound)
    if centre is None:
        return None
    margin = 1e-8 * max(1.0, abs(bound))
    step0 = 1e-12 * (abs(centre) + 1.0)

    def search(direction: float, ok: Callable[[float], bool]) -> float | None:
        step = step0
        for _ in range(80):
            x = centre + direction * step
            if ok(_forward(transform, x)):
                return x
            step *= 4.0
        return None

    r_lo = search(-1.0, lambda t: t < bound - margin)
    r_hi = search(+1.0, lambda t: t > bound + margin)
    if r_lo is None or r_hi is None:
        return None
    return r_lo, r_hi


class _LazyColumn:
    """A transformed dimension over a chunk; each event's value is computed once, when first needed."""

    def __init__(self, n: int, compute: Callable[[np.ndarray | None], np.ndarray]):
        self._values = np.empty(n, dtype=np.float64)
        self._done = np.zeros(n, dtype=bool)
        self._all_done = False
        self._compute = compute

    def take(self, rows: np.ndarray | None) -> np.ndarray:
        """Values for ``rows`` (event indices within the chunk; ``None`` for all), shape ``(m,)``."""
        if not self._all_done:
            missing = np.flatnonzero(~self._done) if rows is None else rows[~self._done[rows]]
            if len(missing) == len(self._values):
                self._values[:] = self._compute(None)
            elif len(missing):
                self._values[missing] = self._compute(missing)
            self._done[missing] = True
            self._all_done = rows is None or bool(self._done.all())
        return self._values if rows is None else self._values[rows]


class EventColumns:
    """The dimensions of one chunk of events, as the gates see them.

    Raw channels are read in place (the chunk is held column-major); a compensation matrix's
    detectors are solved once, for the whole chunk, when a gate first needs one of them; a
    transformed dimension is computed per event only for the events gates ask for (its parents').
    """

    def __init__(self, events: np.ndarray, compiled: CompiledTree):
        self.events = np.asfortranarray(events, dtype=np.float64)
        self.compiled = compiled
        self._compensated: dict[str, dict[int, np.ndarray]] = {}
        self._transformed: dict[ColumnKey, _LazyColumn] = {}

    def take(self, key: ColumnKey, rows: np.ndarray | None) -> np.ndarray:
        """Values of the dimension ``key`` for ``rows`` (``None`` for all), shape ``(m,)``."""
        if key[-1] is None:
            return self._untransformed(key, rows)
        column = self._transformed.get(key)
        if column is None:
            transform = self.compiled.tree.transforms[key[-1]]
            base = (*key[:-1], None)

            def compute(rows_: np.ndarray | None) -> np.ndarray:
                values = np.ascontiguousarray(self._untransformed(base, rows_)).reshape(-1, 1)
                return np.asarray(transform.apply(values), dtype=np.float64).reshape(-1)

            column = self._transformed[key] = _LazyColumn(len(self.events), compute)
        return column.take(rows)

    def within(
        self, key: ColumnKey, rows: np.ndarray | None, lo: float | None, hi: float | None
    ) -> np.ndarray:
        """``lo <= value < hi`` for the dimension ``key`` on ``rows`` (GatingML 2.0 §5.1.1 bounds).

        For a transformed dimension the bounds are compared in raw units (see
        :func:`pull_back_bound`), and only events near a bound, or with a raw value that is not a
        finite number, are transformed to decide — the answer is the same as comparing every
        transformed value, at a fraction of the cost.
        """
        xform_ref = key[-1]
        if xform_ref is None:
            return in_rectangle([self.take(key, rows)], [(lo, hi)])
        bands = [None if bound is None else self.compiled.raw_bound(xform_ref, bound) for bound in (lo, hi)]
        if any(bound is not None and band is None for bound, band in zip((lo, hi), bands, strict=True)):
            return in_rectangle([self.take(key, rows)], [(lo, hi)])
        raw = self._untransformed((*key[:-1], None), rows)
        inside = np.ones(len(raw), dtype=bool)
        undecided = ~np.isfinite(raw)
        floor = transform_domain_floor(self.compiled.tree.transforms[xform_ref])
        if floor is not None:
            undecided |= raw <= floor
        lo_band, hi_band = bands
        if lo_band is not None:
            inside &= raw >= lo_band[1]
            undecided |= (raw >= lo_band[0]) & (raw < lo_band[1])
        if hi_band is not None:
            inside &= raw < hi_band[0]
            undecided |= (raw >= hi_band[0]) & (raw < hi_band[1])
        if undecided.any():
            index = np.flatnonzero(undecided)
            exact_rows = index if rows is None else rows[index]
            inside[index] = in_rectangle([self.take(key, exact_rows)], [(lo, hi)])
        return inside

    def _untransformed(self, key: ColumnKey, rows: np.ndarray | None) -> np.ndarray:
        if key[0] == "ratio":
            _, x, y, a, b, c, _ = key
            # GatingML 2.0 §6.2 fratio of raw values, in FlowKit's RatioTransform arithmetic
            with np.errstate(divide="ignore", invalid="ignore"):
                return a * ((self._raw(x, rows) - b) / (self._raw(y, rows) - c))
        _, comp_ref, index, _ = key
        compensation = self.compiled.compensations.get(comp_ref) if comp_ref is not None else None
        if compensation is None or index not in compensation.channels:
            return self._raw(index, rows)
        solved = self._compensated.get(comp_ref)
        if solved is None:
            # a matrix's detectors are solved together, for every event of the chunk
            columns = compensation.apply([self.events[:, ch] for ch in compensation.channels])
            solved = self._compensated[comp_ref] = dict(zip(compensation.channels, columns, strict=True))
        values = solved[index]
        return values if rows is None else values[rows]

    def _raw(self, index: int, rows: np.ndarray | None) -> np.ndarray:
        values = self.events[:, index]
        return values if rows is None else values[rows]


# Below this share of the chunk, a gate is evaluated on its parent's events only; above it, on the
# whole chunk and then restricted to the parent (cheaper than gathering and scattering most events).
_SPARSE_PARENT = 0.5


def gate_events(events: np.ndarray, compiled: CompiledTree) -> dict[Path_, np.ndarray]:
    """Gate one chunk of events with a compiled tree.

    ``events`` has shape ``(n, n_channels)``, float64, raw (uncompensated) values in the sample's
    channel order. Returns a boolean mask of shape ``(n,)`` for every population path, in
    evaluation order. A population's mask is always within its parent's.
    """
    n = len(events)
    columns = EventColumns(events, compiled)
    masks: dict[Path_, np.ndarray] = {}
    for gate in compiled.gates:
        node = gate.node
        parent_mask = masks[node.parent] if node.parent else None
        rows = None
        if parent_mask is not None:
            index = np.flatnonzero(parent_mask)
            rows = index if len(index) < _SPARSE_PARENT * n else None

        def scatter(
            inside: np.ndarray, rows: np.ndarray | None = rows, parent_mask: np.ndarray | None = parent_mask
        ) -> np.ndarray:
            if rows is not None:
                mask = np.zeros(n, dtype=bool)
                mask[rows[inside]] = True
                return mask
            return inside if parent_mask is None else inside & parent_mask

        if node.kind == "boolean":
            operands = [~masks[p] if complement else masks[p] for p, complement in node.operands]
            if node.operator == "and":
                result = np.logical_and.reduce(operands)
            elif node.operator == "or":
                result = np.logical_or.reduce(operands)
            elif node.operator == "at_least":
                assert node.at_least is not None
                result = np.add.reduce([m.astype(np.uint8) for m in operands]) >= node.at_least
            else:
                result = ~operands[0]
            masks[node.path] = result if parent_mask is None else result & parent_mask
            continue

        if node.kind in ("rectangle", "quadrant"):
            boxes = [(node.path, node.bounds)] if node.kind == "rectangle" else []
            boxes += [((*node.path, q.quadrant_id), q.bounds) for q in node.quadrants]
            for path, bounds in boxes:
                inside = np.ones(n if rows is None else len(rows), dtype=bool)
                for key, (lo, hi) in zip(gate.columns, bounds, strict=True):
                    if lo is not None or hi is not None:
                        inside &= columns.within(key, rows, lo, hi)
                masks[path] = scatter(~inside if node.complement else inside)
            continue
        values = [columns.take(key, rows) for key in gate.columns]
        if node.kind == "polygon":
            assert node.vertices is not None
            inside = in_polygon(values[0], values[1], node.vertices)
        else:
            assert node.mean is not None and node.covariance is not None and node.distance_square is not None
            inside = in_ellipsoid(values, node.mean, node.covariance, node.distance_square)
        if node.complement:
            inside = ~inside
        masks[node.path] = scatter(inside)
    return masks


@dataclass(frozen=True)
class PopulationCount:
    """Events in one population of one sample, with its parent's count for percentages."""

    path: Path_
    parent: Path_
    count: int
    parent_count: int


@dataclass
class GatingResult:
    """Population counts of one sample; ``masks`` (path → bool array over all events) when kept."""

    sample_id: str
    n_events: int
    populations: list[PopulationCount]
    masks: dict[Path_, np.ndarray] | None = field(default=None, repr=False)
    sample_events: np.ndarray | None = field(default=None, repr=False)
    """A systematic subsample of the raw events (every k-th event), kept for plots when asked."""

    def count(self, path: str | Path_) -> int:
        """Events in the population with this path (``"Cells/Singlets"`` or a tuple)."""
        key = tuple(path.split("/")) if isinstance(path, str) else tuple(path)
        for pop in self.populations:
            if pop.path == key:
                return pop.count
        raise KeyError(f"{self.sample_id}: no population {population_path(key)!r}")


def gate_fcs(
    fcs: FCSFile,
    tree: GateTree,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    keep_masks: bool = False,
    keep_sample: int = 0,
) -> GatingResult:
    """Gate every event of an :class:`~rapidrelease.fcs.reader.FCSFile`, ``chunk_size`` events at a time.

    Memory is bounded by ``chunk_size`` × channels × 8 bytes (plus the masks when ``keep_masks``).
    With ``keep_sample`` > 0, about that many raw events, spread evenly over the acquisition, are
    kept in :attr:`GatingResult.sample_events` in the same pass.
    """
    compiled = compile_tree(tree, SampleLayout.of(fcs))
    return gate_chunks(
        fcs.sample_id,
        fcs.iter_event_chunks(chunk_size),
        compiled,
        keep_masks=keep_masks,
        keep_sample=keep_sample,
        n_expected=fcs.n_events,
    )


def gate_chunks(
    sample_id: str,
    chunks: Iterable[np.ndarray],
    compiled: CompiledTree,
    keep_masks: bool = False,
    keep_sample: int = 0,
    n_expected: int = 0,
) -> GatingResult:
    """Gate a stream of event chunks (each ``(n_i, n_channels)`` float64) and add up the counts.

    ``keep_sample`` keeps every k-th event (k = ``n_expected`` // ``keep_sample``) for plots.
    """
    pops = compiled.populations
    counts = dict.fromkeys((p for p, _ in pops), 0)
    kept: dict[Path_, list[np.ndarray]] = {p: [] for p, _ in pops}
    sampled: list[np.ndarray] = []
    stride = max(1, n_expected // keep_sample) if keep_sample else 0
    n_events = 0
    for chunk in chunks:
        if stride:
            first = (-n_events) % stride  # the next multiple of the stride within this chunk
            sampled.append(np.array(chunk[first::stride], dtype=np.float64))
        n_events += len(chunk)
        for path, mask in gate_events(chunk, compiled).items():
            counts[path] += int(np.count_nonzero(mask))
            if keep_masks:
                kept[path].append(mask)
    populations = [
        PopulationCount(path, parent, counts[path], counts[parent] if parent else n_events)
        for path, parent in pops
    ]
    masks = None
    if keep_masks:
        masks = {p: (np.concatenate(m) if m else np.zeros(0, dtype=bool)) for p, m in kept.items()}
    sample_events = None
    if stride:
        width = len(compiled.layout.pnn_labels)
        sample_events = np.concatenate(sampled) if sampled else np.zeros((0, width))
    return GatingResult(sample_id, n_events, populations, masks, sample_events)
