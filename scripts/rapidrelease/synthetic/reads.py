"""Simulated Illumina reads with known truth, for tests, benchmarks and the demo lot's sequencing data.

Fragments are drawn uniformly over each source genome, from either strand, with a normally
distributed length (the library insert). Read 1 is the fragment's first ``read_length`` bases on the
drawn strand; read 2 (paired mode) is the first ``read_length`` bases of the fragment's reverse
complement, so a pair points inwards (Illumina forward-reverse, "FR") and the insert size is the
fragment length, as ``samtools stats`` and Picard ``CollectInsertSizeMetrics`` measure it.

The sequencer is modelled base by base, every step an array operation over a chunk of reads:

- **Quality.** Each base's Phred score is ``round(mu(i) + read offset + base noise)``, clipped to
  2–41; ``mu(i)`` falls along the read, the read offset (one per read) makes some reads better than
  others, as clusters differ on a flow cell. Qualities are written Phred+33 (Sanger / Illumina 1.8+).
- **Substitutions.** A base is miscalled with probability ``10 ** (-Q / 10)`` of its own quality,
  so qualities are calibrated by construction, and ``mu(i)`` is solved so that the mean error
  probability at position ``i`` equals the profile's substitution rate there (for ``"hiseq"``,
  0.1 % at the first base rising to 1 % at base 150). A miscall is one of the three other bases.
- **No-calls.** A base whose score falls to 7 or below is called ``N`` with quality 2 (``#``), as
  Illumina's software writes no-calls; for ``"hiseq"`` about 1 base in 10,000 near the read's end,
  fewer earlier.
- **Indels.** Rare single-base insertions and deletions (for ``"hiseq"`` 0.9 and 1.1 per 10,000
  bases, ART's HiSeq 2500 rates), uniform along the read.

Short records: a fragment longer than the record it is drawn from is clipped to the whole record,
so a record shorter than the read gives reads shorter than ``read_length`` (as a short insert gives
after adapter trimming), and a pair from it is the record read from both ends. Nothing is skipped:
every requested read is produced.

Determinism: the same genomes, arguments and ``seed`` give the same reads, byte for byte.
"""

from __future__ import annotations

import gzip as gzip_module
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl

__all__ = [
    "ERROR_PROFILES",
    "ErrorProfile",
    "SimulatedReads",
    "SourceGenome",
    "simulate_reads",
    "write_fastq",
    "write_truth_tsv",
]

_MIN_Q = 2
_MAX_Q = 41
_NO_CALL_MAX_Q = 7  # a score this low or lower is written as an N with quality 2
_CHUNK_READS = 32_768  # reads per chunk: each (chunk, 150) working array stays a few MB


@dataclass(frozen=True)
class ErrorProfile:
    """An Illumina-like error model.

    ``substitution_start`` and ``substitution_end`` are per-base miscall probabilities at the first
    base and at base ``reference_length`` (1-based), joined by ``start * (end/start) ** (x ** 2)``
    with ``x`` the 0-based position over ``reference_length - 1`` (the curve keeps rising past it).
    ``insertion_rate`` and ``deletion_rate`` are per base. ``read_sd`` and ``base_sd`` are the
    standard deviations, in Phred units, of the per-read quality offset and the per-base noise.
    A profile with zero substitution rate is error-free: every base correct, quality 40 (``I``).
    """

    name: str
    substitution_start: float
    substitution_end: float
    insertion_rate: float
    deletion_rate: float
    reference_length: int = 150
    read_sd: float = 2.5
    base_sd: float = 4.0

    def substitution_rate(self, read_length: int) -> np.ndarray:
        """Per-base miscall probability at each 0-based position, (read_length,) float64."""
        x = np.arange(read_length, dtype=np.float64) / (self.reference_length - 1)
        if self.substitution_start <= 0:
            return np.zeros(read_length)
        ratio = self.substitution_end / self.substitution_start
        return self.substitution_start * ratio ** (x**2)

    @property
    def error_free(self) -> bool:
        """True when the profile produces exact copies of the source."""
        return self.substitution_start <= 0 and self.insertion_rate <= 0 and self.deletion_rate <= 0


ERROR_PROFILES: dict[str, ErrorProfile] = {
    "hiseq": ErrorProfile("hiseq", 0.001, 0.01, 0.00009, 0.00011),
    # NovaSeq: binned but better-calibrated qualities and fewer late-cycle errors.
    "novaseq": ErrorProfile("novaseq", 0.0005, 0.004, 0.00002, 0.00003),
    "perfect": ErrorProfile("perfect", 0.0, 0.0, 0.0, 0.0),
}
"""Named error profiles accepted by :func:`simulate_reads`."""


