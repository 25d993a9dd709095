"""A gate drawn as an analyst sees it in FlowJo, as one inline SVG that every browser draws and prints.

Two-dimensional gates: the parent's events as a density image (a 2-D histogram on the plot's own
axes, 2 × 2 screen pixels a bin, every bin holding an event painted, coloured on a log scale by the
events around it, so a lone outlier is still a visible point), computed in NumPy and embedded as a
PNG; the gate over it as vector lines. One-dimensional gates: the parent's histogram as a vector
outline with the gate's range shaded. No WebGL and no script: a page holds as many plots as it has
gates, and they print.

Events and gate are placed by one mapping per axis (:class:`Axis`) in the gate's own coordinates
(compensated and transformed as the gating engine evaluates them, ``gate_plots.json``), so an
event the engine counts inside the gate is drawn inside its outline. Transformed axes are labelled
in data units at decades (0, 10², 10³ …) where the engine's transform puts them
(:func:`rapidrelease.gating.evidence.axis_ticks`); linear ones at round numbers (50K, 100K …).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
from markupsafe import Markup

from rapidrelease.report.png import png_data_uri

__all__ = ["BIN_PX", "PLOT_AREA", "Axis", "density_rgba", "gate_svg", "linear_ticks"]

WIDTH, LEFT, RIGHT, BOTTOM = 430, 66, 12, 48
# the plot area (x, y, width, height in px) in the frame below the header (title, parent, counts),
# whose height grows with the gate's populations so that their counts never hide an event
PLOT_AREA = (LEFT, 0, WIDTH - LEFT - RIGHT, 290)
BIN_PX = 2  # screen pixels per side of a density bin
_ASINH_COFACTOR = 150.0
_GATE_LINE = "#111111"
_AXIS = "#56606b"
_HISTOGRAM = "#9aa3ad"
_RANGE = "#d1495b"
# density colours, low to high (blue, cyan, green, yellow, red): all saturated, so that a pixel of an
# event is told from the white ground, the grey axes and the black gate by its colour alone
_STOPS = np.array(
    [[30, 60, 220], [0, 180, 230], [40, 175, 60], [235, 210, 0], [215, 30, 30]], dtype=np.float64
)


@dataclass(frozen=True)
class Axis:
    """One axis of a plot: ``lo``..``hi`` in the gate's coordinates drawn over ``length`` pixels of
    the plot area, upward when ``upward`` (a y axis)."""

    lo: float
    hi: float
    length: int
    upward: bool = False

    def px(self, values: np.ndarray | float) -> np.ndarray:
        """Pixel offsets from the plot area's left (x) or top (y) edge of ``values``."""
        frac = (np.asarray(values, dtype=np.float64) - self.lo) / (self.hi - self.lo)
        return (1.0 - frac if self.upward else frac) * self.length


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _span(values: np.ndarray, bounds: Iterable[float | None]) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    candidates = np.concatenate([finite, np.array([b for b in bounds if b is not None], dtype=np.float64)])
    if candidates.size == 0:
        return 0.0, 1.0
    lo, hi = float(np.min(candidates)), float(np.max(candidates))
    pad = 0.04 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def _colours(level: np.ndarray) -> np.ndarray:
    """RGB (…, 3) of ``level`` in [0, 1] along the density colours."""
    scaled = np.clip(level, 0.0, 1.0) * (len(_STOPS) - 1)
    low = np.minimum(np.floor(scaled).astype(np.int64), len(_STOPS) - 2)
    t = (scaled - low)[..., None]
    return _STOPS[low] * (1.0 - t) + _STOPS[low + 1] * t


