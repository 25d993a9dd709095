"""The GatingML 2.0 templates that gate the demo tubes, as an analyst would draw them.

Three templates: the phenotype tubes' (:func:`gating_ml_template`), the potency tubes'
(:func:`potency_template`) and the microbial-flow tubes' (:func:`microbial_template`).

Gate boundaries sit in the valleys between the simulated populations, read off the plots once and
fixed here (they are not fitted to the data). Fluorescence dimensions are compensated with the
file's own ``$SPILLOVER`` (``compensation-ref="FCS"``) and displayed on a logicle scale
(T = 262144, W = 0.5, M = 4.5, A = 0), so their coordinates are in logicle units (0–1); scatter
dimensions are uncompensated and untransformed, in area units.

Gate tree (population paths are the gate IDs from the root)::

    Cells            polygon    FSC-A × SSC-A      debris excluded
    └ Singlets       polygon    FSC-A × FSC-H      the diagonal; doublets fall below it
      └ Live         rectangle  Viability low × any SSC-A
        └ CD3pos     rectangle  CD3 high × any SSC-A
          └ CARpos   rectangle  CAR above the negative population × any SSC-A
            ├ CD4vCD8  quadrants CD4 × CD8: CD4posCD8neg, CD4posCD8pos, CD4negCD8pos, CD4negCD8neg
            └ Memory   quadrants CD45RA × CCR7: CD45RAposCCR7pos (naive/stem-like),
                       CD45RAnegCCR7pos (central memory), CD45RAnegCCR7neg (effector memory),
                       CD45RAposCCR7neg (TEMRA)

"pos"/"neg" stand for the "+"/"−" of a flow report because GatingML 2.0 types gate IDs as xs:ID
(an XML NCName, which cannot hold "+" or "/"), and FlowKit validates templates against that schema.

The potency template has the same gates down to ``CARpos`` (same IDs and boundaries) and nothing
below: each cytokine's positivity is set per lot from its unstimulated tube, not fixed here.

The microbial-flow template gates raw (uncompensated, untransformed) heights::

    Microbes         rectangle  FL1-H (SYBR) bright × SSC-H small
    └ Intact         rectangle  FL3-H (PI) below the damaged cells
"""

from __future__ import annotations

__all__ = [
    "TEMPLATE_NAME",
    "POTENCY_TEMPLATE_NAME",
    "MICROBIAL_TEMPLATE_NAME",
    "MICROBIAL_GATES",
    "LOGICLE",
    "CELLS_POLYGON",
    "SINGLETS_POLYGON",
    "THRESHOLDS",
    "gating_ml_template",
    "potency_template",
    "microbial_template",
]

TEMPLATE_NAME = "car_t_phenotype.gatingml.xml"
POTENCY_TEMPLATE_NAME = "car_t_potency.gatingml.xml"
MICROBIAL_TEMPLATE_NAME = "microbial_flow.gatingml.xml"

LOGICLE = {"T": 262144.0, "W": 0.5, "M": 4.5, "A": 0.0}
"""Logicle parameters of every fluorescence dimension (GatingML 2.0 ``transforms:logicle``)."""
_LOGICLE_ID = "Logicle_262144_0.5_4.5_0"

CELLS_POLYGON: tuple[tuple[float, float], ...] = (
    (42000.0, 2000.0),
    (250000.0, 2000.0),
    (250000.0, 250000.0),
    (30000.0, 250000.0),
    (28000.0, 70000.0),
    (32000.0, 30000.0),
)
"""``Cells`` vertices (FSC-A, SSC-A), area units: cuts the low-FSC, low-SSC debris cloud on a
diagonal so small, granular dead cells stay in, and leaves out scatter-saturated events."""

SINGLETS_POLYGON: tuple[tuple[float, float], ...] = (
    (25000.0, 20000.0),
    (250000.0, 200000.0),
    (250000.0, 250000.0),
    (208000.0, 250000.0),
    (25000.0, 30000.0),
)
"""``Singlets`` vertices (FSC-A, FSC-H), area units: FSC-H between 0.8 and 1.2 × FSC-A."""


THRESHOLDS: dict[str, float] = {
    "R780-A": 0.55,
    "V525-A": 0.49,
    "B530-A": 0.44,
    "V610-A": 0.45,
    "B695-A": 0.46,
    "V450-A": 0.47,
    "YG586-A": 0.40,
}
"""Positive/negative boundary per fluorescence detector, logicle units (0.111 is zero)."""

