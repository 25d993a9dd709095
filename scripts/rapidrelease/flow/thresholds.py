"""Positivity thresholds derived from a control tube, and the populations a panel adds to a gate tree.

Where a cytokine or degranulation marker has no fixed gate, labs set the positive boundary from a
control of the same lot: the unstimulated tube, or the FMO tube that leaves the marker out.
rapidrelease takes the control's ``percentile`` (99.5 by default) of the channel's values in
the parent population as an order statistic. Because of that it is the same value whether the
channel is looked at raw or through any monotone display transform. Events strictly above it are
positive, so at most 0.5 % of the control itself is. A percentile is a boundary only when enough of
the control lies above it: the control must hold at least ``⌈10 / (1 − p/100)⌉`` events of the parent
population (2,000 at the 99.5th percentile), so that ten events lie above the threshold — with 100
events the "99.5th percentile" is the control's maximum, a value so variable that 4.9 % of lots with a
true 2 % response report ≥ 5 % (issue 17). A control with fewer gives no threshold, and every metric
reading its population is INCONCLUSIVE naming the control and its count. The threshold becomes a
one-dimensional range gate ``<parent>/<name>`` of the tree, on the same channel and compensation. A panel's
polyfunctional combinations become ``at_least`` gates over their populations.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from rapidrelease.errors import MetricError
from rapidrelease.flow.panel import Panel, ThresholdDefinition
from rapidrelease.gating.engine import (
    DEFAULT_CHUNK_SIZE,
    EventColumns,
    SampleLayout,
    compile_tree,
    gate_events,
)
from rapidrelease.gating.template import Dimension, GateNode, GateTree, population_path

__all__ = [
    "EVENTS_ABOVE_THRESHOLD",
    "DerivedThreshold",
    "derive_threshold",
    "min_control_events",
    "percentile_order_statistic",
    "population_values",
    "with_panel_gates",
]


EVENTS_ABOVE_THRESHOLD = 10
"""Fewest control events that must lie above a derived threshold for it to be a boundary rather than
one of the control's largest values (DESIGN.md §5: thousands of control events, ≥ 10 above)."""


def min_control_events(percentile: float, above: int = EVENTS_ABOVE_THRESHOLD) -> int:
    """Fewest control events that put ``above`` of them beyond the ``percentile`` (2,000 for 99.5 and 10).

    ``⌈above · 100 / (100 − percentile)⌉``, computed so that a percentile written in decimals (99.5,
    99.9) does not gain an event from binary rounding.
    """
    if not 0.0 < percentile < 100.0:
        raise ValueError(f"a percentile lies strictly between 0 and 100 ({percentile})")
    exceedance = Decimal(100) - Decimal(repr(percentile))  # 0.1 for 99.9, not 0.0999999999999943
    return math.ceil(Decimal(above * 100) / exceedance)


@dataclass(frozen=True)
class DerivedThreshold:
    """A threshold as derived: its value on the channel and the control events it rests on."""

    definition: ThresholdDefinition
    value: float
    unit_id: str
    events: int

    def record(self) -> dict[str, Any]:
        """The threshold as ``metrics.json`` records it, with the control it came from."""
        d = self.definition
        return {
            "name": d.name,
            "population": population_path(d.path),
            "channel": d.channel,
            "compensation": d.comp_ref or "uncompensated",
            "percentile": d.percentile,
            "value": self.value,
            "control_role": d.control,
            "control_unit_id": self.unit_id,
            "control_events": self.events,
        }