def density_rgba(x: np.ndarray, y: np.ndarray, x_axis: Axis, y_axis: Axis) -> tuple[np.ndarray, int]:
    """The events (``x``, ``y``: gate coordinates, NaN skipped) as an RGBA image of the plot area.

    Shape (``y_axis.length``, ``x_axis.length``, 4), uint8, top row first, one pixel a screen
    pixel. Bins of ``BIN_PX`` pixels that hold an event are opaque, coloured by log10 of the
    events in the 3 × 3 bins around them over the most in any; the rest is transparent. Returns
    the image and the number of painted bins.
    """
    nx, ny = x_axis.length // BIN_PX, y_axis.length // BIN_PX
    keep = np.isfinite(x) & np.isfinite(y)
    # bin by the same pixel mapping the gate is drawn with
    column = np.floor(x_axis.px(x[keep]) / BIN_PX).astype(np.int64)
    row = np.floor(y_axis.px(y[keep]) / BIN_PX).astype(np.int64)
    inside = (column >= 0) & (column < nx) & (row >= 0) & (row < ny)
    counts = np.zeros((ny, nx), dtype=np.float64)
    np.add.at(counts, (row[inside], column[inside]), 1.0)
    padded = np.pad(counts, 1)
    around = sum(padded[i : i + ny, j : j + nx] for i in range(3) for j in range(3))
    painted = counts > 0
    top = float(around[painted].max()) if painted.any() else 1.0
    level = np.log10(np.maximum(around, 1.0)) / math.log10(top) if top > 1.0 else np.zeros_like(around)
    rgba = np.zeros((ny, nx, 4), dtype=np.uint8)
    rgba[..., :3] = np.rint(_colours(level)).astype(np.uint8)
    rgba[..., 3] = np.where(painted, 255, 0)
    image = np.repeat(np.repeat(rgba, BIN_PX, axis=0), BIN_PX, axis=1)
    full = np.zeros((y_axis.length, x_axis.length, 4), dtype=np.uint8)
    full[: image.shape[0], : image.shape[1]] = image
    return full, int(painted.sum())


def linear_ticks(lo: float, hi: float, target: int = 5) -> list[tuple[float, str]]:
    """Round values between ``lo`` and ``hi`` (about ``target`` of them) with their labels: 1, 2 or 5
    × a power of ten apart; thousands as ``50K``."""
    if not hi > lo:
        return []
    raw = (hi - lo) / target
    power = 10.0 ** math.floor(math.log10(raw))
    # the round step nearest above two thirds of the even one: 5–8 ticks rather than 3
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw / 1.5)
    first = math.ceil(lo / step) * step
    ticks = []
    for i in range(int((hi - first) / step + 1e-9) + 1):
        value = round(first + i * step, 12)
        label = f"{value / 1000:g}K" if abs(value) >= 1000 and step >= 1000 else f"{value:.10g}"
        ticks.append((value, label.replace("-", "−")))
    return ticks


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _decade_label(value: float) -> str:
    if value == 0:
        return "0"
    exponent = round(math.log10(abs(value)))
    return ("−" if value < 0 else "") + "10" + str(exponent).translate(_SUPERSCRIPT)


def _decade_ticks(axis: dict[str, Any]) -> tuple[list[tuple[float, str]], list[float]] | None:
    if "ticks" not in axis:
        return None
    return [(float(p), _decade_label(float(v))) for v, p in axis["ticks"]], [float(p) for p in axis["minor"]]


def _asinh_ticks() -> tuple[list[tuple[float, str]], list[float]]:
    decades = [-(10.0**k) for k in range(6, 0, -1)] + [0.0] + [10.0**k for k in range(1, 7)]
    minor = [s * m * 10.0**k for s in (-1, 1) for k in range(0, 6) for m in range(2, 10)]
    return (
        [(float(np.arcsinh(v / _ASINH_COFACTOR)), _decade_label(v)) for v in decades],
        [float(np.arcsinh(v / _ASINH_COFACTOR)) for v in minor],
    )


