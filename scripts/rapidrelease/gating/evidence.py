"""Evidence behind a gating result: for every gate, its parent's events and its boundary, for plots.

The report draws each gate as an analyst would see it in FlowJo: the parent population's events
on the gate's own axes (compensated and transformed as the gate evaluates them), the gate drawn
over them, and the event counts of the whole file on the plot. Points are a systematic subsample
of the file (:attr:`GatingResult.sample_events`); counts and percentages are never from the subsample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rapidrelease.gating.engine import ColumnKey, CompiledTree, EventColumns, GatingResult, gate_events
from rapidrelease.gating.template import GateNode, population_path

__all__ = ["axis_ticks", "gate_plot_data"]


def _round(values: np.ndarray, digits: int = 5) -> list[float | None]:
    # 5 significant digits are finer than a plot pixel and keep the JSON small; NaN/inf become null.
    out: list[float | None] = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        out.append(float(f"{v:.{digits}g}") if np.isfinite(v) else None)
    return out


# Decades a cytometrist reads an axis by (FlowJo's labels): 0, ±10¹ … ±10⁷ in data units; minor
# ticks at 2–9 × each decade.
_DECADES = np.array([*(-(10.0**k) for k in range(7, 0, -1)), 0.0, *(10.0**k for k in range(1, 8))])
_MINOR = np.array([s * m * 10.0**k for s in (-1.0, 1.0) for k in range(0, 7) for m in range(2, 10)])


def _positions(transform: Any, values: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):  # a log transform is not finite at or below 0: those ticks are dropped
        return np.asarray(transform.apply(values[:, None]), dtype=np.float64).reshape(-1)


def axis_ticks(transform: Any) -> dict[str, list[Any]]:
    """Where data values fall on a transformed axis, for labelling it in data units.

    ``transform`` is the gate's own (FlowKit) transform, so the ticks sit in the same coordinates as
    the events and the gate boundary. Returns ``ticks``: ``[value, position]`` for each decade (0,
    ±10¹ … ±10⁷) with a finite position, and ``minor``: the positions of 2–9 × each decade.
    """
    major = _positions(transform, _DECADES)
    minor = _positions(transform, _MINOR)
    return {
        "ticks": [
            [float(v), float(f"{p:.6g}")] for v, p in zip(_DECADES, major, strict=True) if np.isfinite(p)
        ],
        "minor": [float(f"{p:.6g}") for p in minor if np.isfinite(p)],
    }


def _axis(compiled: CompiledTree, key: ColumnKey) -> dict[str, Any]:
    layout = compiled.layout
    xform_ref = key[-1]
    transform = None if xform_ref is None else compiled.tree.transforms[xform_ref]
    scale = "linear" if transform is None else type(transform).__name__.removesuffix("Transform").lower()
    if key[0] == "ratio":
        _, x, y, *_ = key
        label = f"{layout.pnn_labels[x]} / {layout.pnn_labels[y]}"
    else:
        index = key[2]
        pnn, pns = layout.pnn_labels[index], layout.pns_labels[index]
        label = f"{pns} ({pnn})" if pns and pns != pnn else pnn
        compensation = compiled.compensations.get(key[1]) if key[1] is not None else None
        if compensation is not None and index in compensation.channels:
            label = f"Comp-{label}"
    if transform is None:  # raw data units: the plot chooses round numbers itself
        return {"label": label, "scale": scale}
    return {"label": label, "scale": scale, **axis_ticks(transform)}


def _geometry(node: GateNode) -> dict[str, Any]:
    if node.kind == "rectangle":
        return {"type": "rectangle", "bounds": [list(b) for b in node.bounds]}
    if node.kind == "polygon":
        assert node.vertices is not None
        return {"type": "polygon", "vertices": [_round(v) for v in node.vertices]}
    if node.kind == "ellipsoid":
        assert node.mean is not None and node.covariance is not None and node.distance_square is not None
        geometry: dict[str, Any] = {"type": "ellipse", "mean": _round(node.mean[:2])}
        # the boundary of the first two dimensions: mean + sqrt(d²) · L · (cos t, sin t), C = L Lᵀ
        chol = np.linalg.cholesky(node.covariance[:2, :2])
        t = np.linspace(0.0, 2.0 * np.pi, 121)
        ring = node.mean[:2, None] + np.sqrt(node.distance_square) * chol @ np.vstack([np.cos(t), np.sin(t)])
        geometry["outline"] = [_round(ring[0]), _round(ring[1])]
        return geometry
    assert node.kind == "quadrant"
    dividers: list[list[float]] = [[] for _ in node.dimensions]
    for quadrant in node.quadrants:
        for i, (lo, hi) in enumerate(quadrant.bounds):
            for value in (lo, hi):
                if value is not None and value not in dividers[i]:
                    dividers[i].append(value)
    return {"type": "quadrant", "dividers": [sorted(d) for d in dividers]}


def gate_plot_data(
    result: GatingResult, compiled: CompiledTree, max_points: int = 4000
) -> list[dict[str, Any]]:
    """One plot description per gate of the tree (Boolean gates have no axes and are left out).

    Each holds: ``gate`` (path), ``parent`` (path), ``kind``, ``axes`` (label and scale of up to two
    dimensions and, for a transformed one, where its decades fall: :func:`axis_ticks`), ``x``/``y``
    (at most ``max_points`` of the parent's subsampled events, in the gate's coordinates; ``y`` is
    absent for a one-dimensional gate), ``member`` (for each point, the index in ``populations`` of
    the population it falls in, or -1), ``geometry`` (the boundary in the same coordinates) and
    ``populations`` (path, count, parent_count, percent of parent — of the whole file).
    """
    sample = result.sample_events
    if sample is None:
        raise ValueError("gate_plot_data needs a GatingResult gated with keep_sample > 0")
    masks = gate_events(sample, compiled)
    columns = EventColumns(sample, compiled)
    counts = {pop.path: pop for pop in result.populations}
    plots = []
    for gate in compiled.gates:
        node = gate.node
        if node.kind == "boolean":
            continue
        parent_rows = np.flatnonzero(masks[node.parent]) if node.parent else np.arange(len(sample))
        if len(parent_rows) > max_points:
            parent_rows = parent_rows[np.linspace(0, len(parent_rows) - 1, max_points).astype(np.int64)]
        keys = gate.columns[:2]
        member = np.full(len(parent_rows), -1, dtype=np.int64)
        for index, pop in enumerate(node.population_paths()):
            member[masks[pop][parent_rows]] = index
        plot: dict[str, Any] = {
            "gate": population_path(node.path),
            "parent": population_path(node.parent),
            "kind": node.kind,
            "axes": [_axis(compiled, key) for key in keys],
            "x": _round(columns.take(keys[0], parent_rows)),
            "member": member.tolist(),
            "geometry": _geometry(node),
            "populations": [
                {
                    "population": population_path(pop),
                    "count": counts[pop].count,
                    "parent_count": counts[pop].parent_count,
                    "percent_parent": (
                        100.0 * counts[pop].count / counts[pop].parent_count
                        if counts[pop].parent_count
                        else None
                    ),
                }
                for pop in node.population_paths()
            ],
        }
        if len(keys) > 1:
            plot["y"] = _round(columns.take(keys[1], parent_rows))
        plots.append(plot)
    return plots
