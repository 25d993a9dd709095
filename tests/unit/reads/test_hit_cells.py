"""The set of index cells hit (:mod:`rapidrelease.reads.hit_cells`): what distinct-minimizer counts
(breadth) rest on, held as sorted cell numbers rather than a mask over the whole index."""

from __future__ import annotations

import numpy as np

from rapidrelease.reads.hit_cells import HitCells, cell_dtype


def test_cells_added_over_batches_are_their_sorted_union():
    rng = np.random.default_rng(7)
    n_cells = 1_000_000
    # batches as a run sees them: unsorted, with repeats, some empty, few new cells late in the run
    batches = [rng.integers(0, n_cells, size, dtype=np.int64) for size in (5, 0, 2_000, 1, 30_000, 0)]
    batches += [rng.integers(0, 5_000, 40_000) for _ in range(20)]
    hit = HitCells(n_cells)
    for batch in batches:
        hit.add(batch)
    expected = np.unique(np.concatenate(batches))
    assert np.array_equal(hit.cells(), expected)
    assert hit.cells().dtype == np.uint32
    assert len(hit) == len(expected)
    hit.add(expected[:10])  # cells already held change nothing
    assert np.array_equal(hit.cells(), expected)


def test_an_empty_set_holds_no_cells():
    hit = HitCells(10)
    hit.add(np.zeros(0, dtype=np.int64))
    assert hit.cells().tolist() == [] and len(hit) == 0


def test_cell_numbers_are_32_bit_below_2_to_the_32_cells():
    assert cell_dtype(4_000_000_000) == np.uint32  # Kraken 2 Standard-16: ~4e9 cells
    assert cell_dtype(2**32 - 1) == np.uint32
    assert cell_dtype(2**32) == np.uint64
    big = HitCells(2**33)
    big.add(np.array([2**33 - 1, 5, 2**32], dtype=np.int64))
    assert big.cells().dtype == np.uint64
    assert big.cells().tolist() == [5, 2**32, 2**33 - 1]