def _axis_svg(
    axis: Axis, ticks: tuple[list[tuple[float, str]], list[float]], title: str, vertical: bool
) -> list[str]:
    """Tick marks, labels (none closer than 26 px to one kept before: 0 first, then the widest) and
    the axis title, in page pixels."""
    x0, y0, width, height = PLOT_AREA
    major, minor = ticks
    out: list[str] = []

    def mark(offset: float, size: int) -> str:
        if vertical:
            y = y0 + offset
            return f"<line x1='{x0 - size}' x2='{x0}' y1='{y:.1f}' y2='{y:.1f}'/>"
        x = x0 + offset
        return f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{y0 + height}' y2='{y0 + height + size}'/>"

    visible = [(float(axis.px(p)), text) for p, text in major if 0 <= float(axis.px(p)) <= axis.length]
    drawn: list[float] = [offset for offset, _ in visible]
    for offset in sorted(float(axis.px(p)) for p in minor):
        # near zero a logicle axis packs the minor decades together: keep those 3 px apart
        if 0 <= offset <= axis.length and all(abs(offset - d) >= 3 for d in drawn):
            drawn.append(offset)
            out.append(mark(offset, 3))
    out += [mark(offset, 6) for offset, _ in visible]
    kept: list[tuple[float, str]] = []
    order = sorted(visible, key=lambda t: (t[1] != "0", -len(t[1]), t[0]))
    for offset, text in order:
        if all(abs(offset - k) >= 26 for k, _ in kept):
            kept.append((offset, text))
    for offset, text in kept:
        if vertical:
            out.append(
                f"<text x='{x0 - 8}' y='{y0 + offset + 4:.1f}' text-anchor='end' class='tick'>"
                f"{escape(text)}</text>"
            )
        else:
            out.append(
                f"<text x='{x0 + offset:.1f}' y='{y0 + height + 18}' text-anchor='middle' class='tick'>"
                f"{escape(text)}</text>"
            )
    if vertical:
        cy = y0 + height / 2
        out.append(
            f"<text transform='translate(14 {cy:.1f}) rotate(-90)' text-anchor='middle' class='title'>"
            f"{escape(title)}</text>"
        )
    else:
        out.append(
            f"<text x='{x0 + width / 2:.1f}' y='{y0 + height + 38}' text-anchor='middle' class='title'>"
            f"{escape(title)}</text>"
        )
    return out


def _axis_title(axis: dict[str, Any]) -> str:
    return axis["label"] if axis["scale"] == "linear" else f"{axis['label']} · {axis['scale']}"


def _ticks_for(axis: dict[str, Any], span: Axis) -> tuple[list[tuple[float, str]], list[float]]:
    return _decade_ticks(axis) or (linear_ticks(span.lo, span.hi), [])


def _wide(values: np.ndarray) -> bool:
    """Whether values span more than two decades above the spread around zero (a fluorescence channel
    recorded without a transform)."""
    finite = np.abs(values[np.isfinite(values)])
    if finite.size < 10:
        return False
    low, high = np.percentile(finite, [50, 99])
    return bool(high > 100 * max(low, 1.0))


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))


def _gate_2d(geometry: dict[str, Any], x_axis: Axis, y_axis: Axis) -> list[str]:
    """The gate's boundary in the plot area's pixels (drawn inside a clip to the plot area)."""
    kind = geometry["type"]
    if kind == "rectangle":
        (x_lo, x_hi), (y_lo, y_hi) = geometry["bounds"][:2]
        left = -5.0 if x_lo is None else float(x_axis.px(x_lo))
        right = x_axis.length + 5.0 if x_hi is None else float(x_axis.px(x_hi))
        top = -5.0 if y_hi is None else float(y_axis.px(y_hi))
        bottom = y_axis.length + 5.0 if y_lo is None else float(y_axis.px(y_lo))
        return [
            f"<rect x='{left:.1f}' y='{top:.1f}' width='{right - left:.1f}' height='{bottom - top:.1f}'/>"
        ]
    if kind == "polygon":
        vx = _finite([v[0] for v in geometry["vertices"]])
        vy = _finite([v[1] for v in geometry["vertices"]])
        return [f"<polygon points='{_points(x_axis.px(vx), y_axis.px(vy))}'/>"]
    if kind == "ellipse":
        ox, oy = (_finite(values) for values in geometry["outline"])
        return [f"<polygon points='{_points(x_axis.px(ox), y_axis.px(oy))}'/>"]
    x_dividers, y_dividers = (geometry["dividers"] + [[], []])[:2]
    lines = [
        f"<line x1='{float(x_axis.px(v)):.1f}' x2='{float(x_axis.px(v)):.1f}' y1='0' y2='{y_axis.length}'/>"
        for v in x_dividers
    ]
    lines += [
        f"<line x1='0' x2='{x_axis.length}' y1='{float(y_axis.px(v)):.1f}' y2='{float(y_axis.px(v)):.1f}'/>"
        for v in y_dividers
    ]
    return lines


