"""Property tests: the whole engine, from a GatingML file to event masks, against FlowKit itself.

Each example builds a FlowKit ``GatingStrategy`` (random rectangle, range, polygon and ellipse gates,
each dimension raw or under a random logicle, asinh, hyperlog, log or linear transform, optionally
compensated), exports it with ``flowkit.export_gatingml``, loads that file through
:func:`rapidrelease.gating.template.load_template` and gates random events chunk by chunk with
:func:`rapidrelease.gating.engine.gate_chunks`. Every population's mask must equal
``GatingStrategy.gate_sample``'s event for event: FlowKit is the correctness reference (DESIGN.md §4).

Gate bounds, ellipse centres and polygon vertices are mostly taken from the events' own transformed
values, so many events sit exactly on a boundary, where inclusive/exclusive rules and the engine's
raw-unit pull-back of rectangle bounds (``pull_back_bound``) would show an error first. Raw values
span negative to 10⁶ (and 0), so the log transform's NaN domain is exercised too.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import flowkit as fk
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidrelease.gating.engine import SampleLayout, compile_tree, gate_chunks
from rapidrelease.gating.template import load_template

CHANNELS = ("FSC-A", "SSC-A", "FL1-A", "FL2-A", "FL3-A")
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def transforms(draw) -> fk.transforms.Transform | None:
    """None (raw) or a FlowKit transform with parameters inside GatingML 2.0 §6's valid ranges."""
    kind = draw(st.sampled_from(["raw", "logicle", "asinh", "hyperlog", "log", "linear"]))
    top = draw(st.sampled_from([1024.0, 10_000.0, 262_144.0]))
    if kind == "raw":
        return None
    if kind == "linear":
        return fk.transforms.LinearTransform(top, draw(st.sampled_from([0.0, 100.0, 1000.0])))
    if kind == "log":
        return fk.transforms.LogTransform(top, draw(st.sampled_from([2.0, 4.5, 5.0])))
    m = draw(st.sampled_from([4.0, 4.5, 5.0]))
    if kind == "asinh":
        return fk.transforms.AsinhTransform(top, m, draw(st.sampled_from([0.0, 1.0, 2.0])))
    # logicle needs 0 <= W <= M/2; hyperlog's W must be above 0 (GatingML 2.0 schema)
    w = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0] if kind == "logicle" else [0.5, 1.0, 2.0]))
    a = draw(st.sampled_from([0.0, 0.5]))
    cls = fk.transforms.LogicleTransform if kind == "logicle" else fk.transforms.HyperlogTransform
    return cls(top, w, m, a)


def _raw_events(seed: int, n: int) -> np.ndarray:
    """Events like a cytometer's: log-spread magnitudes, some negative (compensation, baseline),
    exact zeros and repeated values, so ties and every transform branch occur."""
    rng = np.random.default_rng(seed)
    values = 10.0 ** rng.uniform(-2, 6, (n, len(CHANNELS)))
    values *= rng.choice([-1.0, 1.0, 1.0, 1.0], values.shape)
    values[rng.random(values.shape) < 0.03] = 0.0
    repeated = rng.random(n) < 0.1
    values[repeated] = values[rng.integers(0, n, repeated.sum())]
    # float32 values, as FCS files store them: flowkit.Sample keeps events as float32, so a float64
    # event on a bound would be rounded off it on FlowKit's side only
    return values.astype(np.float32).astype(np.float64)


def _apply(transform: fk.transforms.Transform | None, values: np.ndarray) -> np.ndarray:
    if transform is None:
        return values
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(transform.apply(values.reshape(-1, 1)), dtype=np.float64).reshape(-1)


def _off_the_events(value: float, values: np.ndarray) -> float:
    """``value``, or halfway to the next larger distinct value when it sits on one of ``values``.

    A quantile of repeated values (or the 0 and 1 ends of the draw) is an event's own value: with
    compensation that is an unintended tie, decided by the ~1e-13 the engine and FlowKit differ by.
    """
    if not np.any(np.abs(values - value) <= 1e-9 * max(1.0, abs(value))):
        return value
    above = values[values > value + 1e-9 * max(1.0, abs(value))]
    return 0.5 * (value + float(above.min())) if len(above) else value + 1e-6 * max(1.0, abs(value))


