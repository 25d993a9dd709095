"""Streaming read input: FASTQ, FASTA, SAM, BAM and CRAM, single-end or paired, in batches of arrays.

:func:`iter_read_batches` turns a read file (or a pair of files) into :class:`ReadBatch` objects whose
bases are one concatenated uint8 array per mate, the layout the NumPy k-mer classifier works on.
The format is recognised from the file's first bytes, never its name (see
:func:`rapidrelease.reads._stream.sniff_format`); gzip (and BGZF) FASTQ/FASTA is decompressed with
zlib; SAM, BAM and CRAM are read with pysam.

The parsers live beside this entry: FASTQ and FASTA reads in NumPy in :mod:`rapidrelease.reads.fastq`,
SAM/BAM/CRAM through pysam in :mod:`rapidrelease.reads.alignments` (which pairs mates by their FLAG).
Here a file's format is recognised and its reads are paired: mate 1 and mate 2 in two files, or as
consecutive records of one interleaved file, with the same read ids in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rapidrelease.errors import ReadsError
from rapidrelease.reads import _stream
from rapidrelease.reads._stream import KIND_NAMES, sniff_format
from rapidrelease.reads.alignments import AlignedReads, iter_alignment_reads
from rapidrelease.reads.fastq import Reads, concat_slices, iter_fasta_reads, iter_fastq

__all__ = ["ReadBatch", "ReadStats", "iter_read_batches", "read_stats"]


@dataclass(frozen=True, eq=False)
class ReadBatch:
    """A batch of reads (or read pairs), sequences concatenated for vectorised k-mer work.

    ``names`` are read ids without a trailing ``/1`` or ``/2`` and without the comment after the
    first space. ``seq`` is uint8 ASCII of every read (mate 1) concatenated, shape (total_bases,);
    ``offsets`` is int64 of shape (n_reads + 1,) with ``offsets[0] == 0``: read i is
    ``seq[offsets[i]:offsets[i + 1]]``. ``seq2``/``offsets2`` hold mate 2 in the same layout, or are
    None for single-end reads. Bases are as written (IUPAC, case kept); reads of any length,
    including 0, are passed through.

    ``first_record`` is the 1-based number of the batch's first read (pair) for messages: read i is
    record (pair) ``first_record + i``. For FASTQ/FASTA it is the record number in the file (pair
    number for interleaved files); for SAM/BAM/CRAM it counts reads in the order they are yielded,
    which in a coordinate-sorted file is not the file order — find a read there by its name.
    """

    names: list[str]
    seq: np.ndarray
    offsets: np.ndarray
    seq2: np.ndarray | None
    offsets2: np.ndarray | None
    first_record: int

    @property
    def n_reads(self) -> int:
        """Number of reads (pairs) in the batch."""
        return len(self.offsets) - 1

    @property
    def paired(self) -> bool:
        """Whether the batch holds mate 2."""
        return self.seq2 is not None


def iter_read_batches(
    path: Path,
    path2: Path | None = None,
    batch_reads: int = 20_000,
    interleaved: bool = False,
    *,
    reference: Path | None = None,
    batch_bases: int | None = None,
) -> Iterator[ReadBatch]:
    """Read a FASTQ, FASTA, SAM, BAM or CRAM file (or a pair of FASTQ/FASTA files) in batches.

    The format and gzip compression are recognised from the first bytes (BAM: BGZF whose content
    starts with ``BAM\\1``, SAM v1 §4.2; CRAM: ``CRAM``). ``path2`` is the mate-2 file of a pair:
    both files must hold the same number of records with the same read names in the same order.
    ``interleaved`` reads mates 1 and 2 as consecutive records of one FASTQ/FASTA file. SAM/BAM/CRAM
    pairs come from their FLAG (see :mod:`rapidrelease.reads.alignments`); ``path2`` and
    ``interleaved`` do not apply to them. ``reference`` is the FASTA a CRAM was compressed against,
    when it is not embedded and cannot be found through the @SQ M5/UR tags, REF_PATH or REF_CACHE
    (htslib's rules).

    Every batch has at most ``batch_reads`` reads (pairs) and at most ``batch_bases`` bases, both
    mates counted (default :data:`~rapidrelease.reads._stream.BATCH_BASES`), unless a single read
    (pair) holds more — so memory is bounded by the batch whatever the file size. A read longer than
    :data:`~rapidrelease.reads._stream.MAX_READ_BASES`, or a mate of a pair longer than half of it,
    is refused: the parsers hold a read whole. An empty file gives no batches: a valid empty input;
    whether zero reads is acceptable is the caller's decision.

    Raises ReadsError, one sentence naming the file(s), the record (1-based; and the line for
    FASTQ) and the problem, for every input that cannot be read completely: missing, not a read
    format, truncated, corrupt, malformed records, paired files that disagree, a read too long.
    """
    if batch_reads < 1:
        raise ValueError(f"batch_reads must be at least 1, not {batch_reads}")
    if batch_bases is None:
        batch_bases = _stream.BATCH_BASES
    if batch_bases < 2:
        raise ValueError(f"batch_bases must be at least 2, not {batch_bases}")
    if interleaved and path2 is not None:
        raise ValueError("a mate-2 file and interleaved=True exclude each other")
    path = Path(path)
    kind = sniff_format(path)
    if kind in ("sam", "bam", "cram"):
        if path2 is not None:
            raise ReadsError(
                f"{path} and {path2}: {path} is {KIND_NAMES[kind]}, whose mates are paired by their "
                "FLAG; give it without a mate-2 file."
            )
        if interleaved:
            raise ReadsError(
                f"{path}: is {KIND_NAMES[kind]}, whose mates are paired by their FLAG; it cannot be "
                "read as interleaved."
            )
        # map, not a for loop, whose variable would keep a batch alive while the next one is read
        yield from map(_batch_of, iter_alignment_reads(path, kind, batch_reads, reference, batch_bases))
        return
    if path2 is None and not interleaved:
        yield from map(_single_end, _iter_single(path, kind, batch_reads, batch_bases))
        return
    if interleaved:
        yield from _iter_interleaved(path, kind, batch_reads, batch_bases)
        return
    assert path2 is not None
    path2 = Path(path2)
    kind2 = sniff_format(path2)
    if kind2 in ("sam", "bam", "cram"):
        raise ReadsError(
            f"{path} and {path2}: the mate-2 file is {KIND_NAMES[kind2]}; paired reads in two files "
            "must be FASTQ or FASTA."
        )
    yield from _iter_two_files(path, kind, path2, kind2, batch_reads, batch_bases)


@dataclass(frozen=True)
class ReadStats:
    """Counts over a whole read input: reads (pairs), mates, bases and read lengths (bp)."""

    n_reads: int
    n_paired: int
    n_mates: int
    n_bases: int
    min_length: int
    max_length: int

    @property
    def mean_length(self) -> float:
        """Mean length of a mate in bp (0.0 without reads)."""
        return self.n_bases / self.n_mates if self.n_mates else 0.0


def read_stats(
    path: Path,
    path2: Path | None = None,
    interleaved: bool = False,
    *,
    reference: Path | None = None,
) -> ReadStats:
    """Count reads, pairs, mates and bases of a read input by streaming it once (arguments as
    :func:`iter_read_batches`). Lengths are per mate in bp; min/max are 0 without reads."""
    n_reads = n_paired = n_mates = n_bases = 0
    shortest, longest = None, 0
    for batch in iter_read_batches(path, path2, interleaved=interleaved, reference=reference):
        n_reads += batch.n_reads
        for offsets in (batch.offsets, batch.offsets2):
            if offsets is None or len(offsets) < 2:
                continue
            lengths = np.diff(offsets)
            n_mates += len(lengths)
            n_bases += int(offsets[-1])
            shortest = int(lengths.min()) if shortest is None else min(shortest, int(lengths.min()))
            longest = max(longest, int(lengths.max()))
        if batch.paired:
            n_paired += batch.n_reads
    return ReadStats(n_reads, n_paired, n_mates, n_bases, shortest or 0, longest)


# --- FASTQ / FASTA: one file, two files, interleaved ---------------------------------------------


def _single_end(reads: Reads) -> ReadBatch:
    return ReadBatch(reads.names, reads.seq, reads.offsets, None, None, reads.first_record)


def _iter_single(
    path: Path, kind: str, batch_reads: int, batch_bases: int, mates: bool = False
) -> Iterator[Reads]:
    if kind == "empty":
        return
    if kind == "fastq":
        yield from iter_fastq(path, batch_reads, batch_bases, mates)
    elif kind == "fasta":
        yield from iter_fasta_reads(path, batch_reads, batch_bases, mates)
    else:
        raise ReadsError(f"{path}: is {KIND_NAMES[kind]}; only FASTQ or FASTA can be read here.")


def _iter_two_files(
    path: Path, kind: str, path2: Path, kind2: str, batch_reads: int, batch_bases: int
) -> Iterator[ReadBatch]:
    # half the bases from each file, so that their pairs keep to the cap
    mates1 = _iter_single(path, kind, batch_reads, batch_bases // 2, mates=True)
    mates2 = _iter_single(path2, kind2, batch_reads, batch_bases // 2, mates=True)
    r1: Reads | None = None
    r2: Reads | None = None
    while True:
        # the files' batches can differ in size (the base cap of long reads), so pair what both have
        if r1 is None:
            r1 = next(mates1, None)
        if r2 is None:
            r2 = next(mates2, None)
        if r1 is None and r2 is None:
            return
        if r1 is None or r2 is None:
            record = (r1 or r2).first_record  # type: ignore[union-attr]
            longer, shorter = (path, path2) if r2 is None else (path2, path)
            raise ReadsError(
                f"{path} and {path2}: {shorter} has no record {record:,} but {longer} has; paired files "
                "must hold the same reads in the same order."
            )
        k = min(len(r1.names), len(r2.names))
        a, r1 = _split(r1, k)
        b, r2 = _split(r2, k)
        _check_mate_names(a.names, b.names, a.first_record, f"{path} and {path2}", "in the two files")
        yield ReadBatch(a.names, a.seq, a.offsets, b.seq, b.offsets, a.first_record)
        del a, b  # not held while the next mates are read


def _iter_interleaved(path: Path, kind: str, batch_reads: int, batch_bases: int) -> Iterator[ReadBatch]:
    carry: Reads | None = None
    for chunk in _iter_single(path, kind, 2 * batch_reads, batch_bases, mates=True):
        joined = _concat(carry, chunk) if carry is not None else chunk
        n = len(joined.names)
        whole, carry = _split(joined, n - n % 2)
        # the mate carried over from the previous chunk may take the pairs past the cap: cut there
        while whole is not None:
            pair_ends = whole.offsets[2::2]
            fit = int(np.searchsorted(pair_ends, batch_bases, side="right"))
            reads, whole = _split(whole, 2 * max(fit, 1))
            assert reads is not None
            yield _pairs_of(path, reads)
    if carry is not None:
        raise ReadsError(
            f"{path}: record {carry.first_record:,} has no mate: an interleaved file holds mate 1 and "
            "mate 2 of every pair as consecutive records, so an even number of records."
        )


def _pairs_of(path: Path, reads: Reads) -> ReadBatch:
    """Pairs of consecutive records (an even number of them)."""
    names1, names2 = reads.names[0::2], reads.names[1::2]
    first_pair = (reads.first_record + 1) // 2
    _check_mate_names(names1, names2, first_pair, str(path), "in records 2k-1 and 2k")
    starts, ends = reads.offsets[:-1], reads.offsets[1:]
    seq1, offsets1 = concat_slices(reads.seq, starts[0::2], ends[0::2] - starts[0::2])
    seq2, offsets2 = concat_slices(reads.seq, starts[1::2], ends[1::2] - starts[1::2])
    return ReadBatch(names1, seq1, offsets1, seq2, offsets2, first_pair)


def _split(reads: Reads, k: int) -> tuple[Reads | None, Reads | None]:
    """The first ``k`` reads and the rest (None when empty); views, no copies."""
    n = len(reads.names)
    if k >= n:
        return (reads if n else None), None
    if k <= 0:
        return None, reads
    cut = int(reads.offsets[k])
    head = Reads(reads.names[:k], reads.seq[:cut], reads.offsets[: k + 1], reads.first_record)
    tail = Reads(reads.names[k:], reads.seq[cut:], reads.offsets[k:] - cut, reads.first_record + k)
    return head, tail


def _concat(a: Reads, b: Reads) -> Reads:
    offsets = np.concatenate((a.offsets, b.offsets[1:] + a.offsets[-1]))
    return Reads(a.names + b.names, np.concatenate((a.seq, b.seq)), offsets, a.first_record)


def _check_mate_names(names1: list[str], names2: list[str], first: int, where: str, how: str) -> None:
    if names1 == names2:
        return
    i = next(i for i, (a, b) in enumerate(zip(names1, names2, strict=True)) if a != b)
    raise ReadsError(
        f"{where}: pair {first + i:,} has read ids {names1[i]!r} and {names2[i]!r} {how}; mates must "
        "have the same id (apart from /1 and /2)."
    )


# --- SAM / BAM / CRAM ----------------------------------------------------------------------------


def _batch_of(reads: AlignedReads) -> ReadBatch:
    seq1, offsets1 = _join(reads.mate1)
    seq2, offsets2 = _join(reads.mate2) if reads.mate2 is not None else (None, None)
    return ReadBatch(reads.names, seq1, offsets1, seq2, offsets2, reads.first_record)


def _join(seqs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs)), out=offsets[1:])
    # joining one read returns that read's bytes, so a long read is not copied
    return np.frombuffer(b"".join(seqs), dtype=np.uint8), offsets
