"""Streaming read input: FASTQ, FASTA, SAM, BAM and CRAM, single-end or paired, in batches of arrays.

:func:`iter_read_batches` turns a read file (or a pair of files) into :class:`ReadBatch` objects whose
bases are one concatenated uint8 array per mate, the layout the NumPy k-mer classifier works on.
The format is recognised from the file's first bytes, never its name (see
:func:`rapidrelease.reads._stream.sniff_format`); gzip (and BGZF) FASTQ/FASTA is decompressed with
zlib; SAM, BAM and CRAM are read with pysam.

FASTQ (the four-line form every current instrument writes; Cock et al. 2010, "The Sanger FASTQ file
format"): each record is a header line starting with ``@``, one sequence line, a separator line
starting with ``+`` and one quality line as long as the sequence. ``\\r\\n`` endings are accepted,
blank lines at the very end of the file are ignored, a last line without a line break is accepted.
Multi-line (wrapped) FASTQ is not read: its first wrapped record fails the ``+`` check. Every record
is validated — header ``@``, separator ``+``, equal sequence and quality lengths, a non-empty name,
sequence bytes printable (33–126) — and a file ending inside a record is an error. Quality values
are checked for length only; the classifier does not use them.

The FASTQ parser works on blocks of bytes with NumPy (newline positions with ``np.flatnonzero``,
four lines per record, sequences copied as rows of a sliding-window view). On 150-bp reads it
measured 3.2 M reads/s plain and 0.78 M reads/s gzipped (zlib alone: 1.07 M), against 1.05 M and
0.51 M for ``pysam.FastxFile`` building the same batches; and unlike kseq it finds a missing ``+``
line and names the record and line of every problem. Read names are the header up to the first
space or tab, without a trailing ``/1`` or ``/2`` (Illumina before CASAVA 1.8), so both mates of a
pair carry the same name.

SAM/BAM/CRAM (SAM v1 §1.4): secondary (0x100) and supplementary (0x800) records are skipped, since
their read is also in a primary record. A reverse-strand record (0x10) stores the reverse complement
of the read (SAM v1 §1.4, SEQ), so it is reverse-complemented back to the read as sequenced, as
``samtools fastq`` does. A record with SEQ ``*`` gives an empty read. QC-fail (0x200) and duplicate
(0x400) reads are kept: a contaminant read is evidence whatever its other flags. Records with 0x1
and exactly one of 0x40 (READ1) and 0x80 (READ2) are paired by name; any other record is a
single-end read. Pairing keeps a read until its mate arrives — at once in unaligned and
name-sorted or collated files, where mates are adjacent, later in coordinate-sorted files — in a
buffer of at most :data:`MAX_PENDING_MATES` reads; a file that needs more raises ReadsError asking
for ``samtools collate`` (or ``samtools sort -n``). Reads whose mate is not in the file (a region
extract, a filtered file) are yielded at the end as single-end reads. A paired SAM/BAM/CRAM file may
therefore yield both paired batches and single-end batches.
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rapidrelease.errors import ReadsError
from rapidrelease.reads import _stream
from rapidrelease.reads._stream import ByteReader, GzipTruncatedError, sniff_format
from rapidrelease.reads.fasta import iter_fasta

__all__ = ["MAX_PENDING_MATES", "ReadBatch", "ReadStats", "iter_read_batches", "read_stats"]

MAX_PENDING_MATES = 1_000_000
"""Most SAM/BAM/CRAM reads held while waiting for their mate (about 0.5 GB for 150-bp reads)."""

_MAX_BATCH_BYTES = 128 << 20  # FASTQ text per batch, so long reads keep memory bounded
# One FASTQ record's text. The longest reads sequenced are a few Mb (ultra-long nanopore) and a record
# holds its bases twice (sequence, quality), so this is ~30× the longest real record; past it the
# "record" is a corrupt or non-FASTQ file without line breaks (a 1 MB gzip of one line inflates to
# 1 GiB), which would otherwise grow the buffer until memory runs out.
_MAX_RECORD_BYTES = 256 << 20
_ROW_BUDGET = 8 << 20  # bytes of the temporary (rows × width) arrays of one gather
_NEWLINE, _CR, _AT, _PLUS, _SPACE, _TAB, _SLASH = 10, 13, 64, 43, 32, 9, 47
_FIRST_PRINTABLE, _LAST_PRINTABLE = 33, 126
_COMPLEMENT = str.maketrans("ACGTURYSWKMBDHVNacgturyswkmbdhvn", "TGCAAYRSWMKVHDBNtgcaayrswmkvhdbn")
_ID_END = re.compile("[ \t]")
_KIND_NAMES = {"fastq": "FASTQ", "fasta": "FASTA", "sam": "SAM", "bam": "BAM", "cram": "CRAM"}


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


@dataclass(frozen=True)
class _Reads:
    """Single-file reads before pairing: what every per-format reader yields."""

    names: list[str]
    seq: np.ndarray
    offsets: np.ndarray
    first_record: int


def iter_read_batches(
    path: Path,
    path2: Path | None = None,
    batch_reads: int = 20_000,
    interleaved: bool = False,
    *,
    reference: Path | None = None,
) -> Iterator[ReadBatch]:
    """Read a FASTQ, FASTA, SAM, BAM or CRAM file (or a pair of FASTQ/FASTA files) in batches.

    The format and gzip compression are recognised from the first bytes (BAM: BGZF whose content
    starts with ``BAM\\1``, SAM v1 §4.2; CRAM: ``CRAM``). ``path2`` is the mate-2 file of a pair:
    both files must hold the same number of records with the same read names in the same order.
    ``interleaved`` reads mates 1 and 2 as consecutive records of one FASTQ/FASTA file. SAM/BAM/CRAM
    pairs come from their FLAG (see the module docstring); ``path2`` and ``interleaved`` do not apply
    to them. ``reference`` is the FASTA a CRAM was compressed against, when it is not embedded and
    cannot be found through the @SQ M5/UR tags, REF_PATH or REF_CACHE (htslib's rules).

    Every batch has at most ``batch_reads`` reads (pairs) — fewer in the last batch, and for FASTQ
    of long reads whenever a batch would exceed 128 MiB of text — so memory is bounded by the batch
    whatever the file size. An empty file gives no batches: a valid empty input; whether zero reads
    is acceptable is the caller's decision.

    Raises ReadsError, one sentence naming the file(s), the record (1-based; and the line for
    FASTQ) and the problem, for every input that cannot be read completely: missing, not a read
    format, truncated, corrupt, malformed records, paired files that disagree.
    """
    if batch_reads < 1:
        raise ValueError(f"batch_reads must be at least 1, not {batch_reads}")
    if interleaved and path2 is not None:
        raise ValueError("a mate-2 file and interleaved=True exclude each other")
    path = Path(path)
    kind = sniff_format(path)
    if kind in ("sam", "bam", "cram"):
        if path2 is not None:
            raise ReadsError(
                f"{path} and {path2}: {path} is {_KIND_NAMES[kind]}, whose mates are paired by their "
                "FLAG; give it without a mate-2 file."
            )
        if interleaved:
            raise ReadsError(
                f"{path}: is {_KIND_NAMES[kind]}, whose mates are paired by their FLAG; it cannot be "
                "read as interleaved."
            )
        yield from _iter_alignment_batches(path, kind, batch_reads, reference)
        return
    if path2 is None and not interleaved:
        for reads in _iter_single(path, kind, batch_reads):
            yield ReadBatch(reads.names, reads.seq, reads.offsets, None, None, reads.first_record)
        return
    if interleaved:
        yield from _iter_interleaved(path, kind, batch_reads)
        return
    assert path2 is not None
    path2 = Path(path2)
    kind2 = sniff_format(path2)
    if kind2 in ("sam", "bam", "cram"):
        raise ReadsError(
            f"{path} and {path2}: the mate-2 file is {_KIND_NAMES[kind2]}; paired reads in two files "
            "must be FASTQ or FASTA."
        )
    yield from _iter_two_files(path, kind, path2, kind2, batch_reads)


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


# --- one file ----------------------------------------------------------------------------------


def _iter_single(path: Path, kind: str, batch_reads: int) -> Iterator[_Reads]:
    if kind == "empty":
        return
    if kind == "fastq":
        yield from _iter_fastq(path, batch_reads)
    elif kind == "fasta":
        yield from _iter_fasta_reads(path, batch_reads)
    else:
        raise ReadsError(f"{path}: is {_KIND_NAMES[kind]}; only FASTQ or FASTA can be read here.")


def _iter_two_files(path: Path, kind: str, path2: Path, kind2: str, batch_reads: int) -> Iterator[ReadBatch]:
    mates1 = _iter_single(path, kind, batch_reads)
    mates2 = _iter_single(path2, kind2, batch_reads)
    r1: _Reads | None = None
    r2: _Reads | None = None
    while True:
        # the files' batches can differ in size (the byte cap of long reads), so pair what both have
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


def _iter_interleaved(path: Path, kind: str, batch_reads: int) -> Iterator[ReadBatch]:
    carry: _Reads | None = None
    for chunk in _iter_single(path, kind, 2 * batch_reads):
        reads = _concat(carry, chunk) if carry is not None else chunk
        n = len(reads.names)
        reads, carry = _split(reads, n - n % 2)
        if reads is None:
            continue
        names1, names2 = reads.names[0::2], reads.names[1::2]
        first_pair = (reads.first_record + 1) // 2
        _check_mate_names(names1, names2, first_pair, str(path), "in records 2k-1 and 2k")
        starts, ends = reads.offsets[:-1], reads.offsets[1:]
        seq1, offsets1 = _gather(reads.seq, starts[0::2], ends[0::2] - starts[0::2])
        seq2, offsets2 = _gather(reads.seq, starts[1::2], ends[1::2] - starts[1::2])
        yield ReadBatch(names1, seq1, offsets1, seq2, offsets2, first_pair)
    if carry is not None:
        raise ReadsError(
            f"{path}: record {carry.first_record:,} has no mate: an interleaved file holds mate 1 and "
            "mate 2 of every pair as consecutive records, so an even number of records."
        )


def _split(reads: _Reads, k: int) -> tuple[_Reads | None, _Reads | None]:
    """The first ``k`` reads and the rest (None when empty); views, no copies."""
    n = len(reads.names)
    if k >= n:
        return (reads if n else None), None
    if k <= 0:
        return None, reads
    cut = int(reads.offsets[k])
    head = _Reads(reads.names[:k], reads.seq[:cut], reads.offsets[: k + 1], reads.first_record)
    tail = _Reads(reads.names[k:], reads.seq[cut:], reads.offsets[k:] - cut, reads.first_record + k)
    return head, tail


def _concat(a: _Reads, b: _Reads) -> _Reads:
    offsets = np.concatenate((a.offsets, b.offsets[1:] + a.offsets[-1]))
    return _Reads(a.names + b.names, np.concatenate((a.seq, b.seq)), offsets, a.first_record)


def _check_mate_names(names1: list[str], names2: list[str], first: int, where: str, how: str) -> None:
    if names1 == names2:
        return
    i = next(i for i, (a, b) in enumerate(zip(names1, names2, strict=True)) if a != b)
    raise ReadsError(
        f"{where}: pair {first + i:,} has read ids {names1[i]!r} and {names2[i]!r} {how}; mates must "
        "have the same id (apart from /1 and /2)."
    )


# --- vectorised copies -------------------------------------------------------------------------


def _rows(arr: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Copy ``arr[s:s + width]`` for every s of ascending ``starts``: uint8 of shape (n, width).

    Fancy-indexing the rows of a sliding-window view copies each row like memcpy (measured 15 ns
    per 150-byte row, 15× less than an index-array gather; ``np.take`` would first copy the whole
    view). Rows running past the end of ``arr`` are padded with zero bytes.
    """
    if not len(starts):
        return np.empty((0, width), dtype=np.uint8)
    limit = len(arr) - width
    inside = int(np.searchsorted(starts, limit, side="right")) if limit >= 0 else 0
    rows = sliding_window_view(arr, width)[starts[:inside]] if inside else None
    if rows is not None and inside == len(starts):
        return rows
    first = int(starts[inside])
    tail = np.zeros(len(arr) - first + width, dtype=np.uint8)
    tail[: len(arr) - first] = arr[first:]
    tail_rows = sliding_window_view(tail, width)[starts[inside:] - first]
    return tail_rows if rows is None else np.concatenate((rows, tail_rows))


def _gather(arr: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ``arr[s:s + n]`` for ascending starts s and lengths n.

    Returns (uint8 of shape (sum(lengths),), int64 offsets of shape (len(starts) + 1,)).
    """
    n = len(starts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    out = np.empty(total, dtype=np.uint8)
    if total == 0:
        return out, offsets
    width = int(lengths.max())
    if n * width > 2 * total + 65536:
        # very uneven lengths (long reads): rows would waste memory; copy slice by slice instead
        for i, (s, k) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
            out[offsets[i] : offsets[i] + k] = arr[s : s + k]
        return out, offsets
    step = max(1, _ROW_BUDGET // width)
    columns = np.arange(width)
    for c in range(0, n, step):
        rows = _rows(arr, starts[c : c + step], width)
        part = lengths[c : c + step]
        destination = out[offsets[c] : offsets[c + len(part)]]
        if (part == width).all():
            destination[:] = rows.reshape(-1)
        else:
            destination[:] = rows[columns < part[:, None]]
    return out, offsets


def _names(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Read ids from header text ``arr[starts:ends]`` (after the ``@``/``>``): up to the first space
    or tab, a trailing ``/1`` or ``/2`` removed. Returns the ids and their lengths in bytes."""
    lengths = ends - starts
    n = len(starts)
    width = int(lengths.max()) + 1 if n else 1
    if n * width > 4 * int(lengths.sum()) + 65536:
        # a few very long header lines: rows would be mostly padding; cut each header in Python
        names = [
            _read_id(arr[s:e].tobytes().decode("utf-8", errors="replace"))
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
        return names, np.fromiter((len(x.encode()) for x in names), dtype=np.int64, count=n)
    step = max(1, _ROW_BUDGET // width)
    columns = np.arange(width)
    names: list[str] = []
    name_lengths = np.empty(n, dtype=np.int64)
    for c in range(0, n, step):
        rows = _rows(arr, starts[c : c + step], width)
        m = len(rows)
        line_lengths = lengths[c : c + m, None]
        stop = (columns >= line_lengths) | (rows == _SPACE) | (rows == _TAB)
        size = stop.argmax(axis=1)  # the line end always stops, since width > every length
        index = np.arange(m)
        mate_suffix = (
            (size >= 3)
            & (rows[index, np.maximum(size - 2, 0)] == _SLASH)
            & np.isin(rows[index, np.maximum(size - 1, 0)], (ord("1"), ord("2")))
        )
        size -= 2 * mate_suffix
        name_lengths[c : c + m] = size
        rows[index, size] = _NEWLINE  # the separator for one decode and split of every id
        text = rows[columns <= size[:, None]].tobytes().decode("utf-8", errors="replace")
        names.extend(text.split("\n")[:-1])
    return names, name_lengths


def _read_id(header: str) -> str:
    """The read id of one header (without ``@``/``>``), cut as :func:`_names` cuts them."""
    name = _ID_END.split(header, maxsplit=1)[0]
    return name[:-2] if len(name) >= 3 and name[-2:] in ("/1", "/2") else name


# --- FASTQ ---------------------------------------------------------------------------------------


def _iter_fastq(path: Path, batch_reads: int) -> Iterator[_Reads]:
    """Validated FASTQ records in batches of ``batch_reads`` (see the module docstring).

    Bytes go into one reusable buffer: the records not yet yielded (``filled`` bytes, whose line
    breaks are at ``line_ends``) at its start, new blocks read after them.
    """
    block_bytes = _stream.BLOCK_BYTES
    buf = np.empty(2 * block_bytes, dtype=np.uint8)
    filled = 0
    line_ends = np.empty(0, dtype=np.int64)
    record = 1  # 1-based number of the next record to yield
    eof = False
    with ByteReader(path) as reader:
        while not eof:
            found_parts = [line_ends]
            n_breaks = len(line_ends)
            while n_breaks < 4 * batch_reads and (filled < _MAX_BATCH_BYTES or n_breaks < 4):
                if n_breaks < 4 and filled > _MAX_RECORD_BYTES:
                    # the buffer holds only the first unfinished record here (earlier ones were yielded)
                    raise ReadsError(
                        f"{path}: record {record:,} runs past {_MAX_RECORD_BYTES / 2**20:g} MiB with line "
                        f"{4 * (record - 1) + n_breaks + 1:,} still unfinished, far longer than any read; "
                        "the file is corrupt or not FASTQ."
                    )
                if filled + block_bytes + 1 > len(buf):
                    grown = np.empty(max(2 * len(buf), filled + block_bytes + 1), dtype=np.uint8)
                    grown[:filled] = buf[:filled]
                    buf = grown
                try:
                    n = reader.readinto(buf.data[filled : filled + block_bytes])
                except GzipTruncatedError as exc:
                    # the records before the cut are complete; say which record the cut falls in
                    raise ReadsError(
                        f"{path}: is truncated inside record {record + n_breaks // 4:,} (its gzip data "
                        f"end after {exc.decompressed_bytes:,} bytes without an end-of-stream marker; an "
                        "incomplete download or copy?)."
                    ) from None
                if n == 0:
                    eof = True
                    break
                found = np.flatnonzero(buf[filled : filled + n] == _NEWLINE)
                found += filled
                found_parts.append(found)
                filled += n
                n_breaks += len(found)
            line_ends = np.concatenate(found_parts) if len(found_parts) > 1 else line_ends
            unterminated = False
            if eof:
                filled, line_ends, unterminated = _end_of_file(buf, filled, line_ends)
            arr = buf[:filled]
            complete = len(line_ends) // 4
            done = 0
            while done < complete:
                available = complete - done
                start = int(line_ends[4 * done - 1]) + 1 if done else 0
                # records ending within the byte cap (at least one, however long)
                record_ends = line_ends[4 * done + 3 : 4 * complete : 4]
                fit = int(np.searchsorted(record_ends, start + _MAX_BATCH_BYTES, side="left"))
                k = min(batch_reads, available, max(fit, 1))
                if k == available < batch_reads and not eof and filled < _MAX_BATCH_BYTES:
                    break  # room for more records: read on
                last = eof and done + k == complete and unterminated
                yield _fastq_batch(path, arr, start, line_ends[4 * done : 4 * (done + k)], record, last)
                record += k
                done += k
            if eof and len(line_ends) > 4 * done:
                lines = len(line_ends) - 4 * done
                raise ReadsError(
                    f"{path}: is truncated inside record {record:,}: the file ends after line "
                    f"{4 * (record - 1) + lines:,}, {lines} line{'s' if lines > 1 else ''} into a "
                    "four-line FASTQ record."
                )
            consumed = int(line_ends[4 * done - 1]) + 1 if done else 0
            if consumed:
                # batches hold copies, so the yielded records' bytes can be overwritten
                buf[: filled - consumed] = buf[consumed:filled]
                filled -= consumed
                line_ends = line_ends[4 * done :] - consumed


def _end_of_file(buf: np.ndarray, filled: int, line_ends: np.ndarray) -> tuple[int, np.ndarray, bool]:
    """Complete the last line if it has no line break, and drop blank lines at the end of the file.

    ``buf`` has room for one more byte. Returns the new filled size, the line ends and whether the
    file's last line had no line break.
    """
    unterminated = False
    tail_start = int(line_ends[-1]) + 1 if len(line_ends) else 0
    if np.any(buf[tail_start:filled] != _CR):
        buf[filled] = _NEWLINE
        line_ends = np.append(line_ends, filled)
        filled += 1
        unterminated = True
    n = len(line_ends)
    while n:
        begin = int(line_ends[n - 2]) + 1 if n > 1 else 0
        if np.any(buf[begin : int(line_ends[n - 1])] != _CR):
            break
        n -= 1
    if n < len(line_ends) and n % 4 == 3:
        # the first blank line dropped follows a '+' line: it is the empty quality line of an empty
        # read (cutadapt keeps emptied reads), not padding, so the last record is complete
        begin = int(line_ends[n - 2]) + 1 if n > 1 else 0
        if buf[begin] == _PLUS:
            n += 1
    return filled, line_ends[:n], unterminated


def _fastq_batch(
    path: Path, arr: np.ndarray, start: int, line_ends: np.ndarray, first_record: int, unterminated: bool
) -> _Reads:
    """Validate and copy the records whose four lines end at ``line_ends`` (absolute positions in
    ``arr``, the first line starting at ``start``)."""
    n = len(line_ends) // 4
    starts = np.empty(4 * n, dtype=np.int64)
    starts[0] = start
    starts[1:] = line_ends[:-1] + 1
    ends = line_ends.copy()
    ends -= (ends > starts) & (arr[ends - 1] == _CR)  # \r\n endings
    head_s, seq_s, plus_s, qual_s = (starts[j::4] for j in range(4))
    head_e, seq_e, _, qual_e = (ends[j::4] for j in range(4))
    seq_lengths = seq_e - seq_s
    qual_lengths = qual_e - qual_s
    # an empty line's first byte is its line break, which fails both character checks
    bad_head = arr[head_s] != _AT
    bad_plus = arr[plus_s] != _PLUS
    bad_lengths = seq_lengths != qual_lengths
    names, name_lengths = _names(arr, head_s + 1, head_e)
    bad_name = name_lengths == 0
    bad = bad_head | bad_plus | bad_lengths | bad_name
    if bad.any():
        i = int(np.argmax(bad))
        record, line = first_record + i, 4 * (first_record + i - 1)
        if bad_head[i]:
            problem = f"(line {line + 1:,}) should start with '@' but starts with {_first(arr, head_s[i])}"
        elif bad_name[i]:
            problem = f"(line {line + 1:,}) has an empty read name"
        elif bad_plus[i]:
            problem = (
                f"(line {line + 3:,}) should be the '+' separator line but starts with "
                f"{_first(arr, plus_s[i])}"
            )
        elif unterminated and i == n - 1:
            problem = (
                f"(line {line + 4:,}) is cut short: the file ends after {qual_lengths[i]:,} of its "
                f"{seq_lengths[i]:,} quality values"
            )
        else:
            problem = (
                f"(line {line + 4:,}) has {qual_lengths[i]:,} quality values for {seq_lengths[i]:,} bases"
            )
        raise ReadsError(f"{path}: record {record:,} {problem}.")
    seq, offsets = _gather(arr, seq_s, seq_lengths)
    if len(seq) and (seq.min() < _FIRST_PRINTABLE or seq.max() > _LAST_PRINTABLE):
        position = int(np.argmax((seq < _FIRST_PRINTABLE) | (seq > _LAST_PRINTABLE)))
        i = int(np.searchsorted(offsets, position, side="right")) - 1
        raise ReadsError(
            f"{path}: record {first_record + i:,} (line {4 * (first_record + i - 1) + 2:,}) has the byte "
            f"{bytes(seq[position : position + 1])!r} at base {position - int(offsets[i]) + 1:,}, which "
            "is not a base."
        )
    return _Reads(names, seq, offsets, first_record)


def _first(arr: np.ndarray, position: int) -> str:
    byte = int(arr[position])
    return (
        "an empty line"
        if byte in (_NEWLINE, _CR)
        else repr(chr(byte))
        if 32 <= byte < 127
        else f"byte 0x{byte:02x}"
    )


# --- FASTA reads ---------------------------------------------------------------------------------


def _iter_fasta_reads(path: Path, batch_reads: int) -> Iterator[_Reads]:
    """FASTA reads (one record per read) in batches; ids cut as for FASTQ."""
    names: list[str] = []
    pieces: list[np.ndarray] = []
    record = 1
    for header, seq in iter_fasta(path):
        names.append(_read_id(header))
        pieces.append(seq)
        if len(names) == batch_reads:
            yield _fasta_batch(names, pieces, record)
            record += len(names)
            names, pieces = [], []
    if names:
        yield _fasta_batch(names, pieces, record)


def _fasta_batch(names: list[str], pieces: list[np.ndarray], first_record: int) -> _Reads:
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in pieces], out=offsets[1:])
    seq = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.uint8)
    return _Reads(names, seq.astype(np.uint8, copy=False), offsets, first_record)


# --- SAM / BAM / CRAM ----------------------------------------------------------------------------


def _batch_of(names: list[str], seqs1: list[str], seqs2: list[str] | None, first_record: int) -> ReadBatch:
    seq1, offsets1 = _join(seqs1)
    seq2, offsets2 = _join(seqs2) if seqs2 is not None else (None, None)
    return ReadBatch(names, seq1, offsets1, seq2, offsets2, first_record)


def _join(seqs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs)), out=offsets[1:])
    # htslib decodes SEQ from 4-bit codes to the letters of "=ACMGRSVTWYHKDBN", all ASCII
    return np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8), offsets