def _upper_table() -> np.ndarray:
    table = np.full(256, ord("N"), dtype=np.uint8)
    for base in b"ACGTN":
        table[base] = base
        table[base + 32] = base
    return table


def _complement_table() -> np.ndarray:
    table = np.full(256, ord("N"), dtype=np.uint8)
    for base, comp in zip(b"ACGT", b"TGCA", strict=True):
        table[base] = comp
    return table


_UPPER = _upper_table()
_COMPLEMENT = _complement_table()
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_CODE = np.full(256, 4, dtype=np.uint8)
_CODE[_BASES] = np.arange(4, dtype=np.uint8)
_ERROR_OF_Q = 10.0 ** (-np.arange(_MAX_Q + 1, dtype=np.float64) / 10.0)


@dataclass(frozen=True)
class SourceGenome:
    """A genome reads are drawn from.

    ``sequence`` is the records concatenated with nothing between them, (total bases,) uint8 ASCII;
    lower-case bases are read as upper case and anything but A, C, G, T as N. ``record_lengths``
    gives each record's length in bases (default: one record); a fragment never spans two records,
    so a chromosome and its plasmids, or a draft genome's contigs, are each one record. ``name``
    may not contain whitespace or ``|`` because it is written into read names.
    """

    name: str
    taxid: int
    sequence: np.ndarray
    record_lengths: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or c == "|" for c in self.name):
            raise ValueError(f"genome name {self.name!r} must be non-empty without whitespace or '|'.")
        sequence = _UPPER[np.asarray(self.sequence, dtype=np.uint8).ravel()]
        lengths = self.record_lengths or (int(sequence.size),)
        if sum(lengths) != sequence.size or min(lengths) <= 0:
            raise ValueError(
                f"genome {self.name}: record lengths {lengths} must be positive and add up to the "
                f"sequence's {sequence.size} bases."
            )
        object.__setattr__(self, "sequence", sequence)
        object.__setattr__(self, "record_lengths", tuple(int(n) for n in lengths))

    @classmethod
    def from_records(cls, name: str, taxid: int, records: Sequence[str | bytes | np.ndarray]) -> SourceGenome:
        """A genome from its records' sequences (strings, bytes or uint8 ASCII arrays)."""
        arrays = [
            np.asarray(r, dtype=np.uint8)
            if isinstance(r, np.ndarray)
            else np.frombuffer(r.encode("ascii") if isinstance(r, str) else r, dtype=np.uint8)
            for r in records
        ]
        return cls(name, taxid, np.concatenate(arrays), tuple(a.size for a in arrays))

    @property
    def length(self) -> int:
        """Total bases over all records."""
        return int(self.sequence.size)


@dataclass(frozen=True)
class SimulatedReads:
    """Reads and their truth; ``n`` reads (pairs when ``paired``), read length ``L``.

    Truth per read: ``genome_index`` (n,) int32 into ``genomes``; ``start`` (n,) int64, the 0-based
    offset in that genome's ``sequence`` of the fragment's leftmost base; ``fragment_length`` (n,)
    int32 in bases; ``reverse`` (n,) bool, read 1 is from the reverse strand;
    ``insertions``/``deletions`` (n, 2) int16, indels put into read 1 and read 2 (column 1 is 0 for
    single-end). Bases: ``seq1``/``qual1`` (n, L) uint8 ASCII (quality Phred+33), valid up to
    ``length1`` (n,) int32 bases; ``seq2``/``qual2``/``length2`` likewise for read 2, or None.
    """

    genomes: tuple[SourceGenome, ...]
    error_profile: ErrorProfile
    genome_index: np.ndarray
    start: np.ndarray
    fragment_length: np.ndarray
    reverse: np.ndarray
    insertions: np.ndarray
    deletions: np.ndarray
    seq1: np.ndarray
    qual1: np.ndarray
    length1: np.ndarray
    seq2: np.ndarray | None = None
    qual2: np.ndarray | None = None
    length2: np.ndarray | None = None

    @property
    def n_reads(self) -> int:
        """Number of reads (of pairs when paired)."""
        return int(self.genome_index.size)

    @property
    def paired(self) -> bool:
        """True when each read has a mate."""
        return self.seq2 is not None

    @property
    def taxids(self) -> np.ndarray:
        """True taxid of each read, (n,) int64."""
        table = np.array([g.taxid for g in self.genomes], dtype=np.int64)
        return table[self.genome_index]

    def read_ids(self) -> list[str]:
        """Read names without the mate suffix: ``<genome name>|<taxid>|<index>``."""
        prefixes = [f"{g.name}|{g.taxid}|" for g in self.genomes]
        return [f"{prefixes[g]}{i}" for i, g in enumerate(self.genome_index.tolist())]