# Quadrants in the order flow reports list them: CD4 before CD8; naive/stem-like to TEMRA.
_SIGN = {True: "pos", False: "neg"}
_CD4_CD8_ORDER = ((True, False), (True, True), (False, True), (False, False))
_MEMORY_ORDER = ((True, True), (False, True), (False, False), (True, False))

MICROBIAL_GATES: dict[str, tuple[str | None, dict[str, tuple[float | None, float | None]]]] = {
    "Microbes": (None, {"FL1-H": (40000.0, None), "SSC-H": (None, 60000.0)}),
    "Intact": ("Microbes", {"FL3-H": (None, 150000.0)}),
}
"""Microbial-flow gates: id -> (parent id, {channel: (min, max)}), raw heights. FL1-H 40 000 is the
valley between the product's fragments (median about 4 000) and microbes (about 400 000); SSC-H
60 000 leaves out the large fragments; FL3-H 150 000 lies between intact microbes (SYBR's tail in
FL3, about 30 000) and PI-stained damaged ones (about 900 000)."""

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_COMMENT = """<!--
  rapidrelease demo: CAR-T release {what} gating template (GatingML 2.0).
  Written by rapidrelease simulate-demo for the synthetic demo lots in this folder.
  Fluorescence: compensated with the FCS file's $SPILLOVER, logicle T=262144 W=0.5 M=4.5 A=0
  (coordinates in logicle units). Scatter: uncompensated, untransformed (area units).
-->
"""
_MICROBIAL_COMMENT = """<!--
  rapidrelease demo: microbial flow gating template (GatingML 2.0).
  Written by rapidrelease simulate-demo for the synthetic demo lots in this folder.
  Every dimension is a raw height: uncompensated and untransformed (instrument units, 0-16777215).
-->
"""
_ROOT = """<gating:Gating-ML
    xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
"""


def _num(value: float) -> str:
    return f"{value:g}"


def _raw_dim(name: str, bounds: str = "") -> str:
    return (
        f'        <gating:dimension gating:compensation-ref="uncompensated"{bounds}>\n'
        f'            <data-type:fcs-dimension data-type:name="{name}" />\n'
        "        </gating:dimension>\n"
    )


def _fluor_dim(name: str, bounds: str) -> str:
    return (
        f'        <gating:dimension gating:compensation-ref="FCS" gating:transformation-ref="{_LOGICLE_ID}"'
        f"{bounds}>\n"
        f'            <data-type:fcs-dimension data-type:name="{name}" />\n'
        "        </gating:dimension>\n"
    )


def _polygon(
    gate_id: str, parent: str | None, x: str, y: str, vertices: tuple[tuple[float, float], ...]
) -> str:
    parent_attr = f' gating:parent_id="{parent}"' if parent else ""
    text = f'    <gating:PolygonGate gating:id="{gate_id}"{parent_attr}>\n' + _raw_dim(x) + _raw_dim(y)
    for vx, vy in vertices:
        text += (
            "        <gating:vertex>\n"
            f'            <gating:coordinate data-type:value="{_num(vx)}" />\n'
            f'            <gating:coordinate data-type:value="{_num(vy)}" />\n'
            "        </gating:vertex>\n"
        )
    return text + "    </gating:PolygonGate>\n"


def _rectangle(gate_id: str, parent: str, detector: str, positive: bool) -> str:
    bound = "min" if positive else "max"
    return (
        f'    <gating:RectangleGate gating:id="{gate_id}" gating:parent_id="{parent}">\n'
        + _fluor_dim(detector, f' gating:{bound}="{_num(THRESHOLDS[detector])}"')
        + _raw_dim("SSC-A", ' gating:min="0"')
        + "    </gating:RectangleGate>\n"
    )


