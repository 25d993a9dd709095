"""The NumPy gate kernels against FlowUtils' C implementation, which FlowKit uses."""

from __future__ import annotations

import numpy as np
import pytest
from flowutils import gating as flowutils_gating
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rapidrelease.gating.kernels import in_ellipsoid, in_polygon, in_rectangle

coordinate = st.floats(min_value=-50, max_value=50, allow_nan=False, width=64)
grid = st.integers(min_value=-3, max_value=12).map(float)  # integer grid: many points exactly on edges


@settings(max_examples=300, deadline=None)
@given(
    vertices=st.lists(st.tuples(grid, grid), min_size=3, max_size=40),
    points=arrays(np.float64, st.tuples(st.integers(1, 300), st.just(2)), elements=grid),
)
def test_polygon_matches_flowutils_with_points_on_edges_and_vertices(vertices, points):
    poly = np.array(vertices, dtype=np.float64)
    expected = flowutils_gating.points_in_polygon(poly, points)
    assert np.array_equal(in_polygon(points[:, 0], points[:, 1], poly), expected)


@settings(max_examples=200, deadline=None)
@given(
    vertices=st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=160),
    points=arrays(np.float64, st.tuples(st.integers(1, 500), st.just(2)), elements=coordinate),
)
def test_self_intersecting_and_many_vertex_polygons_match_flowutils(vertices, points):
    # random vertex lists self-intersect; >= 24 vertices exercises the y-banded kernel
    poly = np.array(vertices, dtype=np.float64)
    expected = flowutils_gating.points_in_polygon(poly, points)
    assert np.array_equal(in_polygon(points[:, 0], points[:, 1], poly), expected)


def test_polygon_edge_rule_on_a_unit_square():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    x = np.array([0.5, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0, np.nan, np.inf, 0.5])
    y = np.array([0.5, 0.5, 0.5, 0.0, 1.0, 0.0, 1.0, 0.5, 0.5, np.nan])
    # Sunday's crossing rule: left and bottom edges in, right and top edges out; NaN/inf never in
    expected = [True, True, False, True, False, True, False, False, False, False]
    assert in_polygon(x, y, square).tolist() == expected
    assert np.array_equal(in_polygon(x, y, square), flowutils_gating.points_in_polygon(square, np.c_[x, y]))


def test_ellipse_of_a_flowjo_lymphocyte_gate_shape_matches_flowutils():
    rng = np.random.default_rng(7)
    points = rng.normal(loc=[60_000, 20_000], scale=[30_000, 15_000], size=(50_000, 2))
    cov = np.array([[4.0e8, 1.2e8], [1.2e8, 1.0e8]])
    mean = np.array([65_000.0, 22_000.0])
    ours = in_ellipsoid([points[:, 0], points[:, 1]], mean, cov, 1.0)
    assert np.array_equal(ours, flowutils_gating.points_in_ellipsoid(cov, mean, 1.0, points))
    assert 0.05 < ours.mean() < 0.5  # a real share of events, so the comparison is not vacuous


@settings(max_examples=150, deadline=None)
@given(
    dims=st.integers(2, 4),
    seed=st.integers(0, 2**32 - 1),
    distance_square=st.floats(0.1, 10.0),
)
def test_ellipsoids_in_two_to_four_dimensions_match_flowutils(dims, seed, distance_square):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dims, dims))
    cov = a @ a.T + 0.05 * np.eye(dims)
    mean = rng.normal(size=dims)
    points = rng.normal(size=(400, dims)) * 2
    expected = flowutils_gating.points_in_ellipsoid(cov, mean, distance_square, points)
    assert np.array_equal(
        in_ellipsoid([points[:, i] for i in range(dims)], mean, cov, distance_square), expected
    )


def test_ellipse_boundary_is_inclusive():
    cov = np.eye(2)
    x = np.array([1.0, 0.0, 1.0000001])
    y = np.array([0.0, 1.0, 0.0])
    assert in_ellipsoid([x, y], np.zeros(2), cov, 1.0).tolist() == [True, True, False]


def test_rectangle_minimum_inclusive_maximum_exclusive_and_open_bounds():
    values = np.array([-1.0, 0.0, 5.0, 10.0, np.nan, np.inf])
    assert in_rectangle([values], [(0.0, 10.0)]).tolist() == [False, True, True, False, False, False]
    assert in_rectangle([values], [(None, 10.0)]).tolist() == [True, True, True, False, False, False]
    assert in_rectangle([values], [(0.0, None)]).tolist() == [False, True, True, True, False, True]


@pytest.mark.parametrize("n", [0, 1])
def test_kernels_accept_empty_and_single_event_inputs(n):
    x = np.zeros(n)
    square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    assert in_polygon(x, x, square).tolist() == [True] * n
    assert in_ellipsoid([x, x], np.zeros(2), np.eye(2), 1.0).tolist() == [True] * n
    assert in_rectangle([x], [(-1.0, 1.0)]).tolist() == [True] * n
