"""The read simulator measured as a sequencing person would measure a real run.

Reads are compared with the genome they came from (error rate by cycle, quality calibration),
located in it independently of the simulator's truth (pair geometry, strand), and written files are
read back with pysam.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pysam
import pytest

from rapidrelease.synthetic.reads import (
    ERROR_PROFILES,
    ErrorProfile,
    SimulatedReads,
    SourceGenome,
    simulate_reads,
    write_fastq,
    write_truth_tsv,
)

COMPLEMENT = bytes.maketrans(b"ACGTN", b"TGCAN")


def random_genome(name: str, taxid: int, length: int, seed: int) -> SourceGenome:
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)[np.random.default_rng(seed).integers(0, 4, length)]
    return SourceGenome(name, taxid, bases)


def revcomp(seq: bytes) -> bytes:
    return seq.translate(COMPLEMENT)[::-1]


def source_of_read1(reads: SimulatedReads, i: int) -> bytes:
    """The genome bases read 1 of read ``i`` should show, from the truth columns."""
    genome = reads.genomes[reads.genome_index[i]].sequence
    start, length = int(reads.start[i]), int(reads.fragment_length[i])
    fragment = genome[start : start + length].tobytes()
    return revcomp(fragment) if reads.reverse[i] else fragment


@pytest.fixture(scope="module")
def hiseq_reads() -> SimulatedReads:
    genomes = [random_genome("alpha", 1280, 300_000, 1), random_genome("beta", 562, 200_000, 2)]
    return simulate_reads(genomes, 20_000, read_length=150, paired=False, seed=11)


def mismatches_by_cycle(reads: SimulatedReads) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per read and cycle of indel-free reads: mismatch (called bases only), called, quality."""
    clean = np.flatnonzero(reads.insertions[:, 0] + reads.deletions[:, 0] == 0)
    source = np.array(
        [np.frombuffer(source_of_read1(reads, i)[:150], dtype=np.uint8) for i in clean], dtype=np.uint8
    )
    seq = reads.seq1[clean]
    called = seq != ord("N")
    return (seq != source) & called, called, reads.qual1[clean].astype(int) - 33


def test_substitution_rate_by_cycle_follows_the_hiseq_profile(hiseq_reads: SimulatedReads) -> None:
    mismatch, called, _ = mismatches_by_cycle(hiseq_reads)
    expected = ERROR_PROFILES["hiseq"].substitution_rate(150)
    for lo in range(0, 150, 25):  # 25-cycle windows, as a run's per-cycle error plot is read
        measured = mismatch[:, lo : lo + 25].sum() / called[:, lo : lo + 25].sum()
        assert measured == pytest.approx(expected[lo : lo + 25].mean(), rel=0.15), f"cycles {lo}-{lo + 24}"
    first, last = mismatch[:, :10].mean(), mismatch[:, -10:].mean()
    assert first < 0.0015 and 0.007 < last < 0.013, "0.1 % at the start rising to about 1 % at cycle 150"


def test_quality_scores_are_calibrated(hiseq_reads: SimulatedReads) -> None:
    mismatch, called, quality = mismatches_by_cycle(hiseq_reads)
    for low, high in ((8, 20), (20, 25), (25, 30), (30, 42)):
        in_bin = called & (quality >= low) & (quality < high)
        predicted = (10.0 ** (-quality[in_bin] / 10)).mean()
        assert mismatch[in_bin].mean() == pytest.approx(predicted, rel=0.2), f"Q{low}-{high - 1}"
    assert quality[called].min() >= 8 and quality.max() <= 41


def test_no_calls_are_n_with_quality_2_and_rare(hiseq_reads: SimulatedReads) -> None:
    valid = np.arange(150)[None, :] < hiseq_reads.length1[:, None]
    n_calls = (hiseq_reads.seq1 == ord("N")) & valid
    assert 0 < n_calls.mean() < 0.001
    assert (hiseq_reads.qual1[n_calls] == ord("#")).all()
    assert n_calls[:, 100:].sum() > n_calls[:, :50].sum(), "no-calls gather where quality is low"


def test_bases_and_qualities_are_phred33_illumina_characters(hiseq_reads: SimulatedReads) -> None:
    assert set(np.unique(hiseq_reads.seq1).tolist()) == set(b"ACGTN")
    assert hiseq_reads.qual1.min() >= ord("#") and hiseq_reads.qual1.max() <= ord("J")


