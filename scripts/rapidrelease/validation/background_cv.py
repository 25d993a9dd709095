"""The reagent background's between-library variation, estimated from a lab's negative controls.

The count test of the sterility calls treats a reagent taxon's reads in each library as Poisson
around its rate × depth, the rate varying between libraries by a gamma factor of coefficient of
variation ``detection.background_cv`` (gamma-Poisson, i.e. negative binomial counts). Its per-lot
false-FAIL rate holds at ≤ 1 % only when that setting is at least the lab's true variation
(``rapidrelease validate-method`` shows the rate at a misstated CV), so the value must come from the
lab's own replicate negative controls (no-template controls of one reagent lot, sequenced apart).

Moment estimator, pooled over taxa. For one taxon with x_j reads in library j of depth d_j, X = Σ x_j,
w_j = d_j / Σ d: under the model with φ = CV², S = Σ (x_j − w_j X)² has expectation
μ(1 − Σw²) + φμ²A, A = Σw² − 2Σw³ + (Σw²)², μ = E X; and E[X² − X] = μ²(1 + φΣw²). With
R = Σ_taxa [S − X(1 − Σw²)] / Σ_taxa A(X² − X), φ = R / (1 − RΣw²) is consistent, whatever the
taxa's levels (the abundant ones weigh most, as they hold the information). The 95 % upper bound
resamples the taxa (a bootstrap of 400 draws, seeded): a lab that configures it errs on the safe side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rapidrelease.config.run import Unit
from rapidrelease.config.vocabulary import CONTAMINANT_CATEGORIES
from rapidrelease.errors import ReadsError, RecordError
from rapidrelease.records import read_unit_record
from rapidrelease.sterility.calls import load_unit_reads

__all__ = ["BackgroundCv", "estimate_background_cv", "read_negative_controls"]

_BOOTSTRAP = 400
MIN_LIBRARIES, MIN_TAXA, MIN_READS = 3, 20, 1_000
"""Below these a lab's estimate is too thin to configure: decontam and CZ ID ask for five or more
controls; a few taxa make the bootstrap over taxa meaningless."""


@dataclass(frozen=True)
class BackgroundCv:
    """The estimated CV of reagent taxa's rates between libraries (``cv``, None when the data show
    no variation beyond Poisson sampling: then 0 is the estimate), its bootstrap 95 % upper bound,
    and what it rests on: ``libraries`` negative controls and ``taxa`` taxa with reads."""

    cv: float
    upper95: float
    libraries: int
    taxa: int
    reads: int

    def shortfall(self) -> str | None:
        """Why the estimate is too thin to configure (fewer than ``MIN_LIBRARIES`` controls,
        ``MIN_TAXA`` taxa or ``MIN_READS`` reads, where the bootstrap bound means nothing), or None."""
        missing = [
            f"{have:,} {what} (needs {need:,})"
            for have, need, what in (
                (self.libraries, MIN_LIBRARIES, "negative controls"),
                (self.taxa, MIN_TAXA, "taxa with reads"),
                (self.reads, MIN_READS, "reads"),
            )
            if have < need
        ]
        return f"too little to estimate the variation from: {', '.join(missing)}" if missing else None


def _phi(counts: np.ndarray, weights: np.ndarray) -> float:
    totals = counts.sum(axis=1).astype(float)
    s = ((counts - np.outer(totals, weights)) ** 2).sum(axis=1)
    w2, w3 = float((weights**2).sum()), float((weights**3).sum())
    a = w2 - 2 * w3 + w2 * w2
    numerator = float((s - totals * (1 - w2)).sum())
    denominator = float((a * (totals * totals - totals)).sum())
    if denominator <= 0:
        return 0.0
    ratio = numerator / denominator
    if ratio * w2 >= 1:
        return math.inf
    return max(0.0, ratio / (1 - ratio * w2))


def estimate_background_cv(counts: np.ndarray, fragments: Sequence[int], seed: int = 17) -> BackgroundCv:
    """The between-library CV of reagent taxa from ``counts`` (taxa × libraries reads, integers) in
    libraries of ``fragments`` (shape (libraries,)); module docstring for the estimator.

    Raises ReadsError for fewer than 2 libraries or no taxon with reads in them.
    """
    counts = np.asarray(counts, dtype=np.int64)
    depth = np.asarray(fragments, dtype=float)
    if counts.ndim != 2 or counts.shape[1] != depth.size:
        raise ValueError(f"counts of shape {counts.shape} do not match {depth.size} libraries")
    if depth.size < 2:
        raise ReadsError(
            f"{depth.size} negative control given: the variation between libraries needs at least 2 "
            "(5 or more give a useful estimate)."
        )
    if (depth <= 0).any():
        raise ReadsError("a negative control has no fragments, so it shows no rate.")
    counts = counts[counts.sum(axis=1) > 0]
    if counts.shape[0] == 0:
        raise ReadsError(
            "the negative controls hold no reads of any contaminant taxon, so they show no variation."
        )
    weights = depth / depth.sum()
    phi = _phi(counts, weights)
    rng = np.random.default_rng(seed)
    draws = [
        _phi(counts[rng.integers(0, counts.shape[0], counts.shape[0])], weights) for _ in range(_BOOTSTRAP)
    ]
    upper = float(np.quantile(np.array(draws), 0.95))
    return BackgroundCv(
        math.sqrt(phi), math.sqrt(upper), int(depth.size), int(counts.shape[0]), int(counts.sum())
    )


def read_negative_controls(folders: Sequence[Path]) -> tuple[np.ndarray, list[int], list[str]]:
    """The contaminant-category species reads of gathered negative controls (each folder a unit's
    results folder holding ``reads.json`` and its ``taxa.parquet``): counts (taxa × controls),
    fragments per control and the controls' unit ids.

    Raises ReadsError naming the file for a record that cannot be read, a unit that is not a
    negative control, or a taxa table that is not the one its record was written with.
    """
    columns: list[dict[int, int]] = []
    fragments: list[int] = []
    names: list[str] = []
    for folder in folders:
        path = Path(folder) / "reads.json"
        try:
            record = read_unit_record(path, stage="gather")
        except RecordError as exc:
            raise ReadsError(str(exc)) from exc
        if record.role != "negative_control":
            raise ReadsError(f"{path}: unit {record.unit_id} is a {record.role}, not a negative control.")
        unit = Unit(record.lot_id, record.unit_id, record.assay, record.role, None)
        reads = load_unit_reads(unit, Path(folder))
        if reads.error is not None:
            raise ReadsError(reads.error.rstrip(".") + ".")
        columns.append(
            {
                taxid: int(row["reads_clade"])
                for taxid, row in reads.taxa.items()
                if row["rank"] == "species" and row["category"] in CONTAMINANT_CATEGORIES
            }
        )
        fragments.append(reads.fragments)
        names.append(f"{record.lot_id}/{record.unit_id}")
    taxa = sorted({taxid for column in columns for taxid in column})
    counts = np.array([[column.get(t, 0) for column in columns] for t in taxa], dtype=np.int64)
    return counts.reshape(len(taxa), len(columns)), fragments, names
