"""Property tests of the read kernels: k-mer encoding against a pure-Python statement of it, and
batch and block sizes that must never change what is read or called.

The references below are written base by base from the definitions (2-bit codes A 0, C 1, G 2, T 3;
the reverse complement of an l-mer read from its last base, each complemented; the canonical form
the smaller of the two, Kraken 2's ``revcom_version`` 1), deliberately without NumPy, so they share
no code or trick with :mod:`rapidrelease.reads.kmers`.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidrelease.reads import _stream
from rapidrelease.reads.classify import classify_reads
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.input import iter_read_batches
from rapidrelease.reads.kmers import AMBIGUOUS, ENCODE, MinimizerSpec, encode, kmer_minimizers, lmer_values

CODE = {"A": 0, "C": 1, "G": 2, "T": 3}
# bases as sequencers and exporters write them: soft-masked lower case, N and other IUPAC codes
BASES = st.text(alphabet="ACGTACGTACGTacgtNnRYKM", min_size=0, max_size=200)


def reference_code(byte: int) -> int:
    """A/C/G/T in either case to 0-3; anything else (N, IUPAC, punctuation, non-ASCII) to 4."""
    return CODE.get(chr(byte).upper(), 4) if byte < 128 else 4


def reference_lmers(seq: str, l: int) -> list[tuple[int, int]]:  # noqa: E741
    """(forward, reverse complement) value of every l-mer, from the low two bits of each code as
    ``lmer_values`` documents (an N counts as A there; callers mask ambiguous l-mers)."""
    codes = [reference_code(ord(base)) & 3 for base in seq]
    out = []
    for i in range(len(codes) - l + 1):
        forward = reverse = 0
        for code in codes[i : i + l]:
            forward = (forward << 2) | code
        for code in reversed(codes[i : i + l]):
            reverse = (reverse << 2) | (3 - code)
        out.append((forward, reverse))
    return out


def _array(seq: str) -> np.ndarray:
    return np.frombuffer(seq.encode("ascii"), dtype=np.uint8)


def test_encode_maps_every_byte_like_the_reference():
    every_byte = np.arange(256, dtype=np.uint8)
    assert encode(every_byte).tolist() == [reference_code(b) for b in range(256)]
    assert ENCODE[ord("a")] == ENCODE[ord("A")] == 0 and ENCODE[ord("N")] == AMBIGUOUS


@settings(max_examples=200, deadline=None)
@given(seq=BASES, l=st.integers(9, 31))
def test_lmer_values_equal_the_base_by_base_packing_of_both_strands(seq, l):  # noqa: E741
    forward, reverse = lmer_values(encode(_array(seq)), l)
    assert list(zip(forward.tolist(), reverse.tolist(), strict=True)) == reference_lmers(seq, l)


@settings(max_examples=150, deadline=None)
@given(seq=st.text(alphabet="ACGTN", min_size=0, max_size=200), l=st.integers(9, 31))
def test_reverse_complement_of_the_sequence_swaps_the_strands(seq, l):  # noqa: E741
    # the l-mer at i of a sequence is, read backwards and complemented, the l-mer at n - l - i of its
    # reverse complement: forward and reverse values trade places, so the canonical value is shared
    rc = seq.translate(str.maketrans("ACGTN", "TGCAN"))[::-1]
    forward, reverse = lmer_values(encode(_array(seq)), l)
    rc_forward, rc_reverse = lmer_values(encode(_array(rc)), l)
    clean = [all(b != "N" for b in seq[i : i + l]) for i in range(len(forward))]
    keep = np.array(clean, dtype=bool)
    assert np.array_equal(forward[keep], rc_reverse[::-1][keep])
    assert np.array_equal(reverse[keep], rc_forward[::-1][keep])


@settings(max_examples=100, deadline=None)
@given(seq=BASES, k_extra=st.integers(0, 6), l=st.integers(9, 31))
def test_minimizers_ignore_case_and_are_canonical(seq, k_extra, l):  # noqa: E741
    spec = MinimizerSpec(k=l + k_extra, l=l, spaced_positions=min(3, l // 2))
    upper, upper_ambiguous = kmer_minimizers(_array(seq.upper()), spec)
    lower, lower_ambiguous = kmer_minimizers(_array(seq.lower()), spec)
    # soft-masked bases are bases (Kraken 2 upper-cases them)
    assert np.array_equal(upper_ambiguous, lower_ambiguous)
    assert np.array_equal(upper[~upper_ambiguous], lower[~lower_ambiguous])
    # a k-mer is ambiguous exactly when it holds a character that is not A, C, G or T
    expected = [any(reference_code(ord(b)) == 4 for b in seq[i : i + spec.k]) for i in range(len(upper))]
    assert upper_ambiguous.tolist() == expected
    # and a sequence's reverse complement has the same minimizers, mirrored
    rc = seq.upper().translate(str.maketrans("ACGTRYKM", "TGCAYRMK"))[::-1]
    rc_minimizers, rc_ambiguous = kmer_minimizers(_array(rc), spec)
    assert np.array_equal(rc_ambiguous[::-1], upper_ambiguous)
    assert np.array_equal(rc_minimizers[::-1][~upper_ambiguous], upper[~upper_ambiguous])


# --- batch and block sizes ---------------------------------------------------------------------------

READ = st.tuples(
    st.text(alphabet="abcdefghij0123456789_:", min_size=1, max_size=20),
    st.text(alphabet="ACGTNacgt", min_size=0, max_size=300),
)


def _fastq(reads: list[tuple[str, str]], mate: str = "") -> bytes:
    return "".join(f"@{name}{mate} comment\n{seq}\n+\n{'I' * len(seq)}\n" for name, seq in reads).encode()


def _all_reads(batches) -> list[tuple[str, str, str | None]]:
    out = []
    for b in batches:
        for i, name in enumerate(b.names):
            mate2 = None
            if b.seq2 is not None:
                mate2 = b.seq2[b.offsets2[i] : b.offsets2[i + 1]].tobytes().decode()
            out.append((name, b.seq[b.offsets[i] : b.offsets[i + 1]].tobytes().decode(), mate2))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reads=st.lists(READ, min_size=0, max_size=40),
    batch_reads=st.integers(1, 50),
    block_bytes=st.integers(1, 4096),
    batch_bases=st.integers(2, 10_000),
    compress=st.booleans(),
    layout=st.sampled_from(["single", "pair", "interleaved"]),
)
def test_batch_block_and_base_cap_sizes_never_change_the_reads(
    tmp_path, reads, batch_reads, block_bytes, batch_bases, compress, layout
):
    # FASTQ is parsed in blocks (_stream.BLOCK_BYTES), cut into batches of batch_reads reads and of
    # at most batch_bases bases; a record may straddle any of those boundaries.
    def write(name: str, content: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(gzip.compress(content, mtime=0) if compress else content)
        return path

    if layout == "single":
        paths: tuple = (write("r.fq", _fastq(reads)),)
        options: dict = {}
        expected = [(name, seq, None) for name, seq in reads]
    elif layout == "pair":
        mates = [(name, seq[::-1]) for name, seq in reads]
        paths = (write("r1.fq", _fastq(reads, "/1")), write("r2.fq", _fastq(mates, "/2")))
        options = {}
        expected = [(name, seq, seq[::-1]) for name, seq in reads]
    else:
        both = [record for name, seq in reads for record in ((f"{name}/1", seq), (f"{name}/2", seq[::-1]))]
        paths = (write("i.fq", _fastq(both)),)
        options = {"interleaved": True}
        expected = [(name, seq, seq[::-1]) for name, seq in reads]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_stream, "BLOCK_BYTES", block_bytes)
        batches = list(iter_read_batches(*paths, batch_reads=batch_reads, batch_bases=batch_bases, **options))
    assert all(0 < b.n_reads <= batch_reads for b in batches)
    # the cap holds, both mates counted, except for a batch of one read (pair) that alone exceeds it
    assert all(b.n_reads == 1 or _bases(b) <= batch_bases for b in batches)
    assert _all_reads(batches) == expected
    if batches:
        assert [b.first_record for b in batches] == list(np.cumsum([1] + [b.n_reads for b in batches[:-1]]))


def _bases(batch) -> int:
    return int(batch.offsets[-1]) + (int(batch.offsets2[-1]) if batch.paired else 0)


@pytest.fixture(scope="module")
def sampled_reads(small_panel_fasta: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 read pairs from the small panel's genomes (S. aureus, K. pneumoniae, human, phiX, lambda,
    the packaging plasmid) with 1 % substitutions and some N's, plus random reads that hit nothing."""
    rng = np.random.default_rng(11)
    genomes = [seq for _, seq in iter_fasta(small_panel_fasta) if len(seq) > 1000]
    folder = tmp_path_factory.mktemp("sampled")
    r1, r2 = [], []
    for i in range(300):
        if i % 10 == 9:
            a, b = (rng.choice(np.frombuffer(b"ACGT", np.uint8), 100) for _ in range(2))
        else:
            genome = genomes[int(rng.integers(len(genomes)))]
            start = int(rng.integers(0, len(genome) - 400))
            a = genome[start : start + int(rng.integers(20, 150))].copy()
            b = genome[start + 200 : start + 350].copy()
            for mate in (a, b):
                mate[rng.random(len(mate)) < 0.01] = rng.choice(np.frombuffer(b"ACGTN", np.uint8))
        r1.append((f"p{i}", a.tobytes().decode()))
        r2.append((f"p{i}", b.tobytes().decode()))
    (folder / "r1.fq").write_bytes(_fastq(r1, "/1"))
    (folder / "r2.fq").write_bytes(_fastq(r2, "/2"))
    return folder


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_reads=st.lists(st.integers(1, 400), min_size=1, max_size=2))
def test_classification_outputs_do_not_depend_on_the_batch_size(
    small_index, sampled_reads, tmp_path_factory, batch_reads
):
    # Kraken 2 classifies each read alone; the batch only groups the array work, so the per-read
    # lines, the report and the per-taxon table (distinct minimizers too) must be byte-identical.
    outputs = []
    for size in [300, *batch_reads]:
        out = tmp_path_factory.mktemp(f"batch{size}")
        totals = classify_reads(
            small_index, sampled_reads / "r1.fq", sampled_reads / "r2.fq",
            report_path=out / "k.kreport", reads_path=out / "k.out", taxa_path=out / "taxa.tsv",
            batch_reads=size,
        )  # fmt: skip
        outputs.append(
            (totals.reads, totals.classified, *(p.read_bytes() for p in (out / "k.kreport", out / "k.out")))
        )
        outputs[-1] += ((out / "taxa.tsv").read_bytes(),)
    assert outputs[0][0] == 300 and outputs[0][1] > 200  # most reads come from the panel's genomes
    assert all(o == outputs[0] for o in outputs[1:])