def _quadrants(
    gate_id: str, parent: str, x: tuple[str, str], y: tuple[str, str], order: tuple[tuple[bool, bool], ...]
) -> str:
    """Quadrant gate on ``x`` and ``y`` ((detector, marker) each); ``order`` lists (x+, y+) per quadrant."""
    text = f'    <gating:QuadrantGate gating:id="{gate_id}" gating:parent_id="{parent}">\n'
    for detector, marker in (x, y):
        text += (
            f'        <gating:divider gating:id="{gate_id}-{marker}" gating:compensation-ref="FCS"'
            f' gating:transformation-ref="{_LOGICLE_ID}">\n'
            f'            <data-type:fcs-dimension data-type:name="{detector}" />\n'
            f"            <gating:value>{_num(THRESHOLDS[detector])}</gating:value>\n"
            "        </gating:divider>\n"
        )
    (x_detector, x_marker), (y_detector, y_marker) = x, y
    for x_pos, y_pos in order:
        quadrant_id = f"{x_marker}{_SIGN[x_pos]}{y_marker}{_SIGN[y_pos]}"
        text += f'        <gating:Quadrant gating:id="{quadrant_id}">\n'
        for detector, marker, pos in ((x_detector, x_marker, x_pos), (y_detector, y_marker, y_pos)):
            location = THRESHOLDS[detector] + (0.2 if pos else -0.2)
            text += (
                f'            <gating:position gating:divider_ref="{gate_id}-{marker}"'
                f' gating:location="{_num(round(location, 3))}" />\n'
            )
        text += "        </gating:Quadrant>\n"
    return text + "    </gating:QuadrantGate>\n"


def _car_t_gates() -> str:
    """The logicle transform and the gates down to CARpos, shared by the phenotype and potency templates."""
    return (
        f'\n    <transforms:transformation transforms:id="{_LOGICLE_ID}">\n'
        + "        <transforms:logicle"
        + "".join(f' transforms:{k}="{_num(v)}"' for k, v in LOGICLE.items())
        + " />\n    </transforms:transformation>\n\n"
        + _polygon("Cells", None, "FSC-A", "SSC-A", CELLS_POLYGON)
        + "\n"
        + _polygon("Singlets", "Cells", "FSC-A", "FSC-H", SINGLETS_POLYGON)
        + "\n"
        + _rectangle("Live", "Singlets", "R780-A", positive=False)
        + "\n"
        + _rectangle("CD3pos", "Live", "V525-A", positive=True)
        + "\n"
        + _rectangle("CARpos", "CD3pos", "B530-A", positive=True)
    )


def gating_ml_template() -> str:
    """The phenotype template as GatingML 2.0 XML: polygon (§5.1.2), rectangle (§5.1.1), quadrant (§5.1.4)."""
    return (
        _XML_DECLARATION
        + _COMMENT.format(what="phenotype")
        + _ROOT
        + _car_t_gates()
        + "\n"
        + _quadrants("CD4vCD8", "CARpos", ("V610-A", "CD4"), ("B695-A", "CD8"), _CD4_CD8_ORDER)
        + "\n"
        + _quadrants("Memory", "CARpos", ("V450-A", "CD45RA"), ("YG586-A", "CCR7"), _MEMORY_ORDER)
        + "</gating:Gating-ML>\n"
    )


def potency_template() -> str:
    """The potency template as GatingML 2.0 XML: the phenotype template's gates down to CARpos only."""
    return (
        _XML_DECLARATION + _COMMENT.format(what="potency") + _ROOT + _car_t_gates() + "</gating:Gating-ML>\n"
    )


def _raw_rectangle(
    gate_id: str, parent: str | None, bounds: dict[str, tuple[float | None, float | None]]
) -> str:
    parent_attr = f' gating:parent_id="{parent}"' if parent else ""
    text = f'    <gating:RectangleGate gating:id="{gate_id}"{parent_attr}>\n'
    for channel, (lo, hi) in bounds.items():
        limits = (f' gating:min="{_num(lo)}"' if lo is not None else "") + (
            f' gating:max="{_num(hi)}"' if hi is not None else ""
        )
        text += _raw_dim(channel, limits)
    return text + "    </gating:RectangleGate>\n"


def microbial_template() -> str:
    """The microbial-flow template as GatingML 2.0 XML: rectangle gates (§5.1.1) on raw heights."""
    gates = "\n".join(
        _raw_rectangle(gate_id, parent, bounds) for gate_id, (parent, bounds) in MICROBIAL_GATES.items()
    )
    return _XML_DECLARATION + _MICROBIAL_COMMENT + _ROOT + "\n" + gates + "</gating:Gating-ML>\n"