def _geometry_values(geometry: dict[str, Any]) -> tuple[list[float | None], list[float | None]]:
    kind = geometry["type"]
    if kind == "rectangle":
        bounds = geometry["bounds"]
        return list(bounds[0]), list(bounds[1]) if len(bounds) > 1 else []
    if kind == "polygon":
        return [v[0] for v in geometry["vertices"]], [v[1] for v in geometry["vertices"]]
    if kind == "ellipse":
        return list(geometry["outline"][0]), list(geometry["outline"][1])
    dividers = geometry["dividers"] + [[], []]
    return list(dividers[0]), list(dividers[1])


def _counts_svg(populations: list[dict[str, Any]]) -> list[str]:
    out = []
    for i, pop in enumerate(populations):
        name = pop["population"].rsplit("/", 1)[-1]
        pct = pop["percent_parent"]
        pct_text = "—" if pct is None else f"{pct:.1f} %"
        out.append(
            f"<text x='8' y='{52 + 14 * i}' class='count'>"
            f"<tspan font-weight='700'>{escape(name)}</tspan>"
            f" {pop['count']:,} / {pop['parent_count']:,} ({pct_text})</text>"
        )
    return out


_STYLE = (
    "<style>.tick{font-size:11px;fill:#1d232a}.title{font-size:12px;fill:#1d232a}"
    ".count{font-size:11px;fill:#1d232a}"
    ".head{font-size:13px;font-weight:600;fill:#1d232a}.sub{font-size:11px;fill:#56606b}</style>"
)