@lru_cache(maxsize=32)
def _quality_means(profile: ErrorProfile, read_length: int) -> np.ndarray:
    """mu(i), (read_length,) float64, such that the mean miscall probability of called bases at
    position i equals the profile's substitution rate there."""
    target = profile.substitution_rate(read_length)
    sd = math.hypot(profile.read_sd, profile.base_sd)
    q = np.arange(_NO_CALL_MAX_Q + 1, _MAX_Q + 1, dtype=np.float64)
    erf = np.frompyfunc(math.erf, 1, 1)

    def mean_error(mu: np.ndarray) -> np.ndarray:
        # P(round(score) = q) under N(mu, sd), the top bin taking the upper tail, over called bases.
        lower = (q[None, :] - 0.5 - mu[:, None]) / (sd * math.sqrt(2))
        upper = (q[None, :] + 0.5 - mu[:, None]) / (sd * math.sqrt(2))
        cdf_low = 0.5 * (1 + erf(lower).astype(np.float64))
        cdf_up = 0.5 * (1 + erf(upper).astype(np.float64))
        cdf_up[:, -1] = 1.0
        mass = cdf_up - cdf_low
        return (mass * _ERROR_OF_Q[_NO_CALL_MAX_Q + 1 :]).sum(axis=1) / mass.sum(axis=1)

    low = np.zeros(read_length)
    high = np.full(read_length, 80.0)
    for _ in range(50):  # bisection: the mean error falls as mu rises
        mid = (low + high) / 2
        too_noisy = mean_error(mid) > target
        low = np.where(too_noisy, mid, low)
        high = np.where(too_noisy, high, mid)
    return (low + high) / 2


def _allocate(n_reads: int, weights: np.ndarray) -> np.ndarray:
    """Reads per genome, exactly proportional to the weights up to rounding (largest remainder)."""
    share = weights / weights.sum() * n_reads
    counts = np.floor(share).astype(np.int64)
    remainder = n_reads - int(counts.sum())
    if remainder:
        order = np.argsort(-(share - counts), kind="stable")
        counts[order[:remainder]] += 1
    return counts


