"""The classification part: what one parallel ``rapidrelease classify --part I/N`` job saves.

The workflow classifies a unit's reads in N jobs (:func:`rapidrelease.reads.classify.classify_reads`
with ``part``), each saving its :class:`~rapidrelease.reads.classify.ClassificationTotals` as one
``.npz`` file; the gather step (:mod:`rapidrelease.reads.summary`) loads and adds them up. This module
owns that file's format, in both its forms:

- totals: ``counts`` int64 (3,) = reads, classified, shorter than k; ``direct_reads`` and
  ``kmer_hits`` int64 (n_taxa,); ``seen_cells`` uint32 (uint64 for an index of 2^32 cells or more),
  the index cells hit, sorted and unique — so a part's size follows the distinct minimizers its reads
  hit, not the index's size (the former ``seen_bits``, a bit per cell, cost 500 MB a part against a
  Kraken 2 Standard-16 database; such parts are refused); ``index_id`` uint8, the ASCII SHA-256 of
  the index manifest, so parts of different indexes are never merged;
- a failed part: ``error`` uint8, the UTF-8 sentence saying why the part's reads could not be read,
  so a bad input becomes the unit's evidence instead of a failed job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rapidrelease.errors import ConfigError
from rapidrelease.outputs import atomic_path
from rapidrelease.reads.classify import ClassificationTotals
from rapidrelease.reads.index import KmerIndex

__all__ = ["load_parts", "part_error", "save_failed_part", "save_part"]


def save_part(path: Path, totals: ClassificationTotals, index: KmerIndex) -> None:
    """Write ``totals`` (a part of a unit's reads) as ``.npz``, written atomically.

    The index's manifest hash is stored with them, so parts of different indexes are never merged.
    """
    # parts without distinct minimizers (not counted) lack the array, so load_parts refuses them
    seen = {} if totals.seen_cells is None else {"seen_cells": totals.seen_cells.cells()}
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            counts=np.array([totals.reads, totals.classified, totals.too_short], dtype=np.int64),
            direct_reads=totals.direct_reads,
            kmer_hits=totals.kmer_hits,
            **seen,
            index_id=np.frombuffer(_index_id(index).encode(), dtype=np.uint8),
        )


def load_parts(paths: Sequence[Path], index: KmerIndex) -> ClassificationTotals:
    """The sum of saved parts (counts added, distinct minimizers united). A part of another index,
    or a missing or damaged one, raises ConfigError naming it."""
    totals = ClassificationTotals.empty(index, count_distinct=True)
    for path in paths:
        try:
            with np.load(Path(path)) as part:
                if part["index_id"].tobytes().decode() != _index_id(index):
                    raise ConfigError(f"{path}: classified against another index than {index.folder}.")
                reads, classified, too_short = (int(v) for v in part["counts"])
                totals.reads += reads
                totals.classified += classified
                totals.too_short += too_short
                totals.direct_reads += part["direct_reads"]
                totals.kmer_hits += part["kmer_hits"]
                if "seen_cells" not in part.files:
                    raise ValueError("saved without the cells of its distinct minimizers, seen_cells")
                cells = part["seen_cells"]
                if cells.dtype.kind != "u" or (cells.size and int(cells.max()) >= index.size):
                    raise ValueError("its distinct minimizers are not cells of this index")
                totals.seen_cells.add(cells)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: not a classification part of this run ({exc}).") from None
    return totals


def save_failed_part(path: Path, message: str) -> None:
    """Record that a part could not be classified, with the one-sentence reason."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, error=np.frombuffer(message.encode(), dtype=np.uint8))


def part_error(paths: Sequence[Path]) -> str | None:
    """The sentence of the first part of ``paths`` that failed (:func:`save_failed_part`), or one naming
    the first part that cannot be read at all (missing, not ``.npz``); None when every part holds totals."""
    for path in paths:
        try:
            with np.load(path) as part:
                if "error" in part.files:
                    return part["error"].tobytes().decode()
        except (OSError, ValueError) as exc:
            return f"{path}: a classification part cannot be read ({exc})."
    return None


def _index_id(index: KmerIndex) -> str:
    """Identifies an index build: its inputs, parameters and counts (its manifest)."""
    return hashlib.sha256(json.dumps(index.manifest, sort_keys=True).encode()).hexdigest()