def test_indels_are_single_base_and_at_about_arts_hiseq_rate() -> None:
    genome = random_genome("g", 1, 100_000, 3)
    profile = ErrorProfile("indels only", 0.0, 0.0, insertion_rate=0.002, deletion_rate=0.002)
    reads = simulate_reads([genome], 3_000, paired=False, seed=5, error_profile=profile)
    with_indel = reads.insertions[:, 0] + reads.deletions[:, 0] > 0
    assert with_indel.mean() == pytest.approx(1 - (1 - 0.004) ** 150, abs=0.03)
    checked = 0
    for i in np.flatnonzero((reads.deletions[:, 0] == 1) & (reads.insertions[:, 0] == 0))[:100]:
        read, source = reads.seq1[i].tobytes(), source_of_read1(reads, i)
        # One source base skipped somewhere: the read is the source with one base removed.
        assert any(read == source[:j] + source[j + 1 : 151] for j in range(150)), i
        checked += 1
    for i in np.flatnonzero((reads.insertions[:, 0] == 1) & (reads.deletions[:, 0] == 0))[:100]:
        read, source = reads.seq1[i].tobytes(), source_of_read1(reads, i)
        assert any(read[:j] + read[j + 1 :] == source[:149] for j in range(150)), i
        checked += 1
    assert checked > 100
    hiseq = ERROR_PROFILES["hiseq"]
    assert (hiseq.insertion_rate, hiseq.deletion_rate) == (0.00009, 0.00011)


def kmer_positions(genome: bytes, k: int) -> dict[bytes, int]:
    return {genome[i : i + k]: i for i in range(len(genome) - k + 1)}


def test_pairs_point_inwards_with_the_requested_insert_size() -> None:
    genome = random_genome("g", 1, 200_000, 4)
    reads = simulate_reads([genome], 5_000, insert_mean=350, insert_sd=50, seed=8, error_profile="perfect")
    text = genome.sequence.tobytes()
    forward, reverse = kmer_positions(text, 31), kmer_positions(revcomp(text), 31)
    inserts, strands = [], []
    for i in range(reads.n_reads):
        r1, r2 = reads.seq1[i, :31].tobytes(), reads.seq2[i, :31].tobytes()
        # A read found at q on the reverse strand has its 5' end at forward position len - 1 - q.
        if r1 in forward:
            left, right, strand = forward[r1], len(text) - reverse[r2], "+"
        else:
            left, right, strand = forward[r2], len(text) - reverse[r1], "-"
        inserts.append(right - left)
        strands.append(strand)
    inserts = np.array(inserts)
    assert 0.45 < strands.count("-") / len(strands) < 0.55, "pairs from both strands, read 2 facing read 1"
    assert inserts.mean() == pytest.approx(350, abs=3)
    assert inserts.std() == pytest.approx(50, rel=0.05)
    assert (inserts == reads.fragment_length).all()


def test_reverse_strand_reads_are_reverse_complements_of_the_source() -> None:
    genome = random_genome("g", 1, 50_000, 6)
    reads = simulate_reads([genome], 2_000, seed=9, error_profile="perfect")
    text = genome.sequence.tobytes()
    assert 0.45 < reads.reverse.mean() < 0.55
    for i in range(200):
        start, end = int(reads.start[i]), int(reads.start[i] + reads.fragment_length[i])
        read1, read2 = reads.seq1[i].tobytes(), reads.seq2[i].tobytes()
        left_end, right_end = text[start : start + 150], revcomp(text[end - 150 : end])
        assert (read1, read2) == ((right_end, left_end) if reads.reverse[i] else (left_end, right_end))


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    genomes = [random_genome("a", 10, 20_000, 1), random_genome("b", 20, 30_000, 2)]

    def fastq_bytes(seed: int, name: str) -> bytes:
        reads = simulate_reads(genomes, 500, seed=seed)
        write_fastq(reads, tmp_path / f"{name}_1.fq", tmp_path / f"{name}_2.fq")
        return (tmp_path / f"{name}_1.fq").read_bytes() + (tmp_path / f"{name}_2.fq").read_bytes()

    assert fastq_bytes(7, "first") == fastq_bytes(7, "again")
    assert fastq_bytes(7, "first") != fastq_bytes(8, "other")


