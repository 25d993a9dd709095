"""A spillover matrix computed from a lot's single-stain compensation controls.

The method is the one CytoExploreR (cyto_spillover_compute) and FlowJo's compensation wizard use:

1. Every control is gated to the panel's cell population (``single_stains.population``, e.g.
   single cells, on scatter only).
2. The reference is the unstained control's median in each detector.
3. A control's positive events are its brightest ``positive_fraction`` (5 % by default) in its own
   detector, the one the unit sheet's stain column names.
4. The control's row is (positive medians − unstained medians) ÷ the same difference in its own
   detector, across every fluorescence detector of the tubes.

Medians are taken on raw (uncompensated, linear) values, so no display transform enters. Detectors
without a control keep an identity row. Rows are the emitting fluorochromes (by their detector),
columns the receiving detectors, as in $SPILLOVER.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rapidrelease.errors import MetricError
from rapidrelease.fcs.compensation import Spillover
from rapidrelease.flow.thresholds import population_values
from rapidrelease.gating.engine import DEFAULT_CHUNK_SIZE, SampleLayout
from rapidrelease.gating.template import Dimension, GateTree, population_path

__all__ = ["DEFAULT_POSITIVE_FRACTION", "SingleStain", "spillover_from_single_stains", "compare_spillover"]

DEFAULT_POSITIVE_FRACTION = 0.05
UNSTAINED = "unstained"


@dataclass(frozen=True)
class SingleStain:
    """One compensation control: its unit id, its stain (a detector, or ``unstained``), its tube."""

    unit_id: str
    stain: str
    fcs: Any
    tree: GateTree
    layout: SampleLayout


def _raw_values(control: SingleStain, population: tuple[str, ...], detectors: Sequence[str]) -> np.ndarray:
    """(events, detectors) raw values of the control's events in ``population``, in one pass."""
    dimensions = [Dimension(label=d, ratio=None, comp_ref=None, xform_ref=None) for d in detectors]
    chunks = control.fcs.iter_event_chunks(DEFAULT_CHUNK_SIZE)
    return population_values(chunks, control.tree, control.layout, population, dimensions)


def spillover_from_single_stains(
    controls: Sequence[SingleStain],
    population: tuple[str, ...],
    positive_fraction: float = DEFAULT_POSITIVE_FRACTION,
    min_events: int = 100,
) -> tuple[Spillover, list[dict[str, Any]]]:
    """The spillover matrix of the controls, and per control the evidence (events, medians).

    Raises :class:`MetricError` naming the control when there is no unstained control, two controls
    stain the same detector, a stain names no fluorescence detector of the tubes, or a control has
    fewer than ``min_events`` events in the population (or positives).
    """
    unstained = [c for c in controls if c.stain.lower() == UNSTAINED]
    stained = [c for c in controls if c.stain.lower() != UNSTAINED]
    if len(unstained) != 1:
        found = f"{len(unstained)} ({', '.join(c.unit_id for c in unstained)})" if unstained else "none"
        raise MetricError(
            f"the single-stain controls need exactly one unstained control; the lot has {found}."
        )
    if not stained:
        raise MetricError("the lot has an unstained control but no single-stain control.")
    reference = unstained[0]
    detectors = [reference.fcs.pnn_labels[i] for i in reference.fcs.fluoro_indices]
    seen: dict[str, str] = {}
    for control in stained:
        if control.stain not in detectors:
            raise MetricError(
                f"compensation control {control.unit_id}: its stain {control.stain!r} is not a fluorescence "
                f"detector of the tubes ({', '.join(detectors)})."
            )
        if control.stain in seen:
            raise MetricError(
                f"compensation controls {seen[control.stain]} and {control.unit_id} "
                f"both stain {control.stain}."
            )
        seen[control.stain] = control.unit_id
    negative = _raw_values(reference, population, detectors)
    if len(negative) < min_events:
        raise MetricError(
            f"the unstained control {reference.unit_id} has {len(negative)} events in "
            f"{population_path(population)}, fewer than the {min_events} a spillover value needs."
        )
    negative_medians = np.median(negative, axis=0)
    matrix = np.eye(len(detectors))
    evidence = [
        {"unit_id": reference.unit_id, "stain": UNSTAINED, "events": len(negative), "positive_events": None}
    ]
    for control in stained:
        primary = detectors.index(control.stain)
        values = _raw_values(control, population, detectors)
        positives = (
            values[values[:, primary] >= np.quantile(values[:, primary], 1 - positive_fraction)]
            if len(values)
            else values
        )
        if len(positives) < min_events:
            raise MetricError(
                f"compensation control {control.unit_id} has {len(positives)} positive events in "
                f"{population_path(population)}, fewer than the {min_events} a spillover value needs."
            )
        positive_medians = np.median(positives, axis=0)
        # the brightest events of an unstained tube are its noise tail: a real stain lies above it
        ceiling = float(np.quantile(negative[:, primary], 0.995))
        if not positive_medians[primary] > ceiling:
            raise MetricError(
                f"compensation control {control.unit_id} is no brighter than the unstained control "
                f"in {control.stain} (its positives' median {positive_medians[primary]:.4g}, the "
                f"unstained 99.5th percentile {ceiling:.4g})."
            )
        signal = positive_medians - negative_medians
        matrix[primary] = signal / signal[primary]
        evidence.append(
            {
                "unit_id": control.unit_id,
                "stain": control.stain,
                "events": len(values),
                "positive_events": len(positives),
            }
        )
    matrix.setflags(write=False)
    return Spillover(tuple(detectors), matrix), evidence


def compare_spillover(computed: Spillover, other: Spillover) -> dict[str, Any] | None:
    """The largest off-diagonal difference |computed − other| over the detectors both name, or None."""
    common = [d for d in computed.detectors if d in other.detectors]
    worst: tuple[float, str, str] | None = None
    for emitter in common:
        i, k = computed.detectors.index(emitter), other.detectors.index(emitter)
        for receiver in common:
            if receiver == emitter:
                continue
            j, m = computed.detectors.index(receiver), other.detectors.index(receiver)
            difference = abs(float(computed.matrix[i, j]) - float(other.matrix[k, m]))
            if worst is None or difference > worst[0]:
                worst = (difference, emitter, receiver)
    if worst is None:
        return None
    return {
        "max_abs_difference": worst[0],
        "emitter": worst[1],
        "receiver": worst[2],
        "detectors": len(common),
    }
