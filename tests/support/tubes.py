"""Simulated tubes with known truth for the flow metric tests: FCS files and GatingML written at test time."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import flowio
import numpy as np

GATINGML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML '
    'xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
    'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">\n'
)


def write_tube(
    path: Path, columns: Mapping[str, np.ndarray], keywords: Mapping[str, str] | None = None
) -> Path:
    """An FCS 3.1 file of float32 events, one channel per column (in order), with extra TEXT keywords."""
    data = np.column_stack([np.asarray(v, dtype=np.float32) for v in columns.values()])
    with open(path, "wb") as fh:
        flowio.create_fcs(fh, data.ravel(), list(columns), metadata_dict=dict(keywords or {}))
    return path


def rectangle_gate(
    gate_id: str, bounds: Mapping[str, tuple[float | None, float | None]], parent: str | None = None
) -> str:
    """A GatingML 2.0 rectangle gate on uncompensated channels: ``{channel: (min, max)}``."""
    parent_attr = f' gating:parent_id="{parent}"' if parent else ""
    dims = ""
    for channel, (lo, hi) in bounds.items():
        limits = (f' gating:min="{lo}"' if lo is not None else "") + (
            f' gating:max="{hi}"' if hi is not None else ""
        )
        dims += (
            f'<gating:dimension gating:compensation-ref="uncompensated"{limits}>'
            f'<data-type:fcs-dimension data-type:name="{channel}"/></gating:dimension>\n'
        )
    return f'<gating:RectangleGate gating:id="{gate_id}"{parent_attr}>\n{dims}</gating:RectangleGate>\n'


def write_gatingml(path: Path, *gates: str) -> Path:
    path.write_text(GATINGML_HEAD + "".join(gates) + "</gating:Gating-ML>\n", encoding="utf-8")
    return path