def _open_alignments(path: Path, kind: str, reference: Path | None) -> Any:
    import pysam

    mode = {"sam": "r", "bam": "rb", "cram": "rc"}[kind]
    # a missing end-of-file marker is checked by _missing_eof_marker after the last record, so the
    # error can say how far the file goes; pysam would refuse to open such a file without a record
    options: dict[str, Any] = {"check_sq": False, "ignore_truncation": True}
    if reference is not None:
        options["reference_filename"] = str(reference)
    try:
        with _quiet_pysam_open(pysam):
            return pysam.AlignmentFile(str(path), mode, **options)
    except (OSError, ValueError) as exc:
        message = str(exc)
    except NotImplementedError:
        # htslib decompresses plain gzip but cannot seek in it, and pysam asks for a position on open
        raise ReadsError(
            f"{path}: is {_KIND_NAMES[kind]} compressed with plain gzip, not in the BGZF blocks of SAM v1 "
            "§4.1 that htslib needs; recompress it with bgzip (or samtools view -b)."
        ) from None
    raise ReadsError(
        f"{path}: cannot be opened as {_KIND_NAMES[kind]} (htslib: {message}); its header may be "
        "truncated or damaged."
    )


@contextlib.contextmanager
def _quiet_pysam_open(pysam: Any) -> Iterator[None]:
    """Keep stderr for our one-sentence error while pysam opens a file.

    htslib logs what its return codes already say (and, for CRAM, that no index exists, which
    reading through does not need); pysam warns about the end-of-file marker checked afterwards;
    and when the open fails, the half-built AlignmentFile's destructor prints "Closing failed"
    through sys.excepthook and sys.unraisablehook. The hooks are process-wide, so they are swapped
    only for the duration of the open.
    """
    verbosity = pysam.set_verbosity(0)
    excepthook, unraisablehook = sys.excepthook, sys.unraisablehook
    sys.excepthook = lambda *args: None
    sys.unraisablehook = lambda unraisable: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.excepthook, sys.unraisablehook = excepthook, unraisablehook
        pysam.set_verbosity(verbosity)