@st.composite
def gating_cases(draw):
    """(strategy, events): a random gate tree of 1-3 gates, a child possibly under the first gate."""
    n = draw(st.integers(50, 600))
    events = _raw_events(draw(st.integers(0, 2**32 - 1)), n)
    strategy = fk.GatingStrategy()
    compensated = draw(st.booleans())
    comp_ref = "uncompensated"
    if compensated:
        # spillover into the other fluorescence detectors: 1 on the diagonal, 0-30 % elsewhere
        rng = np.random.default_rng(draw(st.integers(0, 1000)))
        spill = np.eye(3) + np.triu(rng.uniform(0, 0.3, (3, 3)), 1) + np.tril(rng.uniform(0, 0.1, (3, 3)), -1)
        strategy.add_comp_matrix(
            "spill", fk.Matrix(spill, list(CHANNELS[2:]), fluorochromes=list(CHANNELS[2:]))
        )
        comp_ref = "spill"
    xforms: dict[int, str | None] = {}
    for c in range(len(CHANNELS)):
        transform = draw(transforms())
        if transform is None:
            xforms[c] = None
        else:
            xforms[c] = f"t{c}"
            strategy.add_transform(f"t{c}", transform)
    # the values the gates see; with compensation these are FlowKit's compensated events (a bound
    # taken from them may differ from the engine's by ~1e-13, so ties are only drawn uncompensated)
    seen = events.copy()
    if compensated:
        seen[:, 2:] = np.linalg.solve(strategy.comp_matrices["spill"].matrix.T, events[:, 2:].T).T
    shown = np.column_stack(
        [_apply(strategy.transformations.get(xforms[c]), seen[:, c]) for c in range(len(CHANNELS))]
    )

    def value_on(c: int) -> float:
        column = shown[:, c]
        finite = column[np.isfinite(column)]
        if len(finite) == 0:
            return 0.0
        if not compensated and draw(st.booleans()):
            return float(finite[draw(st.integers(0, len(finite) - 1))])  # an event exactly on it
        lo, hi = np.quantile(finite, [0.05, 0.95])
        value = float(lo + (hi - lo) * draw(st.floats(0, 1)))
        return _off_the_events(value, finite) if compensated else value

    def dimension(c: int, **bounds) -> fk.Dimension:
        ref = comp_ref if c >= 2 else "uncompensated"
        return fk.Dimension(CHANNELS[c], compensation_ref=ref, transformation_ref=xforms[c], **bounds)

    parent = ("root",)
    for g in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["rectangle", "range", "polygon", "ellipse"]))
        axes = draw(st.lists(st.integers(0, len(CHANNELS) - 1), min_size=2, max_size=3, unique=True))
        name = f"g{g}{kind}"
        if kind in ("rectangle", "range"):
            dims = []
            for c in axes[: 1 if kind == "range" else len(axes)]:
                lo, hi = sorted((value_on(c), value_on(c)))
                which = draw(st.sampled_from(["both", "min", "max"]))
                dims.append(
                    dimension(
                        c, range_min=None if which == "max" else lo, range_max=None if which == "min" else hi
                    )
                )
            # no use_complement: GatingML 2.0 has no such attribute, so export_gatingml drops it
            gate = fk.gates.RectangleGate(name, dims)
        elif kind == "polygon":
            n_vertices = draw(st.integers(3, 10))
            vertices = [[value_on(axes[0]), value_on(axes[1])] for _ in range(n_vertices)]
            gate = fk.gates.PolygonGate(name, [dimension(axes[0]), dimension(axes[1])], vertices)
        else:
            centre = [value_on(axes[0]), value_on(axes[1])]
            spread = [np.nanstd(shown[:, c][np.isfinite(shown[:, c])]) or 1.0 for c in axes[:2]]
            r = draw(st.floats(-0.8, 0.8))
            covariance = [
                [spread[0] ** 2, r * spread[0] * spread[1]],
                [r * spread[0] * spread[1], spread[1] ** 2],
            ]
            gate = fk.gates.EllipsoidGate(
                name, [dimension(axes[0]), dimension(axes[1])], centre, covariance, draw(st.floats(0.05, 4.0))
            )
        strategy.add_gate(gate, parent)
        if draw(st.booleans()):
            parent = (*parent, name)  # the next gate nests, so it sees only this gate's events
    return strategy, events