def gate_svg(plot: dict[str, Any], dom_id: str) -> Markup:
    """One entry of ``gate_plots.json`` (:func:`rapidrelease.gating.evidence.gate_plot_data`) as an
    inline ``<svg class='gate-plot'>`` 430 px wide, ``dom_id`` its id (unique in the page).

    The SVG carries ``data-painted-bins`` (density bins holding an event, each ``BIN_PX``² pixels)
    and ``data-events`` (events plotted), so that a test can check the drawing against the data.
    Every text in it is escaped.
    """
    x_values = _finite(plot["x"])
    x0, y0, width, height = PLOT_AREA
    geometry = plot["geometry"]
    gate, parent = plot["gate"], plot["parent"] or "all events"
    title = gate if plot["kind"] != "quadrant" else f"{gate} (quadrants)"
    body: list[str] = []
    gx, gy = _geometry_values(geometry)
    painted = 0
    if "y" not in plot:  # one dimension: the parent's histogram, the gate's range shaded
        axis_info = dict(plot["axes"][0])
        x_title = _axis_title(axis_info)
        lo, hi = geometry["bounds"][0] if geometry["type"] == "rectangle" else (None, None)
        if "ticks" not in axis_info and _wide(x_values):
            # a linear fluorescence axis over decades shows one spike at zero: display on asinh(x/150),
            # the cytometrists' arcsinh with its usual cofactor, and say so on the axis
            x_values = np.arcsinh(x_values / _ASINH_COFACTOR)
            lo, hi = (None if b is None else float(np.arcsinh(b / _ASINH_COFACTOR)) for b in (lo, hi))
            x_title += f" · asinh(x/{_ASINH_COFACTOR:g})"
            ticks = _asinh_ticks()
            x_axis = Axis(*_span(x_values, [lo, hi]), width)
        else:
            x_axis = Axis(*_span(x_values, [lo, hi]), width)
            ticks = _ticks_for(axis_info, x_axis)
        finite = x_values[np.isfinite(x_values)]
        counts, edges = np.histogram(finite, bins=120, range=(x_axis.lo, x_axis.hi))
        y_axis = Axis(0.0, max(1.0, float(counts.max(initial=0)) * 1.08), height, upward=True)
        left = -5.0 if lo is None else float(x_axis.px(lo))
        right = width + 5.0 if hi is None else float(x_axis.px(hi))
        body.append(
            f"<rect x='{left:.1f}' y='-5' width='{right - left:.1f}' height='{height + 10}' fill='{_RANGE}' "
            f"fill-opacity='0.15' stroke='{_GATE_LINE}' stroke-width='1.5'/>"
        )
        steps_x = np.repeat(x_axis.px(edges), 2)[1:-1]
        steps_y = np.repeat(y_axis.px(counts.astype(np.float64)), 2)
        outline = np.concatenate([[x_axis.px(edges[0])], steps_x, [x_axis.px(edges[-1])]])
        heights = np.concatenate([[height], steps_y, [height]])
        body.append(
            f"<polygon class='events' points='{_points(outline, heights)}' fill='{_HISTOGRAM}' "
            "stroke='#5c6b73' "
            "stroke-width='0.8'/>"
        )
        axes_svg = _axis_svg(x_axis, ticks, x_title, vertical=False)
        axes_svg += _axis_svg(y_axis, (linear_ticks(y_axis.lo, y_axis.hi), []), "events", vertical=True)
        events = int(finite.size)
    else:
        y_values = _finite(plot["y"])
        x_axis = Axis(*_span(x_values, gx), width)
        y_axis = Axis(*_span(y_values, gy), height, upward=True)
        image, painted = density_rgba(x_values, y_values, x_axis, y_axis)
        body.append(
            f"<image class='events' x='0' y='0' width='{width}' height='{height}' preserveAspectRatio='none' "
            f"style='image-rendering:pixelated' href='{png_data_uri(image)}'/>"
        )
        body.append(
            f"<g fill='none' stroke='{_GATE_LINE}' stroke-width='1.5'>"
            f"{''.join(_gate_2d(geometry, x_axis, y_axis))}</g>"
        )
        axes_svg = _axis_svg(x_axis, _ticks_for(plot["axes"][0], x_axis), _axis_title(plot["axes"][0]), False)
        axes_svg += _axis_svg(y_axis, _ticks_for(plot["axes"][1], y_axis), _axis_title(plot["axes"][1]), True)
        events = int((np.isfinite(x_values) & np.isfinite(y_values)).sum())
    clip = f"{dom_id}-area"
    top = 44 + 14 * len(plot["populations"])
    height_px = top + height + BOTTOM
    svg = [
        f"<svg class='gate-plot' id='{escape(dom_id)}' xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' "
        f"height='{height_px}' viewBox='0 0 {WIDTH} {height_px}' role='img' data-painted-bins='{painted}' "
        f"data-events='{events}' aria-label='{escape(title)}, parent {escape(parent)}'>",
        _STYLE,
        f"<clipPath id='{escape(clip)}'><rect width='{width}' height='{height}'/></clipPath>",
        f"<text x='8' y='18' class='head'>{escape(title)}</text>",
        f"<text x='8' y='34' class='sub'>parent: {escape(parent)}</text>",
        *_counts_svg(plot["populations"]),
        f"<g transform='translate(0 {top})'>",
        f"<rect class='area' x='{x0}' y='{y0}' width='{width}' height='{height}' fill='#fff' "
        f"stroke='{_AXIS}'/>",
        f"<g transform='translate({x0} {y0})' clip-path='url(#{escape(clip)})'>{''.join(body)}</g>",
        f"<g stroke='{_AXIS}'>{''.join(s for s in axes_svg if s.startswith('<line'))}</g>",
        *(s for s in axes_svg if not s.startswith("<line")),
        "</g></svg>",
    ]
    return Markup("".join(svg))
