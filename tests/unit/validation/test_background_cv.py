"""The between-library CV of reagent taxa, estimated from replicate negative controls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rapidrelease.errors import ReadsError
from rapidrelease.reads.kraken_outputs import TAXA_COLUMNS, write_taxa
from rapidrelease.records import FileRef, Metric, UnitRecord, file_ref, write_record
from rapidrelease.validation.background_cv import estimate_background_cv, read_negative_controls


def _kitome(rng: np.random.Generator, cv: float, depths: list[int], taxa: int = 300) -> np.ndarray:
    """Reads of ``taxa`` reagent taxa (log-normal shares, 10,000 RPM together) in libraries of
    ``depths``, each taxon's rate varying between libraries by a gamma factor of CV ``cv``."""
    shares = rng.lognormal(0.0, 1.5, taxa)
    rate = np.outer(shares / shares.sum() * 10_000, np.array(depths) / 1e6)
    if cv > 0:
        rate = rate * rng.gamma(1 / cv**2, cv**2, rate.shape)
    return rng.poisson(rate)


@pytest.mark.parametrize(("cv", "low", "high"), [(0.0, 0.0, 0.06), (0.3, 0.22, 0.38), (0.5, 0.4, 0.6)])
def test_the_cv_of_simulated_kitome_controls_is_recovered(cv: float, low: float, high: float) -> None:
    # five NTCs of unequal depth, as a lab's validation runs them
    depths = [1_000_000, 500_000, 2_000_000, 1_000_000, 800_000]
    estimates = [
        estimate_background_cv(_kitome(np.random.default_rng(seed), cv, depths), depths).cv
        for seed in range(8)
    ]
    assert low <= float(np.mean(estimates)) <= high
    counts = _kitome(np.random.default_rng(99), cv, depths)
    measured = estimate_background_cv(counts, depths)
    # the taxa no control read are no evidence of variation and are left out
    assert (measured.libraries, measured.taxa) == (5, int((counts.sum(axis=1) > 0).sum()))
    assert measured.upper95 >= measured.cv and measured.reads == counts.sum()


def test_poisson_replicates_show_no_variation_beyond_sampling() -> None:
    # two NTCs whose counts of each taxon are identical in rate: the estimate is 0, never negative
    counts = np.array([[10, 12], [100, 97], [5, 4], [0, 1]])
    assert estimate_background_cv(counts, [1_000_000, 1_000_000]).cv < 0.1


def test_one_control_or_no_reads_cannot_show_variation() -> None:
    with pytest.raises(ReadsError, match="1 negative control given: the variation between libraries needs"):
        estimate_background_cv(np.array([[10]]), [1_000_000])
    with pytest.raises(ReadsError, match="hold no reads of any contaminant taxon"):
        estimate_background_cv(np.zeros((3, 2), dtype=int), [1_000, 1_000])


def _gathered(folder: Path, unit_id: str, role: str, fragments: int, reads: dict[int, int]) -> Path:
    """A gathered unit folder: reads.json and its taxa table (species rows of bacteria, and human)."""
    folder.mkdir(parents=True)
    rows = [(taxid, f"Species {taxid}", "species", "bacteria", n) for taxid, n in reads.items()]
    rows.append((9606, "Homo sapiens", "species", "host", fragments - sum(reads.values())))
    table = {name: [] for name in TAXA_COLUMNS}
    for taxid, name, rank, category, n in rows:
        values = dict.fromkeys(TAXA_COLUMNS, 0) | {
            "taxid": taxid, "name": name, "rank": rank, "category": category,
            "reads_direct": n, "reads_clade": n, "breadth": 0.5,
        }  # fmt: skip
        for column in TAXA_COLUMNS:
            table[column].append(values[column])
    write_taxa(
        folder / "taxa.tsv", {k: np.array(v, dtype=TAXA_COLUMNS[k]) for k, v in table.items()}, fragments
    )
    record = UnitRecord(
        "gather", "LOT", unit_id, "sterility_reads", role,
        inputs=(FileRef("reads", f"{unit_id}.fq.gz", unit_id.ljust(64, "0"), 1),),
        outputs=(file_ref(folder / "taxa.parquet", "taxa"),),
        metrics={"fragments_total": Metric(fragments, "fragments", "count")},
    )  # fmt: skip
    write_record(folder / "reads.json", record)
    return folder


def test_gathered_negative_controls_are_read_as_a_count_table(tmp_path: Path) -> None:
    nc1 = _gathered(tmp_path / "NC1", "NC1", "negative_control", 100_000, {562: 40, 1280: 3})
    nc2 = _gathered(tmp_path / "NC2", "NC2", "negative_control", 50_000, {562: 25})
    counts, fragments, names = read_negative_controls([nc1, nc2])
    # the host's reads are no reagent background; a taxon one control lacks counts 0 there
    assert counts.tolist() == [[40, 25], [3, 0]] and fragments == [100_000, 50_000]
    assert names == ["LOT/NC1", "LOT/NC2"]


def test_a_test_unit_is_no_negative_control(tmp_path: Path) -> None:
    test = _gathered(tmp_path / "T", "T", "test", 100_000, {562: 40})
    with pytest.raises(ReadsError, match=r"reads.json: unit T is a test, not a negative control\."):
        read_negative_controls([test])