def _flowkit_masks(strategy: fk.GatingStrategy, events: np.ndarray) -> dict[tuple[str, ...], np.ndarray]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        sample = fk.Sample(events, sample_id="sample", channel_labels=list(CHANNELS))
        results = strategy.gate_sample(sample)
    return {
        (*path[1:], gate_id): results.get_gate_membership(gate_id, gate_path=path)
        for gate_id, path in strategy.get_gate_ids()
    }


def _engine_masks(
    strategy: fk.GatingStrategy, events: np.ndarray, folder: Path, chunk_size: int
) -> dict[tuple[str, ...], np.ndarray]:
    template = folder / "strategy.xml"
    with open(template, "wb") as out:
        fk.export_gatingml(strategy, out)
    tree = load_template(template).tree_for("sample")
    compiled = compile_tree(tree, SampleLayout("sample", CHANNELS, ("",) * len(CHANNELS)))
    chunks = [np.asfortranarray(events[i : i + chunk_size]) for i in range(0, len(events), chunk_size)]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # FlowUtils' log warns on the negative values it maps to NaN
        result = gate_chunks("sample", chunks, compiled, keep_masks=True)
    assert result.masks is not None
    return result.masks


@SETTINGS
@given(case=gating_cases(), chunk_size=st.sampled_from([1, 7, 64, 100_000]))
def test_engine_masks_equal_flowkits_for_random_gates_and_transforms(case, chunk_size, tmp_path):
    strategy, events = case
    expected = _flowkit_masks(strategy, events)
    got = _engine_masks(strategy, events, tmp_path, chunk_size)
    assert got.keys() == expected.keys()
    for path, mask in expected.items():
        assert np.array_equal(got[path], mask), (
            f"{'/'.join(path)}: {int(got[path].sum())} events inside, FlowKit {int(mask.sum())}"
        )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), chunk_sizes=st.lists(st.integers(1, 400), min_size=2, max_size=4))
def test_chunk_size_never_changes_a_mask_or_count(seed, chunk_sizes, tmp_path_factory):
    # One fixed tree with every kernel, a nested gate (sparse parent rows) and log transforms, gated
    # whole and in random chunk sizes: the engine promises per-event results independent of chunking.
    strategy = fk.GatingStrategy()
    strategy.add_transform("logicle", fk.transforms.LogicleTransform(262_144, 0.5, 4.5, 0))
    strategy.add_transform("log", fk.transforms.LogTransform(262_144, 5))
    logicle = {"transformation_ref": "logicle"}
    strategy.add_gate(
        fk.gates.RectangleGate("cells", [fk.Dimension("FSC-A", range_min=10.0, range_max=1e5)]), ("root",)
    )
    strategy.add_gate(
        fk.gates.PolygonGate(
            "bright",
            [fk.Dimension("FL1-A", **logicle), fk.Dimension("FL2-A", transformation_ref="log")],
            [[0.3, 0.2], [0.9, 0.4], [0.7, 0.95], [0.35, 0.8]],
        ),
        ("root", "cells"),
    )
    strategy.add_gate(
        fk.gates.EllipsoidGate(
            "blob",
            [fk.Dimension("FL1-A", **logicle), fk.Dimension("SSC-A", **logicle)],
            [0.6, 0.6],
            [[0.02, 0.005], [0.005, 0.03]],
            1.0,
        ),
        ("root", "cells"),
    )
    events = _raw_events(seed, 1000)
    folder = tmp_path_factory.mktemp("chunks")
    whole = _engine_masks(strategy, events, folder, len(events))
    assert whole[("cells",)].any(), "the tree must select events, or equality would be vacuous"
    for chunk_size in chunk_sizes:
        chunked = _engine_masks(strategy, events, folder, chunk_size)
        for path, mask in whole.items():
            assert np.array_equal(chunked[path], mask), f"{'/'.join(path)} with chunks of {chunk_size}"
