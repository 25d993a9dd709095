"""The NumPy FASTQ parser, and FASTA files of reads: one file's reads in batches of arrays.

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
pair carry the same name. FASTA reads (one record per read, :mod:`rapidrelease.reads.fasta`) are cut
into batches and named the same way.

Both yield :class:`Reads` of one file; pairing them into batches is :mod:`rapidrelease.reads.input`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rapidrelease.errors import ReadsError
from rapidrelease.reads import _stream
from rapidrelease.reads._stream import ByteReader, GzipTruncatedError, read_limit, read_too_long
from rapidrelease.reads.fasta import iter_fasta

__all__ = ["Reads", "concat_slices", "iter_fasta_reads", "iter_fastq"]

# One FASTQ record's text: the longest read passed on (_stream.MAX_READ_BASES) holds its bases twice
# (sequence, quality) and a header. Past it the "record" is a corrupt or non-FASTQ file without line
# breaks (a 1 MB gzip of one line inflates to 1 GiB), which would otherwise grow the buffer until
# memory runs out; a sequence line alone longer than a read may be is refused sooner, by name.
_MAX_RECORD_BYTES = 2 * _stream.MAX_READ_BASES + (1 << 20)
_ROW_BUDGET = 8 << 20  # bytes of the temporary (rows × width) arrays of one gather
_NEWLINE, _CR, _AT, _PLUS, _SPACE, _TAB, _SLASH = 10, 13, 64, 43, 32, 9, 47
_FIRST_PRINTABLE, _LAST_PRINTABLE = 33, 126
_ID_END = re.compile("[ \t]")


@dataclass(frozen=True)
class Reads:
    """One file's reads, before pairing: what the FASTQ and FASTA-reads parsers yield.

    ``seq`` uint8 (total_bases,) of every read concatenated; ``offsets`` int64 (n_reads + 1,): read i
    is ``seq[offsets[i]:offsets[i + 1]]``; ``first_record`` the 1-based record number of read 0.
    """

    names: list[str]
    seq: np.ndarray
    offsets: np.ndarray
    first_record: int


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


def concat_slices(arr: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    if n * width > 2 * total + 65536 or 8 * width > _ROW_BUDGET:
        # long reads: rows would waste memory on padding, and the column numbers below take 8 bytes
        # per base of the longest (800 MB for a 100-Mb read); a copy per read costs nothing here
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


def iter_fastq(
    path: Path, batch_reads: int, batch_bases: int | None = None, mates: bool = False
) -> Iterator[Reads]:
    """Validated FASTQ records in batches of ``batch_reads`` and at most ``batch_bases`` bases (default
    :data:`~rapidrelease.reads._stream.BATCH_BASES`; one read alone may hold more), see the module
    docstring. A read longer than :func:`~rapidrelease.reads._stream.read_limit` allows is refused;
    ``mates``: the records are mates of pairs.

    Bytes go into one reusable buffer: the records not yet yielded (``filled`` bytes, whose line
    breaks are at ``line_ends``) at its start, new blocks read after them.
    """
    block_bytes = _stream.BLOCK_BYTES
    if batch_bases is None:
        batch_bases = _stream.BATCH_BASES
    text_cap = 2 * batch_bases  # a record's text holds its bases twice, so this is enough to read on
    # the buffer never needs more than the longest record or batch and a block: no doubling past it
    largest = max(_MAX_RECORD_BYTES, text_cap) + 2 * block_bytes + 1
    buf = np.empty(2 * block_bytes, dtype=np.uint8)
    filled = 0
    line_ends = np.empty(0, dtype=np.int64)
    record = 1  # 1-based number of the next record to yield
    eof = False
    with ByteReader(path) as reader:
        while not eof:
            found_parts = [line_ends]
            n_breaks = len(line_ends)
            while n_breaks < 4 * batch_reads and (filled < text_cap or n_breaks < 4):
                if n_breaks < 4:
                    # the buffer holds only the first unfinished record here (earlier ones were yielded)
                    _check_unfinished(path, buf, filled, np.concatenate(found_parts), record, mates)
                if filled + block_bytes + 1 > len(buf):
                    size = max(min(2 * len(buf), largest), filled + block_bytes + 1)
                    grown = np.empty(size, dtype=np.uint8)
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
            # bases up to the end of each complete record (a \r counted as one: the cap stays a cap)
            bases_to = np.cumsum(line_ends[1 : 4 * complete : 4] - line_ends[0 : 4 * complete : 4] - 1)
            done = 0
            while done < complete:
                available = complete - done
                start = int(line_ends[4 * done - 1]) + 1 if done else 0
                # records within the base cap (at least one, however long)
                before = int(bases_to[done - 1]) if done else 0
                fit = int(np.searchsorted(bases_to, before + batch_bases, side="right")) - done
                k = min(batch_reads, available, max(fit, 1))
                if k == available < batch_reads and not eof and filled < text_cap:
                    break  # room for more records: read on
                last = eof and done + k == complete and unterminated
                ends = line_ends[4 * done : 4 * (done + k)]
                yield _fastq_batch(path, arr, start, ends, record, last, mates)
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
            del arr  # a view would keep the buffer alive after it is regrown, doubling its memory
            if consumed:
                # batches hold copies, so the yielded records' bytes can be overwritten
                buf[: filled - consumed] = buf[consumed:filled]
                filled -= consumed
                line_ends = line_ends[4 * done :] - consumed


def _check_unfinished(
    path: Path, buf: np.ndarray, filled: int, line_ends: np.ndarray, record: int, mates: bool
) -> None:
    """Refuse the unfinished record at the start of the buffer once it holds more than a record may:
    by its name when its header is one and its sequence line is longer than a read may be."""
    limit = read_limit(mates)
    if len(line_ends) and buf[0] == _AT:
        header_end = int(line_ends[0])
        name = _read_id(buf[1:header_end].tobytes().decode("utf-8", errors="replace").rstrip("\r"))
        if len(line_ends) > 1:
            bases = int(line_ends[1]) - header_end - 1 - int(buf[int(line_ends[1]) - 1] == _CR)
            if bases > limit:
                raise read_too_long(path, record, name, bases, mate=mates)
        elif filled - header_end - 1 > limit + 1:  # + 1: its \r
            raise read_too_long(path, record, name, filled - header_end - 1, exact=False, mate=mates)
    if filled > _MAX_RECORD_BYTES:
        raise ReadsError(
            f"{path}: record {record:,} runs past {_MAX_RECORD_BYTES / 2**20:g} MiB with line "
            f"{4 * (record - 1) + len(line_ends) + 1:,} still unfinished, far longer than any read; "
            "the file is corrupt or not FASTQ."
        )


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
    path: Path,
    arr: np.ndarray,
    start: int,
    line_ends: np.ndarray,
    first_record: int,
    unterminated: bool,
    mates: bool = False,
) -> Reads:
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
    if n and int(seq_lengths.max()) > read_limit(mates):  # a record that came whole in one block
        i = int(np.argmax(seq_lengths > read_limit(mates)))  # the first in the file
        raise read_too_long(path, first_record + i, names[i], int(seq_lengths[i]), mate=mates)
    seq, offsets = concat_slices(arr, seq_s, seq_lengths)
    if len(seq) and (seq.min() < _FIRST_PRINTABLE or seq.max() > _LAST_PRINTABLE):
        position = int(np.argmax((seq < _FIRST_PRINTABLE) | (seq > _LAST_PRINTABLE)))
        i = int(np.searchsorted(offsets, position, side="right")) - 1
        raise ReadsError(
            f"{path}: record {first_record + i:,} (line {4 * (first_record + i - 1) + 2:,}) has the byte "
            f"{bytes(seq[position : position + 1])!r} at base {position - int(offsets[i]) + 1:,}, which "
            "is not a base."
        )
    return Reads(names, seq, offsets, first_record)


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


def iter_fasta_reads(
    path: Path, batch_reads: int, batch_bases: int | None = None, mates: bool = False
) -> Iterator[Reads]:
    """FASTA reads (one record per read) in batches of ``batch_reads`` and at most ``batch_bases``
    bases, reads too long refused (as :func:`iter_fastq`); ids cut as for FASTQ."""
    if batch_bases is None:
        batch_bases = _stream.BATCH_BASES
    names: list[str] = []
    pieces: list[np.ndarray] = []
    bases = 0
    record = 1
    for header, seq in iter_fasta(path, max_bases=read_limit(mates), mates=mates):
        if names and bases + len(seq) > batch_bases:
            yield _fasta_batch(names, pieces, record)
            record += len(names)
            names, pieces, bases = [], [], 0
        names.append(_read_id(header))
        pieces.append(seq)
        bases += len(seq)
        del seq  # the batch holds it; the loop variable would hold it on while the next is assembled
        # a full batch goes at once, not held while the next read is assembled
        if len(names) == batch_reads or bases >= batch_bases:
            yield _fasta_batch(names, pieces, record)
            record += len(names)
            names, pieces, bases = [], [], 0
    if names:
        yield _fasta_batch(names, pieces, record)


def _fasta_batch(names: list[str], pieces: list[np.ndarray], first_record: int) -> Reads:
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in pieces], out=offsets[1:])
    # one long read is passed as it is: a copy would double what it holds
    seq = pieces[0] if len(pieces) == 1 else np.concatenate(pieces) if pieces else np.empty(0, dtype=np.uint8)
    return Reads(names, seq.astype(np.uint8, copy=False), offsets, first_record)
