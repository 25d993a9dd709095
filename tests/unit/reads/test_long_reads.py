"""Reads of any length: a read longer than a slice is scanned in windows, and its call, hit list and
totals are those of the same read scanned whole (Kraken 2 scores a read by all of its minimizer hits,
both mates together), with memory bounded by the slice, not the read.

The reads are real sequence from the small panel (mutated, cut with N's, soft-masked, chimeric) and
the slices are made small, so that a few hundred kb cross hundreds of window borders.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidrelease.cli import main
from rapidrelease.reads import classify
from rapidrelease.reads.classify import ClassificationTotals, ClassifyOptions, classify_batch, classify_reads
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.input import ReadBatch

from support.reads import fastq_bytes, read_table

WHOLE = 1 << 40  # a slice no read fills: the read scanned unsplit
OPTIONS = [ClassifyOptions(), ClassifyOptions(confidence=0.4), ClassifyOptions(min_hit_groups=400)]


@pytest.fixture(scope="module")
def genomes(small_panel_fasta: Path) -> dict[str, np.ndarray]:
    """The small panel's sequences longer than 40 kb, by the species' first word (human: the first
    scaffolds joined)."""
    records = [seq for _, seq in iter_fasta(small_panel_fasta)]
    long = [r for r in records if len(r) > 40_000]
    return {"sa": long[0], "kp": long[1], "hs": np.concatenate(long[2:-1]), "lambda": long[-1]}


def _mutate(seq: np.ndarray, rng: np.random.Generator, rate: float = 0.05) -> np.ndarray:
    seq = seq.copy()
    changed = rng.random(len(seq)) < rate
    seq[changed] = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, int(changed.sum()))]
    return seq


def _batch(mates1: list[np.ndarray], mates2: list[np.ndarray] | None = None) -> ReadBatch:
    def joined(mates: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.zeros(len(mates) + 1, dtype=np.int64)
        np.cumsum([len(m) for m in mates], out=offsets[1:])
        return (np.concatenate(mates) if mates else np.zeros(0, dtype=np.uint8)), offsets

    seq, offsets = joined(mates1)
    seq2, offsets2 = joined(mates2) if mates2 is not None else (None, None)
    return ReadBatch([f"r{i}" for i in range(len(mates1))], seq, offsets, seq2, offsets2, 1)


def _assert_same(whole: classify.BatchResult, windowed: classify.BatchResult, index) -> None:
    assert windowed.calls.tolist() == whole.calls.tolist()
    assert windowed.kmers.tolist() == whole.kmers.tolist()
    assert windowed.hit_groups.tolist() == whole.hit_groups.tolist()
    assert windowed.bases == whole.bases
    assert whole.runs is not None and windowed.runs is not None
    for ours, theirs in zip(windowed.runs, whole.runs, strict=True):  # Kraken's per-read hit list
        assert ours.tolist() == theirs.tolist()
    totals = []
    for result in (whole, windowed):
        total = ClassificationTotals.empty(index)
        total.add(result)
        totals.append(total)
    assert totals[1].direct_reads.tolist() == totals[0].direct_reads.tolist()
    assert totals[1].kmer_hits.tolist() == totals[0].kmer_hits.tolist()
    assert np.array_equal(totals[1].seen_cells, totals[0].seen_cells)


def _windows(seq: np.ndarray, k: int, slice_bases: int) -> list[np.ndarray]:
    """The read cut as the classifier cuts it, written out independently: windows of slice_bases - 1
    bases that overlap by k - 1."""
    widest = slice_bases - 1
    out, start = [], 0
    while True:
        out.append(seq[start : start + widest])
        if start + widest >= len(seq):
            return out
        start += widest - (k - 1)


def test_a_long_read_in_windows_is_called_as_the_whole_read(small_index, genomes):
    rng = np.random.default_rng(14)
    k = small_index.spec.k
    sa = _mutate(genomes["sa"][:300_000], rng)
    # a chimera whose call rests on the sum of its parts: K. pneumoniae, then S. aureus, then human,
    # N's cut into it, some of them astride window borders
    chimera = np.concatenate([genomes["kp"][:60_000], genomes["sa"][500_000:540_000], genomes["hs"][:30_000]])
    chimera = _mutate(chimera, rng, 0.02)
    for start in [*rng.integers(0, len(chimera) - 500, 40), 4_096 - 20, 2 * (4_096 - k) + 10]:
        chimera[start : start + rng.integers(1, 300)] = ord("N")
    soft = genomes["lambda"].copy()
    soft[10_000:30_000] += 32  # soft-masked (lower case): counts as Kraken 2 counts it
    # random sequence with a few genuine stretches: few hit groups, where min_hit_groups decides
    sparse = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, 80_000)]
    for start in range(5_000, 80_000, 20_000):
        sparse[start : start + 300] = genomes["kp"][start : start + 300]
    short = genomes["sa"][:150]
    single = _batch([sa, chimera, soft, sparse, short])
    paired = _batch(
        [genomes["kp"][100_000:220_000], short, sparse[:3_000]], [genomes["sa"][:5_000], sa, short]
    )
    for batch in (single, paired):
        for options in OPTIONS:
            whole = classify_batch(batch, small_index, options, want_runs=True, slice_bases=WHOLE)
            for slice_bases in (2_000, 4_096, 65_536):
                windowed = classify_batch(
                    batch, small_index, options, want_runs=True, slice_bases=slice_bases
                )
                assert windowed.hit_slots.dtype == bool, "scanned in windows"
                _assert_same(whole, windowed, small_index)
    calls = classify_batch(single, small_index, ClassifyOptions(), slice_bases=4_096).calls
    taxids = small_index.taxonomy.taxid[calls[:4]].tolist()
    assert taxids[0] == 93061 and taxids[2] == 10710, "S. aureus and lambda, as the reads are"

    # not vacuous: windows scored as reads of their own would count a lookup twice wherever a border
    # falls inside a run of k-mers sharing a minimizer; the windows' k-mers are the read's, once each
    for read in (sa, chimera):
        pieces = _windows(read, k, 4_096)
        as_reads = classify_batch(_batch(pieces), small_index, ClassifyOptions(), slice_bases=WHOLE)
        alone = classify_batch(_batch([read]), small_index, ClassifyOptions(), slice_bases=4_096)
        assert int(as_reads.kmers.sum()) == int(alone.kmers[0]) == len(read) - k + 1
        assert int(as_reads.hit_groups.sum()) > int(alone.hit_groups[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    slice_bases=st.integers(70, 260),
    near=st.lists(st.tuples(st.integers(0, 4), st.integers(-3, 3)), min_size=1, max_size=5),
    paired=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_reads_near_and_across_window_borders_keep_their_call(
    small_index, genomes, slice_bases, near, paired, seed
):
    # lengths at and around the window borders: a read of one slice exactly, one base more, and each
    # further window (slice - 1 - (k - 1) bases on) give or take a few bases
    k = small_index.spec.k
    widest = slice_bases - 1
    step = widest - (k - 1)
    lengths = [max(0, widest + windows * step + delta) for windows, delta in near]
    rng = np.random.default_rng(seed)
    source = genomes["kp"]

    def read(length: int) -> np.ndarray:
        start = int(rng.integers(0, len(source) - length))
        seq = _mutate(source[start : start + length], rng, 0.03)
        for _ in range(int(rng.integers(0, 3))):
            at = int(rng.integers(0, max(length, 1)))
            seq[at : at + int(rng.integers(1, 8))] = ord("N")
        return seq

    mates1 = [read(n) for n in lengths]
    mates2 = [read(int(n)) for n in rng.permutation(lengths)] if paired else None
    batch = _batch(mates1, mates2)
    options = ClassifyOptions(
        confidence=float(rng.choice([0.0, 0.3])), min_hit_groups=int(rng.choice([1, 2, 6]))
    )
    whole = classify_batch(batch, small_index, options, want_runs=True, slice_bases=WHOLE)
    windowed = classify_batch(batch, small_index, options, want_runs=True, slice_bases=slice_bases)
    _assert_same(whole, windowed, small_index)


def test_a_long_reads_scan_holds_a_slice_not_the_read(small_index, genomes):
    read = _mutate(np.tile(genomes["sa"][:1_000_000], 2), np.random.default_rng(2))
    batch = _batch([read])
    peaks = {}
    for slice_bases in (1 << 16, WHOLE):
        tracemalloc.start()
        try:
            classify_batch(batch, small_index, ClassifyOptions(), slice_bases=slice_bases)
            peaks[slice_bases] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # unsplit, a 2-Mb scan holds ~46 bytes per base (92 MB); in 64-Ki windows, a slice's worth of that
    # and a byte per index cell for the distinct minimizers
    assert peaks[WHOLE] > 60e6
    assert peaks[1 << 16] < 100 * (1 << 16) + small_index.size + 2e6


def test_classify_and_its_parts_give_the_unsplit_outputs(small_index, genomes, tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    lengths = [150, 9_000, 120_000, 0, 34, 35, 40_000, 150]
    sources = list(genomes.values())
    records = []
    for i, n in enumerate(lengths):
        source = sources[i % len(sources)]
        start = int(rng.integers(0, len(source) - n))
        records.append((f"read{i}", _mutate(source[start : start + n], rng).tobytes().decode()))
    reads = tmp_path / "long.fastq"
    reads.write_bytes(fastq_bytes(records))
    outputs = {}
    for slice_bases in (WHOLE, 5_000):
        monkeypatch.setattr(classify, "SLICE_BASES", slice_bases)
        out = tmp_path / str(slice_bases)
        out.mkdir()
        paths = {"report_path": out / "r.kreport", "reads_path": out / "r.out", "taxa_path": out / "taxa.tsv"}
        classify_reads(small_index, reads, **paths, batch_reads=3, threads=2)
        for part in range(1, 4):
            assert main(
                ["classify", "--db", str(small_index.folder), "--part", f"{part}/3",
                 "--out-partial", str(out / f"{part}.npz"), str(reads)]
            ) == 0  # fmt: skip
        outputs[slice_bases] = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix != ".npz"}
        outputs[slice_bases]["parts"] = [dict(np.load(out / f"{p}.npz")) for p in range(1, 4)]
    whole, windowed = outputs[WHOLE], outputs[5_000]
    assert [row[3] for row in read_table(tmp_path / str(WHOLE) / "r.out")] == [str(n) for n in lengths]
    for name in ("r.kreport", "r.out", "taxa.tsv"):
        assert windowed[name] == whole[name], name
    for ours, theirs in zip(windowed["parts"], whole["parts"], strict=True):
        assert ours.keys() == theirs.keys()
        assert all(np.array_equal(ours[key], theirs[key]) for key in ours)
