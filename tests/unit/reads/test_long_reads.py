"""Reads of any length: a read longer than a slice is scanned in windows, and its call, hit list and
totals are those of the same read scanned whole (Kraken 2 scores a read by all of its minimizer hits,
both mates together), with memory bounded by the slice, not the read. The readers cap a batch's
bases, and refuse, in one sentence naming the file, the read and its length, a read longer than they
may hold.

The reads are real sequence from the small panel (mutated, cut with N's, soft-masked, chimeric) and
the slices are made small, so that a few hundred kb cross hundreds of window borders.
"""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidrelease.cli import main
from rapidrelease.reads import _stream, classify, kraken_outputs
from rapidrelease.reads.classify import ClassificationTotals, ClassifyOptions, classify_batch, classify_reads
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.input import ReadBatch, iter_read_batches
from rapidrelease.reads.parts import part_error

from support.reads import fastq_bytes, read_table, reads_error, reads_of

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
    assert np.array_equal(totals[1].seen_cells.cells(), totals[0].seen_cells.cells())


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
                # scanned in windows, the cells hit come as the windows' union: each distinct one once
                assert np.array_equal(windowed.hit_slots, np.unique(whole.hit_slots))
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


def test_the_per_read_output_is_the_same_assembled_in_small_steps(
    small_index, genomes, tmp_path, monkeypatch
):
    rng = np.random.default_rng(6)
    records = [
        (f"r{i}", _mutate(genomes["kp"][i * 50_000 : i * 50_000 + n], rng).tobytes().decode())
        for i, n in enumerate([20_000, 150, 0, 60_000])
    ]
    reads = tmp_path / "reads.fastq"
    reads.write_bytes(fastq_bytes(records))
    outputs = []
    for step in (kraken_outputs._GATHER_BYTES, 100):
        monkeypatch.setattr(kraken_outputs, "_GATHER_BYTES", step)
        classify_reads(small_index, reads, reads_path=tmp_path / f"{step}.out")
        outputs.append((tmp_path / f"{step}.out").read_bytes())
    assert outputs[0] == outputs[1] and len(outputs[0]) > 1_000


# --- reading long reads: batches capped by bases, a read's length capped -----------------------------


def _random_reads(
    rng: np.random.Generator, lengths: list[int], prefix: str = "read"
) -> list[tuple[str, str]]:
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    return [(f"{prefix}{i}", bases[rng.integers(0, 4, n)].tobytes().decode()) for i, n in enumerate(lengths)]


def _write_bam(path: Path, records: list[tuple[str, int, str]]) -> Path:
    import pysam

    with pysam.AlignmentFile(str(path), "wb", header={"HD": {"VN": "1.6", "SO": "unsorted"}}) as out:
        for name, flag, seq in records:
            record = pysam.AlignedSegment()
            record.query_name, record.flag, record.query_sequence = name, flag, seq
            out.write(record)
    return path


def _fasta(records: list[tuple[str, str]]) -> bytes:
    return "".join(
        f">{name}\n" + "\n".join(seq[i : i + 70] for i in range(0, len(seq), 70)) + "\n"
        for name, seq in records
    ).encode()