def test_records_shorter_than_the_fragment_are_read_whole_and_never_crossed() -> None:
    short = np.frombuffer(b"ACGT", dtype=np.uint8)[np.random.default_rng(1).integers(0, 4, 100)]
    long = random_genome("x", 1, 5_000, 2).sequence
    genome = SourceGenome("plasmid_and_chromosome", 1, np.concatenate([short, long]), (100, 5_000))
    reads = simulate_reads([genome], 4_000, seed=3, error_profile="perfect")
    from_short = reads.start < 100
    assert from_short.sum() > 30, "the short record is drawn in proportion to its length"
    assert (reads.start[from_short] + reads.fragment_length[from_short] <= 100).all()
    assert (reads.start[~from_short] >= 100).all()
    assert (reads.length1[from_short] == 100).all() and (reads.length2[from_short] == 100).all()
    record = short.tobytes()
    for i in np.flatnonzero(from_short):
        read1 = reads.seq1[i, :100].tobytes()
        assert read1 == (revcomp(record) if reads.reverse[i] else record)
        assert reads.seq2[i, :100].tobytes() == revcomp(read1)
    assert (reads.length1[~from_short] == 150).all()


def test_weights_set_the_share_of_reads_from_each_genome() -> None:
    genomes = [random_genome("a", 10, 10_000, 1), random_genome("b", 20, 90_000, 2)]
    reads = simulate_reads(genomes, 1_000, weights=[3, 1], seed=1, paired=False)
    assert np.bincount(reads.genome_index).tolist() == [750, 250]
    assert reads.genome_index[:500].std() > 0, "genomes interleave in the output"
    even = simulate_reads(genomes, 1_001, seed=1, paired=False)
    assert sorted(np.bincount(even.genome_index).tolist()) == [500, 501]


def test_fastq_and_truth_table_read_back_with_pysam(tmp_path: Path) -> None:
    genomes = [random_genome("Saureus_COL", 93062, 20_000, 1), random_genome("Ecoli", 562, 20_000, 2)]
    reads = simulate_reads(genomes, 300, seed=2)
    write_fastq(reads, tmp_path / "r1.fq.gz", tmp_path / "r2.fq.gz", gzip=True)
    write_truth_tsv(reads, tmp_path / "truth.tsv")
    truth = pl.read_csv(tmp_path / "truth.tsv", separator="\t")
    with pysam.FastxFile(str(tmp_path / "r1.fq.gz")) as r1, pysam.FastxFile(str(tmp_path / "r2.fq.gz")) as r2:
        records = list(zip(r1, r2, strict=True))
    assert len(records) == truth.height == 300
    for (first, second), row in zip(records, truth.iter_rows(named=True), strict=True):
        assert first.name == row["read_id"] + "/1" and second.name == row["read_id"] + "/2"
        genome, taxid, _ = first.name.split("|")
        assert (genome, int(taxid)) == (row["genome"], row["taxid"])
        assert len(first.sequence) == len(first.quality) == 150
    assert set(truth["taxid"].to_list()) == {93062, 562}


def test_bad_arguments_are_refused() -> None:
    genome = random_genome("g", 1, 1_000, 1)
    with pytest.raises(ValueError, match="unknown error profile"):
        simulate_reads([genome], 10, error_profile="pacbio")
    with pytest.raises(ValueError, match="whitespace"):
        SourceGenome("two words", 1, genome.sequence)
    with pytest.raises(ValueError, match="add up"):
        SourceGenome("g", 1, genome.sequence, (10, 20))


def test_real_genome_with_plasmids_gets_even_coverage_per_record(shared_data: Path) -> None:
    fasta = shared_data / "seq/reference/bacteria/Klebsiella_pneumoniae_HS11286_CP003200.1.fna.gz"
    with pysam.FastxFile(str(fasta)) as records:
        sequences = [entry.sequence for entry in records]
    genome = SourceGenome.from_records("Kpneumoniae_HS11286", 1125630, sequences)
    reads = simulate_reads([genome], 40_000, seed=4)
    ends = np.cumsum(genome.record_lengths)
    record = np.searchsorted(ends, reads.start, side="right")
    assert (reads.start + reads.fragment_length <= ends[record]).all(), "no fragment spans two replicons"
    # Reads per replicon follow its length (chromosome and plasmids at the same copy number).
    expected = 40_000 * np.array(genome.record_lengths) / genome.length
    observed = np.bincount(record, minlength=len(sequences))
    assert len(sequences) == 7
    assert (np.abs(observed - expected) < 5 * np.sqrt(expected) + 3).all(), (observed, expected.round())
    assert observed[0] / 40_000 == pytest.approx(genome.record_lengths[0] / genome.length, abs=0.01)