def percentile_order_statistic(values: np.ndarray, percentile: float) -> float:
    """The ``percentile`` of ``values`` as the ⌈p·n⌉-th smallest value (nearest-rank, no interpolation).

    An order statistic commutes with monotone transforms, so the threshold does not depend on the
    scale the channel is displayed on. Non-finite values are left out. At most ``(100 − p)`` % of
    ``values`` lie strictly above it.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError("no finite values")
    rank = max(1, math.ceil(percentile / 100.0 * finite.size))
    return float(np.partition(finite, rank - 1)[rank - 1])


def _threshold_dimension(definition: ThresholdDefinition) -> Dimension:
    return Dimension(label=definition.channel, ratio=None, comp_ref=definition.comp_ref, xform_ref=None)


def population_values(
    chunks: Iterable[np.ndarray],
    tree: GateTree,
    layout: SampleLayout,
    population: tuple[str, ...],
    dimensions: Sequence[Dimension],
) -> np.ndarray:
    """The values of ``dimensions`` for every event of ``population``, shape (events, dimensions).

    Read one chunk at a time: memory is one chunk plus the population's values (8 bytes each).
    """
    probes = tuple(
        GateNode(
            path=(f"__value_{i}__",),
            parent=population,
            kind="rectangle",
            dimensions=(d,),
            bounds=((None, None),),
        )
        for i, d in enumerate(dimensions)
    )
    compiled = compile_tree(dataclasses.replace(tree, nodes=(*tree.nodes, *probes)), layout)
    keys = [gate.columns[0] for gate in compiled.gates[len(tree.nodes) :]]
    parts = []
    for chunk in chunks:
        masks = gate_events(chunk, compiled)
        rows = np.flatnonzero(masks[population]) if population else None
        columns = EventColumns(chunk, compiled)
        parts.append(np.column_stack([np.array(columns.take(key, rows), dtype=np.float64) for key in keys]))
    return np.concatenate(parts) if parts else np.zeros((0, len(keys)))


def derive_threshold(
    definition: ThresholdDefinition,
    fcs: Any,
    tree: GateTree,
    layout: SampleLayout,
    unit_id: str,
    min_events: int,
) -> DerivedThreshold:
    """The threshold of ``definition`` from a control tube (its FCS file, tree and layout).

    Raises :class:`MetricError` naming the control and its count when its parent population holds
    fewer than ``min_events`` events or fewer than :func:`min_control_events` of the percentile (a
    99.5th percentile of a few hundred events is no boundary).
    """
    values = population_values(
        fcs.iter_event_chunks(DEFAULT_CHUNK_SIZE),
        tree,
        layout,
        definition.parent,
        [_threshold_dimension(definition)],
    )[:, 0]
    finite = int(np.count_nonzero(np.isfinite(values)))
    needed = min_control_events(definition.percentile)
    if finite < min_events:
        raise MetricError(
            f"threshold {definition.name} rests on {finite} events of "
            f"{population_path(definition.parent)} in control {unit_id}, fewer than the {min_events} "
            "the panel requires."
        )
    if finite < needed:
        raise MetricError(
            f"threshold {definition.name} rests on {finite} events of "
            f"{population_path(definition.parent)} in control {unit_id}, fewer than the {needed} that put "
            f"{EVENTS_ABOVE_THRESHOLD} events above its {definition.percentile:g}th percentile."
        )
    return DerivedThreshold(
        definition, percentile_order_statistic(values, definition.percentile), unit_id, finite
    )


def with_panel_gates(tree: GateTree, panel: Panel, thresholds: Mapping[str, float]) -> GateTree:
    """``tree`` with the panel's derived thresholds (those in ``thresholds``, by name) and combinations.

    A threshold is a range gate ``value < x`` on its channel within its parent; a combination an
    ``at_least`` gate within its denominator. A population whose threshold could not be derived is
    left out, and so is every combination that needs it: the metrics reading them say why.
    """
    nodes = list(tree.nodes)
    known = {path for path, _ in tree.populations()}
    for definition in panel.thresholds:
        if definition.name not in thresholds or definition.parent not in known:
            continue
        nodes.append(
            GateNode(
                path=definition.path,
                parent=definition.parent,
                kind="rectangle",
                dimensions=(_threshold_dimension(definition),),
                # GatingML bounds are lo <= x < hi; the next float above the threshold makes it x > threshold
                bounds=((float(np.nextafter(thresholds[definition.name], np.inf)), None),),
            )
        )
        known.add(definition.path)
    for metric in panel.metrics:
        if not metric.any_of or not all(p in known for p in metric.any_of) or metric.denominator not in known:
            continue
        assert metric.denominator is not None
        nodes.append(
            GateNode(
                path=metric.numerator,
                parent=metric.denominator,
                kind="boolean",
                operator="at_least",
                operands=tuple((p, False) for p in metric.any_of),
                at_least=metric.at_least,
            )
        )
        known.add(metric.numerator)
    return dataclasses.replace(tree, nodes=tuple(nodes))