def _scatter_events(
    rng: np.random.Generator, n: int, read_length: int, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Single-base events at per-base ``rate``: an (n, L) bool mask and (n,) counts."""
    mask = np.zeros((n, read_length), dtype=bool)
    if rate <= 0:
        return mask, np.zeros(n, dtype=np.int16)
    # Events are rare, so draw a count per read and only that many positions, not a mask of uniforms.
    counts = rng.binomial(read_length, rate, size=n)
    rows = np.repeat(np.arange(n), counts)
    mask[rows, rng.integers(0, read_length, size=rows.size)] = True
    return mask, mask.sum(axis=1).astype(np.int16)


def _sequence(
    bases: np.ndarray,
    anchor: np.ndarray,
    step: np.ndarray,
    available: np.ndarray,
    read_length: int,
    profile: ErrorProfile,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read ``n`` templates as the sequencer would.

    Template base ``j`` of read ``r`` is ``bases[anchor[r] + step[r] * j]``, complemented where
    ``step`` is -1 (reading the reverse strand), for ``j < available[r]``. Returns seq, qual (n, L)
    uint8 ASCII, length (n,) int32, insertions and deletions (n,) int16.
    """
    n = anchor.size
    insert_mask, n_ins = _scatter_events(rng, n, read_length, profile.insertion_rate)
    delete_mask, _ = _scatter_events(rng, n, read_length, profile.deletion_rate)
    delete_mask &= ~insert_mask  # an insertion and a deletion at one base would cancel out
    n_del = delete_mask.sum(axis=1).astype(np.int16)
    position = np.arange(read_length, dtype=np.int32)[None, :]
    source = position - np.cumsum(insert_mask, axis=1, dtype=np.int32)
    source += np.cumsum(delete_mask, axis=1, dtype=np.int32)
    # source never decreases along a read, so the bases the template can supply are a prefix.
    length = (source < available[:, None]).sum(axis=1).astype(np.int32)
    source = np.minimum(source, (available - 1)[:, None])
    genome_pos = anchor[:, None] + step[:, None].astype(np.int64) * source
    seq = bases[genome_pos]
    reverse = step < 0
    seq[reverse] = _COMPLEMENT[seq[reverse]]
    if insert_mask.any():
        seq[insert_mask] = _BASES[rng.integers(0, 4, size=int(insert_mask.sum()))]

    if profile.substitution_start <= 0:
        qual = np.full((n, read_length), 40, dtype=np.uint8)
    else:
        mu = _quality_means(profile, read_length)
        score = rng.standard_normal((n, read_length), dtype=np.float32) * np.float32(profile.base_sd)
        score += (rng.standard_normal(n, dtype=np.float32) * np.float32(profile.read_sd))[:, None]
        score += mu.astype(np.float32)[None, :]
        qual = np.clip(np.rint(score), _MIN_Q, _MAX_Q).astype(np.uint8)
        called = qual > _NO_CALL_MAX_Q
        miscall = rng.random((n, read_length), dtype=np.float32) < _ERROR_OF_Q[qual].astype(np.float32)
        miscall &= called & (_CODE[seq] < 4)
        rows, cols = np.nonzero(miscall)
        if rows.size:
            shift = rng.integers(1, 4, size=rows.size, dtype=np.uint8)
            seq[rows, cols] = _BASES[(_CODE[seq[rows, cols]] + shift) % 4]
        seq[~called] = ord("N")
    qual[seq == ord("N")] = _MIN_Q
    qual += 33
    beyond = position >= length[:, None]
    seq[beyond] = 0
    qual[beyond] = 0
    return seq, qual, length, n_ins, n_del


def simulate_reads(
    genomes: Sequence[SourceGenome],
    n_reads: int,
    weights: Sequence[float] | None = None,
    read_length: int = 150,
    paired: bool = True,
    insert_mean: float = 350,
    insert_sd: float = 50,
    seed: int = 0,
    error_profile: str | ErrorProfile = "hiseq",
) -> SimulatedReads:
    """Simulate ``n_reads`` Illumina reads (pairs when ``paired``) from ``genomes``.

    ``weights``: relative numbers of reads from each genome (default equal); reads are allocated
    exactly in proportion, up to rounding, and shuffled so genomes interleave as on a flow cell.
    Within a genome, a fragment's record is drawn in proportion to record length and its start
    uniformly, so coverage is even along the genome. ``read_length`` in bases; ``insert_mean`` and
    ``insert_sd`` in bases, the fragment length distribution (normal, at least 1 base), used for
    single-end reads too (a read never runs past its fragment). ``error_profile`` names an entry of
    :data:`ERROR_PROFILES` or is an :class:`ErrorProfile`. See the module docstring for the model.
    """
    if not genomes:
        raise ValueError("simulate_reads needs at least one genome.")
    if n_reads < 0 or read_length < 1 or insert_sd < 0:
        raise ValueError("n_reads must be >= 0, read_length >= 1 and insert_sd >= 0.")
    profile = ERROR_PROFILES.get(error_profile) if isinstance(error_profile, str) else error_profile
    if profile is None:
        raise ValueError(f"unknown error profile {error_profile!r}; known: {', '.join(ERROR_PROFILES)}.")
    w = np.ones(len(genomes)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(genomes),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be one non-negative number per genome, not all zero.")
    rng = np.random.default_rng(seed)

    bases = np.concatenate([g.sequence for g in genomes])
    genome_offset = np.concatenate([[0], np.cumsum([g.length for g in genomes])[:-1]]).astype(np.int64)
    genome_length = np.array([g.length for g in genomes], dtype=np.int64)
    record_end = np.cumsum(np.concatenate([g.record_lengths for g in genomes])).astype(np.int64)
    record_start = record_end - np.concatenate([g.record_lengths for g in genomes])

    genome_index = rng.permutation(np.repeat(np.arange(len(genomes), dtype=np.int32), _allocate(n_reads, w)))
    # A uniform position over the genome picks each record in proportion to its length.
    point = genome_offset[genome_index] + (rng.random(n_reads) * genome_length[genome_index]).astype(np.int64)
    record = np.searchsorted(record_end, point, side="right")
    rec_start, rec_length = record_start[record], record_end[record] - record_start[record]
    fragment = np.maximum(np.rint(rng.normal(insert_mean, insert_sd, n_reads)), 1).astype(np.int64)
    fragment = np.minimum(fragment, rec_length)
    global_start = rec_start + (rng.random(n_reads) * (rec_length - fragment + 1)).astype(np.int64)
    reverse = rng.random(n_reads) < 0.5
    fragment_end = global_start + fragment - 1

    def read_out(first_mate: bool) -> tuple[np.ndarray, ...]:
        seqs, quals, lengths, ins, dels = [], [], [], [], []
        for lo in range(0, n_reads, _CHUNK_READS):
            hi = min(lo + _CHUNK_READS, n_reads)
            # Read 1 starts at the fragment's left end on the forward strand, its right end on the
            # reverse; read 2 starts at the other end, on the other strand.
            from_right = reverse[lo:hi] if first_mate else ~reverse[lo:hi]
            anchor = np.where(from_right, fragment_end[lo:hi], global_start[lo:hi])
            step = np.where(from_right, -1, 1).astype(np.int8)
            out = _sequence(bases, anchor, step, fragment[lo:hi], read_length, profile, rng)
            for acc, value in zip((seqs, quals, lengths, ins, dels), out, strict=True):
                acc.append(value)
        empty = (np.zeros((0, read_length), np.uint8),) * 2 + (np.zeros(0, np.int32),)
        empty += (np.zeros(0, np.int16),) * 2
        return tuple(
            np.concatenate(acc) if acc else e
            for acc, e in zip((seqs, quals, lengths, ins, dels), empty, strict=True)
        )

    seq1, qual1, length1, ins1, del1 = read_out(first_mate=True)
    seq2 = qual2 = length2 = None
    ins2 = del2 = np.zeros(n_reads, dtype=np.int16)
    if paired:
        seq2, qual2, length2, ins2, del2 = read_out(first_mate=False)
    return SimulatedReads(
        genomes=tuple(genomes),
        error_profile=profile,
        genome_index=genome_index,
        start=global_start - genome_offset[genome_index],
        fragment_length=fragment.astype(np.int32),
        reverse=reverse,
        insertions=np.stack([ins1, ins2], axis=1),
        deletions=np.stack([del1, del2], axis=1),
        seq1=seq1,
        qual1=qual1,
        length1=length1,
        seq2=seq2,
        qual2=qual2,
        length2=length2,
    )


def _write_mate(
    handle: IO[bytes], ids: list[str], seq: np.ndarray, qual: np.ndarray, length: np.ndarray, mate: int
) -> None:
    suffix = f"/{mate}\n".encode()
    full = seq.shape[1]
    for lo in range(0, len(ids), _CHUNK_READS):
        hi = min(lo + _CHUNK_READS, len(ids))
        seq_rows = seq[lo:hi].tobytes()
        qual_rows = qual[lo:hi].tobytes()
        parts = []
        for k, (read_id, n) in enumerate(zip(ids[lo:hi], length[lo:hi].tolist(), strict=True)):
            a = k * full
            parts.append(b"@" + read_id.encode() + suffix)
            parts.append(seq_rows[a : a + n] + b"\n+\n" + qual_rows[a : a + n] + b"\n")
        handle.write(b"".join(parts))


def write_fastq(reads: SimulatedReads, path1: Path, path2: Path | None = None, gzip: bool = False) -> None:
    """Write reads as FASTQ (Phred+33), read 2 to ``path2`` when the reads are paired.

    Read names carry the truth: ``@<genome name>|<taxid>|<index>/1`` (``/2`` for mates), with
    ``index`` the 0-based read number. ``gzip`` compresses at level 1: simulated reads are cheap to
    regenerate, so writing speed matters more than size. The same reads always give the same bytes.
    """
    if reads.paired and path2 is None:
        raise ValueError("paired reads need path2 for read 2.")
    if not reads.paired and path2 is not None:
        raise ValueError("single-end reads have no read 2 to write to path2.")
    ids = reads.read_ids()
    mates = [(Path(path1), reads.seq1, reads.qual1, reads.length1, 1)]
    if reads.seq2 is not None and reads.qual2 is not None and reads.length2 is not None and path2 is not None:
        mates.append((Path(path2), reads.seq2, reads.qual2, reads.length2, 2))
    for path, seq, qual, length, mate in mates:
        if gzip:
            # no time stamp or file name in the gzip header: the same reads give the same bytes
            with (
                open(path, "wb") as raw,
                gzip_module.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw, mtime=0) as handle,
            ):
                _write_mate(handle, ids, seq, qual, length, mate)
        else:
            with open(path, "wb") as handle:
                _write_mate(handle, ids, seq, qual, length, mate)


def write_truth_tsv(reads: SimulatedReads, path: Path) -> None:
    """Write one row per read (pair): read_id, taxid, genome, then start (0-based), strand of read 1
    (``+``/``-``) and fragment_length in bases. ``read_id`` is the FASTQ name without ``/1``."""
    names = np.array([g.name for g in reads.genomes], dtype=object)
    pl.DataFrame(
        {
            "read_id": reads.read_ids(),
            "taxid": reads.taxids,
            "genome": names[reads.genome_index].tolist(),
            "start": reads.start,
            "strand": np.where(reads.reverse, "-", "+").tolist(),
            "fragment_length": reads.fragment_length,
        }
    ).write_csv(path, separator="\t")