def test_every_reader_keeps_a_batch_within_the_base_cap(tmp_path):
    cap = 20_000
    rng = np.random.default_rng(21)
    lengths = [int(n) for n in rng.integers(0, 9_000, 40)]
    lengths[5] = lengths[17] = 31_000  # longer than the cap: a batch of its own
    reads = _random_reads(rng, lengths)
    mates = [(name, seq[::-1][: len(seq) // 2 + 7]) for name, seq in reads]
    files = {
        "fastq": tmp_path / "r.fastq",
        "fastq.gz": tmp_path / "r.fastq.gz",
        "fasta": tmp_path / "r.fa",
        "bam": tmp_path / "r.bam",
    }
    files["fastq"].write_bytes(fastq_bytes(reads))
    files["fastq.gz"].write_bytes(gzip.compress(fastq_bytes(reads)))
    files["fasta"].write_bytes(_fasta(reads))
    _write_bam(files["bam"], [(name, 4, seq) for name, seq in reads])
    (tmp_path / "r2.fastq").write_bytes(fastq_bytes([(f"{n}/2", s) for n, s in mates]))
    (tmp_path / "i.fastq").write_bytes(
        fastq_bytes([r for pair in zip(reads, mates, strict=True) for r in pair])
    )
    pairs_bam = _write_bam(
        tmp_path / "pairs.bam",
        [r for (n, s), (_, s2) in zip(reads, mates, strict=True) for r in ((n, 77, s), (n, 141, s2))],
    )
    layouts = [((path,), {}, False) for path in files.values()] + [
        ((files["fastq"], tmp_path / "r2.fastq"), {}, True),
        ((tmp_path / "i.fastq",), {"interleaved": True}, True),
        ((pairs_bam,), {}, True),
    ]
    for paths, options, paired in layouts:
        batches = list(iter_read_batches(*paths, batch_reads=1_000, batch_bases=cap, **options))
        assert reads_of(batches) == reads, paths
        if paired:
            assert reads_of(batches, 2) == mates, paths
        sizes = [(b.n_reads, int(b.offsets[-1]) + (int(b.offsets2[-1]) if b.paired else 0)) for b in batches]
        assert all(n == 1 or bases <= cap for n, bases in sizes), (paths, sizes)
        assert len(batches) >= sum(lengths) // cap, "the cap, not the read count, cut the batches"


@pytest.fixture
def read_limit(monkeypatch) -> int:
    """The longest read lowered to 50,000 bases, so the test's files stay small."""
    monkeypatch.setattr(_stream, "MAX_READ_BASES", 50_000)
    return 50_000


def _refusal(path: Path, name: str, record: int, length: int | None, mate: bool = False) -> str:
    limit = "25,000" if mate else "50,000"
    bases = f"{length:,} bases, more than the {limit}" if length else f"more than the {limit} bases"
    what = "a mate of a pair may have (both mates are classified as one read)" if mate else "a read may have"
    return (
        f"{path}: read {name!r} (record {record}) has {bases} {what}; it is likely an assembly or a "
        "damaged file, not a sequenced read."
    )


def test_a_read_longer_than_the_limit_is_refused_in_one_sentence(tmp_path, read_limit, monkeypatch):
    rng = np.random.default_rng(8)
    at_limit, over = _random_reads(rng, [read_limit, read_limit + 1], "contig")
    ok = [("short", "ACGT" * 40), at_limit]
    bad = [("short", "ACGT" * 40), at_limit, over]
    for name, content in (("fastq", fastq_bytes), ("fa", _fasta)):
        good = tmp_path / f"ok.{name}"
        good.write_bytes(content(ok))
        assert [len(s) for _, s in reads_of(list(iter_read_batches(good)))] == [160, read_limit]
    bam = _write_bam(tmp_path / "ok.bam", [(n, 4, s) for n, s in ok])
    assert [len(s) for _, s in reads_of(list(iter_read_batches(bam)))] == [160, read_limit]

    fastq, fasta = tmp_path / "bad.fastq", tmp_path / "bad.fa"
    fastq.write_bytes(fastq_bytes(bad))
    fasta.write_bytes(_fasta(bad))
    bam = _write_bam(tmp_path / "bad.bam", [(n, 4, s) for n, s in bad])
    gz = tmp_path / "bad.fastq.gz"
    gz.write_bytes(gzip.compress(fastq_bytes(_random_reads(rng, [read_limit + 20_000], "contig") + ok)))
    # whole in memory, the length is known; met while streaming, the reader stops at the limit
    assert reads_error(fastq) == _refusal(fastq, "contig1", 3, read_limit + 1)
    assert reads_error(bam) == _refusal(bam, "contig1", 3, read_limit + 1)
    assert reads_error(fasta) == _refusal(fasta, "contig1", 3, None)
    monkeypatch.setattr(_stream, "BLOCK_BYTES", 4096)
    assert reads_error(gz) == _refusal(gz, "contig0", 1, None)
    # a pair is classified as one read: each mate may have half the limit, in any layout
    half = read_limit // 2
    pair = (
        [(f"p{i}", s[:100]) for i, (_, s) in enumerate(bad)],
        [(f"p{i}", s[: half + i]) for i, (_, s) in enumerate(bad)],
    )
    r1, r2, interleaved = tmp_path / "r1.fastq", tmp_path / "r2.fastq", tmp_path / "i.fastq"
    r1.write_bytes(fastq_bytes(pair[0]))
    r2.write_bytes(fastq_bytes(pair[1]))
    interleaved.write_bytes(fastq_bytes([r for two in zip(*pair, strict=True) for r in two]))
    pairs_bam = _write_bam(
        tmp_path / "pairs.bam",
        [r for a, b in zip(*pair, strict=True) for r in ((a[0], 77, a[1]), (b[0], 141, b[1]))],
    )
    assert reads_error(r1, path2=r2) == _refusal(r2, "p1", 2, half + 1, mate=True)
    assert reads_error(interleaved, interleaved=True) == _refusal(interleaved, "p1", 4, half + 1, mate=True)
    assert reads_error(pairs_bam) == _refusal(pairs_bam, "p1", 4, half + 1, mate=True)
    assert len(reads_of(list(iter_read_batches(r2)))) == 3, "alone, the same reads are within a read's limit"


def test_the_workflow_records_a_read_too_long_as_the_units_error(small_index, tmp_path, read_limit, capsys):
    reads = tmp_path / "assembly.fastq"
    reads.write_bytes(fastq_bytes(_random_reads(np.random.default_rng(1), [300, read_limit + 10])))
    expected = _refusal(reads, "read1", 2, read_limit + 10)
    part = tmp_path / "1.npz"
    command = ["classify", "--db", str(small_index.folder)]
    assert main([*command, "--part", "1/1", "--out-partial", str(part), str(reads)]) == 0
    assert part_error([part]) == expected  # the unit's evidence, so its lot is INCONCLUSIVE
    capsys.readouterr()
    assert main([*command, "--out-report", str(tmp_path / "r.kreport"), str(reads)]) == 1
    assert capsys.readouterr().err == f"rapidrelease: {expected}\n"


def test_reading_a_long_fastq_read_holds_its_text_and_one_copy(tmp_path):
    # the parser holds a record's text (2 bytes per base) in a buffer grown by doubling, and the
    # bases it passes on; copying a long read once held 8 bytes per base more for column numbers
    n = 4_000_000
    path = tmp_path / "long.fastq"
    path.write_bytes(fastq_bytes(_random_reads(np.random.default_rng(4), [n])))
    tracemalloc.start()
    try:
        (batch,) = iter_read_batches(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert batch.offsets[-1] == n
    assert peak < 7 * n
