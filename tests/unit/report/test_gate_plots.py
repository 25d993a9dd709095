"""Gate plots drawn without WebGL: the events as a density image placed by the same mapping as the
gate, so that what the engine counts inside a gate is drawn inside its outline; axes in data units."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from typing import Any
from xml.etree import ElementTree

import numpy as np
from flowkit import transforms

from rapidrelease.gating.evidence import axis_ticks
from rapidrelease.report.gate_plots import BIN_PX, PLOT_AREA, gate_svg, linear_ticks

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<b>CAR+ & <i onmouseover='x'>T"
GATE = [[0.25, 0.6], [0.3, 0.7]]  # x from 0.25 to 0.6, y from 0.3 to 0.7


def _plot(x: list[float], y: list[float], **changes: Any) -> dict[str, Any]:
    plot = {
        "gate": "Cells/CARpos",
        "parent": "Cells",
        "kind": "rectangle",
        "x": x,
        "y": y,
        "member": [-1] * len(x),
        "populations": [
            {"population": "Cells/CARpos", "count": 2, "parent_count": 3, "percent_parent": 66.7}
        ],
        "geometry": {"type": "rectangle", "bounds": GATE},
        "axes": [{"label": "FSC-A", "scale": "linear"}, {"label": "SSC-A", "scale": "linear"}],
    }
    return plot | changes


def _alpha(svg: ElementTree.Element) -> np.ndarray:
    """The density image's alpha channel (rows, columns), decoded as the PNG spec says."""
    (image,) = svg.iter(f"{SVG}image")
    data = base64.b64decode(image.get("href", "").split(",", 1)[1])
    width, height = struct.unpack(">II", data[16:24])
    idat = b"".join(
        data[at + 8 : at + 8 + n] for at, n in _chunk_offsets(data) if data[at + 4 : at + 8] == b"IDAT"
    )
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + 4 * width)
    return rows[:, 1:].reshape(height, width, 4)[..., 3]


def _chunk_offsets(data: bytes) -> list[tuple[int, int]]:
    out, at = [], 8
    while at < len(data):
        (n,) = struct.unpack(">I", data[at : at + 4])
        out.append((at, n))
        at += 12 + n
    return out


