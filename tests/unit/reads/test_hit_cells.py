"""The set of index cells hit (:mod:`rapidrelease.reads.hit_cells`): what distinct-minimizer counts
(breadth) rest on, held as a byte per cell for an index of up to MASK_CELLS cells and as sorted cell
numbers above, rather than a mask over a Kraken 2 database's billions of cells."""

from __future__ import annotations

import numpy as np
import pytest

from rapidrelease.reads import hit_cells
from rapidrelease.reads.hit_cells import HitCells, cell_dtype


@pytest.fixture(params=["mask", "sorted numbers"])
def form(request, monkeypatch):
    """Both forms of the set: the tests' indexes are held as masks unless the mask limit is 0."""
    if request.param == "sorted numbers":
        monkeypatch.setattr(hit_cells, "MASK_CELLS", 0)
    return request.param


def test_cells_added_over_batches_are_their_sorted_union(form):
    rng = np.random.default_rng(7)
    n_cells = 1_000_000
    # batches as a run sees them: unsorted, with repeats, some empty, few new cells late in the run
    batches = [rng.integers(0, n_cells, size, dtype=np.int64) for size in (5, 0, 2_000, 1, 30_000, 0)]
    batches += [rng.integers(0, 5_000, 40_000) for _ in range(20)]
    hit = HitCells(n_cells)
    assert (hit._mask is not None) == (form == "mask")
    for batch in batches:
        hit.add(batch)
    expected = np.unique(np.concatenate(batches))
    assert np.array_equal(hit.cells(), expected)
    assert hit.cells().dtype == np.uint32
    assert len(hit) == len(expected)
    hit.add(expected[:10])  # cells already held change nothing
    assert np.array_equal(hit.cells(), expected)


def test_the_index_s_first_and_last_cells_and_neighbours_are_told_apart(form):
    # the first and last cells, and neighbours that a word-packed set would share a word between
    n_cells = 1_000_000
    edges = np.array([999_999, 64, 0, 127, 63, 128, 191, 192, 64], dtype=np.int64)
    hit = HitCells(n_cells)
    hit.add(edges)
    assert hit.cells().tolist() == [0, 63, 64, 127, 128, 191, 192, 999_999]


def test_an_empty_set_holds_no_cells(form):
    hit = HitCells(10)
    hit.add(np.zeros(0, dtype=np.int64))
    assert hit.cells().tolist() == [] and len(hit) == 0


def test_cell_numbers_are_32_bit_below_2_to_the_32_cells():
    assert cell_dtype(4_000_000_000) == np.uint32  # Kraken 2 Standard-16: ~4e9 cells
    assert cell_dtype(2**32 - 1) == np.uint32
    assert cell_dtype(2**32) == np.uint64
    big = HitCells(2**33)
    assert big._mask is None  # a mask of 2^33 bytes would be 8 GB
    big.add(np.array([2**33 - 1, 5, 2**32], dtype=np.int64))
    assert big.cells().dtype == np.uint64
    assert big.cells().tolist() == [5, 2**32, 2**33 - 1]