@contextlib.contextmanager
def _alignments(path: Path, kind: str, reference: Path | None) -> Iterator[Any]:
    alignments = _open_alignments(path, kind, reference)
    try:
        yield alignments
    finally:
        # after a read error htslib's close fails too (pysam raises a stale errno); the read error
        # is the one to report
        with contextlib.suppress(OSError, ValueError):
            alignments.close()


_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")  # SAM v1 §4.1.2
_CRAM3_EOF = bytes.fromhex(  # CRAM v3.1 §9: the end-of-file container
    "0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b"
)


def _missing_eof_marker(path: Path, kind: str) -> str | None:
    """The name of the end-of-file marker the file should end with and does not, or None."""
    if kind == "bam":
        expected, what = _BGZF_EOF, "BGZF end-of-file marker of SAM v1 §4.1.2"
    elif kind == "cram":
        expected, what = _CRAM3_EOF, "end-of-file container of CRAM v3.1 §9"
    else:
        return None
    try:
        with open(path, "rb") as fh:
            major = fh.read(5)[4:5]
            if kind == "cram" and major != b"\x03":
                return None  # other CRAM versions end differently; htslib checks them
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(size - len(expected), 0))
            return None if fh.read() == expected else what
    except OSError as exc:
        raise ReadsError(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def _iter_alignment_batches(
    path: Path, kind: str, batch_reads: int, reference: Path | None
) -> Iterator[ReadBatch]:
    """SAM/BAM/CRAM reads (see the module docstring for flags and pairing).

    The loop body runs once per record in Python, so it is written for speed: plain lists, no
    method calls beyond pysam's attribute decoding.
    """
    names: list[str] = []  # single-end reads waiting for a full batch
    seqs: list[str] = []
    pair_names: list[str] = []
    pair_seqs1: list[str] = []
    pair_seqs2: list[str] = []
    pending: dict[str, tuple[str, bool, int]] = {}  # name → (sequence, is READ1, record number)
    fragment = 1  # 1-based number of the next read (pair) to yield
    record = 0
    with _alignments(path, kind, reference) as alignments:
        try:
            for aligned in alignments.fetch(until_eof=True):
                record += 1
                flag = aligned.flag
                if flag & 0x900:
                    continue
                seq = aligned.query_sequence or ""
                if flag & 0x10:
                    seq = seq.translate(_COMPLEMENT)[::-1]
                name = aligned.query_name or ""
                if name[-2:] in ("/1", "/2") and len(name) >= 3:  # _read_id, inlined for speed
                    name = name[:-2]
                mate_bits = flag & 0xC0
                if not (flag & 0x1) or mate_bits == 0 or mate_bits == 0xC0:
                    names.append(name)
                    seqs.append(seq)
                    if len(names) == batch_reads:
                        yield _batch_of(names, seqs, None, fragment)
                        fragment += batch_reads
                        names, seqs = [], []
                    continue
                is_read1 = mate_bits == 0x40
                mate = pending.pop(name, None)
                if mate is None:
                    if len(pending) >= MAX_PENDING_MATES:
                        raise ReadsError(
                            f"{path}: at record {record:,}, more than {MAX_PENDING_MATES:,} reads wait for "
                            "their mates; sort it by read name (samtools collate, or samtools sort -n) so "
                            "mates are adjacent."
                        )
                    pending[name] = (seq, is_read1, record)
                    continue
                if mate[1] == is_read1:
                    raise ReadsError(
                        f"{path}: record {record:,} is read {1 if is_read1 else 2} of {name!r} again "
                        f"(first at record {mate[2]:,}); a pair has one READ1 and one READ2 record."
                    )
                pair_names.append(name)
                pair_seqs1.append(mate[0] if mate[1] else seq)
                pair_seqs2.append(seq if mate[1] else mate[0])
                if len(pair_names) == batch_reads:
                    yield _batch_of(pair_names, pair_seqs1, pair_seqs2, fragment)
                    fragment += batch_reads
                    pair_names, pair_seqs1, pair_seqs2 = [], [], []
        except (OSError, ValueError) as exc:
            raise _alignment_error(path, kind, record + 1, exc, reference) from None
    missing = _missing_eof_marker(path, kind)
    if missing:
        raise ReadsError(
            f"{path}: is truncated after record {record:,}: the {missing} is missing from its end "
            "(an incomplete download or copy?)."
        )
    if pair_names:
        yield _batch_of(pair_names, pair_seqs1, pair_seqs2, fragment)
        fragment += len(pair_names)
    # then the reads whose mate is not in the file, in file order
    for name, (seq, _, _) in pending.items():
        names.append(name)
        seqs.append(seq)
        if len(names) == batch_reads:
            yield _batch_of(names, seqs, None, fragment)
            fragment += batch_reads
            names, seqs = [], []
    if names:
        yield _batch_of(names, seqs, None, fragment)


def _alignment_error(
    path: Path, kind: str, record: int, exc: Exception, reference: Path | None
) -> ReadsError:
    if kind == "cram":
        need = (
            f"the reference {reference} may not be the one it was compressed against"
            if reference
            else "it may need the reference FASTA it was compressed against (pass it, or set REF_PATH)"
        )
        return ReadsError(
            f"{path}: CRAM record {record:,} cannot be decoded (htslib: {exc}); {need}, or the file is "
            "truncated."
        )
    return ReadsError(
        f"{path}: {_KIND_NAMES[kind]} record {record:,} cannot be read (htslib: {exc}); the file is "
        "truncated or damaged."
    )