def _gate_rect(svg: ElementTree.Element) -> tuple[float, float, float, float]:
    (group,) = [g for g in svg.iter(f"{SVG}g") if g.get("fill") == "none"]
    (rect,) = group.iter(f"{SVG}rect")
    return tuple(float(rect.get(k, "nan")) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def _events(rng: np.random.Generator, n: int, inside: bool) -> tuple[list[float], list[float]]:
    """``n`` events inside the gate, or around it, never within 0.03 of its edges (8 px and more)."""
    xs, ys = [], []
    while len(xs) < n:
        x, y = rng.uniform(0.05, 0.95, size=2)
        near = GATE[0][0] - 0.03 < x < GATE[0][1] + 0.03 and GATE[1][0] - 0.03 < y < GATE[1][1] + 0.03
        within = GATE[0][0] + 0.03 < x < GATE[0][1] - 0.03 and GATE[1][0] + 0.03 < y < GATE[1][1] - 0.03
        if (inside and within) or (not inside and not near):
            xs.append(float(x))
            ys.append(float(y))
    return xs, ys


def test_events_inside_a_gate_are_drawn_inside_its_outline_and_outside_ones_outside() -> None:
    rng = np.random.default_rng(3)
    ix, iy = _events(rng, 800, inside=True)
    ox, oy = _events(rng, 800, inside=False)
    anchors = ([0.0, 1.0], [0.0, 1.0])  # the same axis range in every drawing
    drawings = {
        name: ElementTree.fromstring(str(gate_svg(_plot(x + anchors[0], y + anchors[1]), "g")))
        for name, (x, y) in {"inside": (ix, iy), "outside": (ox, oy), "all": (ix + ox, iy + oy)}.items()
    }
    left, top, width, height = _gate_rect(drawings["all"])
    assert (width, height) == _gate_rect(drawings["inside"])[2:]
    rows, columns = np.indices(_alpha(drawings["all"]).shape)
    # a pixel is in the outline if its centre is
    in_gate = (
        (columns + 0.5 > left)
        & (columns + 0.5 < left + width)
        & (rows + 0.5 > top)
        & (rows + 0.5 < top + height)
    )
    painted = {name: _alpha(svg) > 0 for name, svg in drawings.items()}
    assert painted["inside"][in_gate].sum() >= 100 * BIN_PX**2
    assert not painted["outside"][in_gate].any()  # no event outside the gate is drawn in it
    assert np.array_equal(painted["all"] & in_gate, painted["inside"] & in_gate)
    assert np.array_equal(painted["all"] & ~in_gate, painted["outside"] & ~in_gate)
    assert int(drawings["all"].get("data-events", "0")) == 1602
    # the outline sits where the axes say the gate's bounds are: x from 0.25 to 0.6 of a 0–1 axis padded 4 %
    span = PLOT_AREA[2] / 1.08
    assert left == round((0.25 + 0.04) * span, 1) and width == round(0.35 * span, 1)


def test_a_logicle_axis_is_labelled_in_data_units_at_the_decades_the_transform_puts_there() -> None:
    logicle = transforms.LogicleTransform(param_t=262144, param_w=0.5, param_m=4.5, param_a=0)
    ticks = axis_ticks(logicle)
    where = {value: position for value, position in ticks["ticks"]}
    assert set(where) >= {0.0, 100.0, 1000.0, 10000.0, 100000.0}
    assert where[1000.0] == float(f"{logicle.apply(np.array([[1000.0]]))[0, 0]:.6g}")
    assert where[0.0] < where[1000.0] < where[100000.0] <= 1.0
    x = np.linspace(0.1, 0.95, 400)
    axes = [{"label": "CD3", "scale": "logicle", **ticks}, {"label": "SSC-A", "scale": "linear"}]
    svg = str(gate_svg(_plot(list(x), list(x), axes=axes), "g"))
    labels = dict(
        re.findall(r"<text x='([\d.]+)' y='[\d.]+' text-anchor='middle' class='tick'>([^<]+)</text>", svg)
    )
    by_text = {text: float(at) for at, text in labels.items()}
    assert {"0", "10³", "10⁴", "10⁵"} <= set(by_text)
    lo, hi = 0.1 - 0.034, 0.95 + 0.034  # the events' span, padded 4 %
    expected = PLOT_AREA[0] + (where[10000.0] - lo) / (hi - lo) * PLOT_AREA[2]
    assert abs(by_text["10⁴"] - expected) < 0.06
    assert "logicle" in svg and "1.0</text>" not in svg  # no 0–1 numbers on a transformed axis


def test_a_linear_axis_is_labelled_at_round_numbers() -> None:
    assert [t for _, t in linear_ticks(0.0, 262144.0)] == ["0", "50K", "100K", "150K", "200K", "250K"]
    assert [t for _, t in linear_ticks(-0.3, 1.2)] == ["−0.2", "0", "0.2", "0.4", "0.6", "0.8", "1", "1.2"]


def test_names_are_text_in_a_well_formed_svg() -> None:
    plot = _plot([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], gate=HOSTILE, parent=HOSTILE)
    plot["axes"][0]["label"] = HOSTILE
    plot["populations"][0]["population"] = f"Cells/{HOSTILE}"
    svg = ElementTree.fromstring(str(gate_svg(plot, "g")))
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert HOSTILE in texts and f"parent: {HOSTILE}" in texts and f"{HOSTILE} 2 / 3 (66.7 %)" in texts
    assert not list(svg.iter(f"{SVG}script")) and not list(svg.iter("b"))


def test_a_one_dimensional_gate_is_a_histogram_with_its_range_shaded() -> None:
    values = list(np.random.default_rng(1).normal(50.0, 10.0, 500))
    plot = _plot(values, [], geometry={"type": "rectangle", "bounds": [[60.0, None]]})
    del plot["y"]
    svg = ElementTree.fromstring(str(gate_svg(plot, "g")))
    (histogram,) = [p for p in svg.iter(f"{SVG}polygon") if p.get("class") == "events"]
    assert len(histogram.get("points", "").split()) == 2 * 120 + 2  # a step outline over 120 bins
    assert svg.get("data-events") == "500" and not list(svg.iter(f"{SVG}image"))
