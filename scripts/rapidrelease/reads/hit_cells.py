"""The index cells a run hit (its distinct minimizers), held as a set of cell numbers.

Two forms, chosen by the index's size. Up to :data:`MASK_CELLS` cells the set is a byte per cell
(at most 32 MiB): adding a batch's cells is one indexed store, a fixed cost per cell hit, where
sorting and merging cell numbers costs more the more distinct cells are held. Above it (a Kraken 2
Standard-16 database has ~4e9 cells, so a mask would be 4 GB per process, which defeats
memory-mapping the table) the set is the sorted unique cell numbers hit, whose memory follows the
distinct cells actually hit. Adding the cells that 200,000 of the demo's read pairs hit (14.7 M
hits, 140,272 distinct cells of 6 M) took 0.18-0.20 CPU s with the byte mask, against 0.62-1.23 s
with a bit per cell, set by ``np.bitwise_or.at`` (the earlier form; the same 32 MiB held 2^28 cells).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MASK_CELLS", "HitCells", "cell_dtype"]

MASK_CELLS = 1 << 25
"""Largest index (cells) whose hit cells are held as a byte each (32 MiB); larger ones as sorted numbers."""


def cell_dtype(n_cells: int) -> type[np.unsignedinteger]:
    """The narrowest dtype for cell numbers of an index of ``n_cells`` cells: uint32 below 2^32."""
    return np.uint32 if n_cells < 2**32 else np.uint64


class HitCells:
    """A growing set of cell numbers of an index of ``n_cells`` cells.

    Up to :data:`MASK_CELLS` cells, a mask of a byte per cell (1 where hit). Above, :meth:`add`
    buffers arrays of cell numbers (duplicates allowed, any order) and merges them into the sorted
    unique array only when the buffer outgrows it, so each number is sorted a bounded number of
    times (O(N log N) in all) and the memory stays within about twice the distinct cells plus the
    last array added.
    """

    def __init__(self, n_cells: int) -> None:
        self.n_cells = n_cells
        self.dtype = cell_dtype(n_cells)
        self._mask = np.zeros(n_cells, dtype=np.uint8) if n_cells <= MASK_CELLS else None
        self._unique = np.zeros(0, dtype=self.dtype)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, cells: np.ndarray) -> None:
        """Add ``cells`` (integer array (m,), cell numbers below ``n_cells``)."""
        if not len(cells):
            return
        if self._mask is not None:
            self._mask[cells] = 1
            return
        self._pending.append(np.asarray(cells).astype(self.dtype, copy=False))
        self._pending_size += len(cells)
        if self._pending_size > len(self._unique):
            self._compact()

    def cells(self) -> np.ndarray:
        """The cell numbers added, sorted and unique (``dtype`` (distinct,)); do not modify it."""
        self._compact()
        return self._unique

    def __len__(self) -> int:
        """The number of distinct cells added."""
        return len(self.cells())

    def _compact(self) -> None:
        if self._mask is not None:
            self._unique = np.flatnonzero(self._mask).astype(self.dtype)
            return
        if not self._pending:
            return
        # sorted in place rather than by np.unique, whose hash table (NumPy 2.4) took 3 times the
        # time and more memory; the held cells and the new ones are then two sorted runs, which the
        # stable sort (timsort) merges in linear time. Each array is dropped as soon as it is used.
        new = np.concatenate(self._pending)
        self._pending, self._pending_size = [], 0
        new.sort()
        new = _dedupe(new)
        if len(self._unique):
            new = np.concatenate([self._unique, new])
            self._unique = np.zeros(0, dtype=self.dtype)
            new.sort(kind="stable")
            new = _dedupe(new)
        self._unique = new


def _dedupe(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (m,), in order."""
    keep = np.empty(len(ordered), dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]
