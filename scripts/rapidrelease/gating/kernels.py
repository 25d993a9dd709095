"""Gate membership kernels: pure NumPy functions over event arrays.

Each kernel takes the event coordinates of the gate's dimensions (already compensated and
transformed, float64, one value per event) and returns a boolean array of length ``n_events``.
They reproduce FlowKit/FlowUtils' results bit for bit, including which boundary points count as
inside, so that gating is event-exact against FlowKit and the ISAC GatingML 2.0 compliance suite.
NaN coordinates are never inside a gate (every comparison with NaN is false).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["in_ellipsoid", "in_polygon", "in_rectangle"]

# Below this many vertices, testing every edge against every event beats sorting events by y.
_BANDED_POLYGON_MIN_VERTICES = 24


def in_rectangle(
    columns: Sequence[np.ndarray], bounds: Sequence[tuple[float | None, float | None]]
) -> np.ndarray:
    """Events inside a hyper-rectangle: ``lo <= x < hi`` on every bounded dimension.

    From GatingML 2.0 §5.1.1: the minimum is inclusive and the maximum exclusive; a missing bound is
    unbounded. ``columns[i]`` (shape ``(n,)``) pairs with ``bounds[i] = (lo, hi)``.
    """
    n = len(columns[0]) if columns else 0
    inside = np.ones(n, dtype=bool)
    for values, (lo, hi) in zip(columns, bounds, strict=True):
        if lo is not None:
            inside &= values >= lo
        if hi is not None:
            inside &= values < hi
    return inside


def in_polygon(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Events inside a polygon, by the winding number counted odd (FlowUtils' ``points_in_polygon``).

    GatingML 2.0 §5.1.2 polygons may self-intersect; FlowUtils counts a point inside when its winding
    number is odd, using Dan Sunday's crossing rule (an upward edge counts when ``ay <= py < by`` and
    the point is strictly left of it, a downward edge when ``by <= py < ay`` and strictly right), after
    rejecting points outside the vertices' bounding box. ``x`` and ``y`` have shape ``(n,)``;
    ``vertices`` has shape ``(v, 2)``, the closing edge implied.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    x_min, y_min = vertices.min(axis=0)
    x_max, y_max = vertices.max(axis=0)
    candidate = (x >= x_min) & (x <= x_max) & (y >= y_min) & (y <= y_max)
    index = np.flatnonzero(candidate)
    px, py = x[index], y[index]
    if len(vertices) < _BANDED_POLYGON_MIN_VERTICES:
        odd = _odd_winding_all_edges(px, py, vertices)
    else:
        odd = _odd_winding_banded(px, py, vertices)
    inside = np.zeros(len(x), dtype=bool)
    inside[index[odd]] = True
    return inside


def _edges(vertices: np.ndarray) -> list[tuple[float, float, float, float]]:
    nxt = np.roll(vertices, -1, axis=0)
    return [(float(a[0]), float(a[1]), float(b[0]), float(b[1])) for a, b in zip(vertices, nxt, strict=True)]


def _odd_winding_all_edges(px: np.ndarray, py: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    winding = np.zeros(len(px), dtype=np.int32)
    for ax, ay, bx, by in _edges(vertices):
        if ay == by:
            continue  # a horizontal edge never satisfies either crossing rule
        is_left = ((bx - ax) * (py - ay)) - ((px - ax) * (by - ay))
        if ay < by:
            winding += (ay <= py) & (py < by) & (is_left > 0)
        else:
            winding -= (by <= py) & (py < ay) & (is_left < 0)
    return (winding % 2) != 0


def _odd_winding_banded(px: np.ndarray, py: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    # Sort events by y once; each edge then touches only the contiguous slice of events whose y lies
    # in its half-open band, so the work is proportional to the edges crossing each event's row, not
    # to the number of vertices (a 128-vertex FlowJo ellipse costs about as much as a rectangle).
    order = np.argsort(py, kind="stable")
    xs, ys = px[order], py[order]
    winding = np.zeros(len(xs), dtype=np.int32)
    for ax, ay, bx, by in _edges(vertices):
        if ay == by:
            continue
        lo_y, hi_y = (ay, by) if ay < by else (by, ay)
        start = int(np.searchsorted(ys, lo_y, side="left"))
        stop = int(np.searchsorted(ys, hi_y, side="left"))
        if start == stop:
            continue
        ex, ey = xs[start:stop], ys[start:stop]
        is_left = ((bx - ax) * (ey - ay)) - ((ex - ax) * (by - ay))
        if ay < by:
            winding[start:stop] += is_left > 0
        else:
            winding[start:stop] -= is_left < 0
    odd = np.empty(len(xs), dtype=bool)
    odd[order] = (winding % 2) != 0
    return odd


def in_ellipsoid(
    columns: Sequence[np.ndarray], mean: np.ndarray, covariance: np.ndarray, distance_square: float
) -> np.ndarray:
    """Events inside an ellipsoid: ``(x-μ)ᵀ C⁻¹ (x-μ) <= distance²`` (GatingML 2.0 §5.1.3; edge inclusive).

    ``columns[i]`` (shape ``(n,)``) is dimension ``i``; ``mean`` has shape ``(k,)`` and ``covariance``
    ``(k, k)``. The quadratic form is summed in a fixed order per event, so the answer for an event
    never depends on how many other events are gated with it.
    """
    inverse = np.linalg.inv(np.asarray(covariance, dtype=np.float64))
    centred = [values - m for values, m in zip(columns, mean, strict=True)]
    k = len(centred)
    total = np.zeros(len(centred[0]) if k else 0, dtype=np.float64)
    for j in range(k):
        rotated = centred[0] * inverse[0, j]
        for i in range(1, k):
            rotated = rotated + centred[i] * inverse[i, j]
        total = total + rotated * centred[j]
    return total <= distance_square
