"""Streaming FASTA reader for reference genomes, simulator genomes and FASTA reads.

FASTA conventions followed (NCBI FASTA format description; samtools faidx): a record is a header
line starting with ``>`` followed by zero or more sequence lines; line breaks inside the sequence
carry no meaning; ``\\r\\n`` line endings are read as ``\\n``; blank lines are ignored. Sequence
characters must be IUPAC nucleotide codes (NC-IUB 1985: ``ACGTURYSWKMBDHVN``, either case, case
kept so soft-masked lowercase survives) or ``-`` (gap) and ``*`` (end/unknown); anything else is an
error naming the line. Plain and gzip (including BGZF) files are read, recognised by magic bytes.

The file is read in blocks (:data:`rapidrelease.reads._stream.BLOCK_BYTES`), so memory holds one
block plus the record being assembled (twice its length while its pieces are joined), never the
whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rapidrelease.errors import ReadsError
from rapidrelease.reads._stream import GzipTruncatedError, iter_blocks, read_too_long

__all__ = ["IUPAC_SEQUENCE_BYTES", "iter_fasta"]

IUPAC_SEQUENCE_BYTES = b"ACGTURYSWKMBDHVNacgturyswkmbdhvn-*"
"""Bytes accepted in a sequence line (NC-IUB nucleotide codes in either case, gap, stop/unknown)."""

_NEWLINE, _CR, _GT = 10, 13, 62
# byte classes: 0 line break, 1 sequence character, 2 anything else
_LINE_BREAK, _BASE, _OTHER = 0, 1, 2


def _byte_classes() -> np.ndarray:
    table = np.full(256, _OTHER, dtype=np.uint8)
    table[np.frombuffer(IUPAC_SEQUENCE_BYTES, dtype=np.uint8)] = _BASE
    table[[_NEWLINE, _CR]] = _LINE_BREAK
    return table


_CLASS = _byte_classes()


def iter_fasta(
    path: Path, max_bases: int | None = None, mates: bool = False
) -> Iterator[tuple[str, np.ndarray]]:
    """Each record of a plain or gzipped FASTA file as (header, sequence), in file order.

    ``header`` is the whole header line without ``>`` and without the line ending (decoded as
    UTF-8, undecodable bytes replaced); ``sequence`` is uint8 ASCII of shape (n_bases,), line breaks
    removed, case as written. A record with a header and no sequence lines yields an empty array.
    An empty file (or one of blank lines only) yields nothing; whether that is acceptable is the
    caller's decision. With ``max_bases`` (FASTA reads), a record longer than that is refused as a
    read (or, with ``mates``, a mate) too long as soon as it passes it
    (:func:`rapidrelease.reads._stream.read_too_long`).

    Raises ReadsError naming the file, record (1-based) and line (1-based) when a sequence line comes
    before the first header, a header is empty, a sequence line holds a character that is not an
    IUPAC code, ``-`` or ``*``, or the gzip data are truncated or corrupt.
    """
    path = Path(path)
    parser = _FastaParser(path, max_bases, mates)
    try:
        for block in iter_blocks(path):
            yield from parser.feed(block, final=False)
        yield from parser.feed(b"", final=True)
    except GzipTruncatedError:
        raise ReadsError(
            f"{path}: is truncated inside record {max(parser.record, 1)} (its gzip data end after line "
            f"{parser.line:,} without an end-of-stream marker; an incomplete download or copy?)."
        ) from None


class _FastaParser:
    """Block-at-a-time state: the record being assembled and the position in the file."""

    def __init__(self, path: Path, max_bases: int | None = None, mates: bool = False) -> None:
        self.path = path
        self.max_bases = max_bases
        self.mates = mates
        self.header: str | None = None
        self.pieces: list[np.ndarray] = []
        self.bases = 0  # in self.pieces
        self.record = 0  # 1-based number of the record being assembled, 0 before the first header
        self.line = 0  # lines completed before the current block
        self.rest = b""

    def feed(self, block: bytes, final: bool) -> Iterator[tuple[str, np.ndarray]]:
        buf = self.rest + block if self.rest else block
        arr = np.frombuffer(buf, dtype=np.uint8)
        breaks = np.flatnonzero(arr == _NEWLINE)
        if final and len(arr) and (not len(breaks) or breaks[-1] != len(arr) - 1):
            breaks = np.append(breaks, len(arr))  # the last line has no line break
        end = int(breaks[-1]) + 1 if len(breaks) else 0
        self.rest = b"" if final else buf[end:]
        if len(breaks):
            yield from self._lines(buf, arr, breaks)
            self.line += len(breaks)
        if final and self.header is not None:
            yield self._finish()

    def _lines(self, buf: bytes, arr: np.ndarray, breaks: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        starts = np.empty(len(breaks), dtype=np.int64)
        starts[0] = 0
        starts[1:] = breaks[:-1] + 1
        ends = breaks.copy()
        last = len(arr) - 1
        # \r\n endings: the \r belongs to the line break, not to the header or sequence
        ends -= (ends > starts) & (arr[np.minimum(ends - 1, last)] == _CR)
        first_byte = np.where(ends > starts, arr[np.minimum(starts, last)], _NEWLINE)
        header_lines = np.flatnonzero(first_byte == _GT)
        headers = [
            buf[s + 1 : e].decode("utf-8", errors="replace")
            for s, e in zip(starts[header_lines].tolist(), ends[header_lines].tolist(), strict=True)
        ]
        classes = _CLASS[arr[: int(breaks[-1])]]
        self._check(arr, classes, starts, ends, header_lines, headers)
        bounds = [0, *header_lines.tolist(), len(starts)]
        for k in range(len(bounds) - 1):
            first_line, stop_line = bounds[k], bounds[k + 1]
            if k > 0:
                if self.header is not None:
                    yield self._finish()
                self.header = headers[k - 1]
                self.record += 1
                first_line += 1
            if first_line < stop_line and self.header is not None:
                a, b = int(starts[first_line]), int(ends[stop_line - 1])
                # one boolean compress drops every line break of the piece at once
                piece = arr[a:b][classes[a:b] == _BASE]
                if len(piece):
                    self.pieces.append(piece)
                    self.bases += len(piece)
                    if self.max_bases is not None and self.bases > self.max_bases:
                        name = self.header.split(maxsplit=1)[0] if self.header.strip() else self.header
                        raise read_too_long(
                            self.path, self.record, name, self.bases, exact=False, mate=self.mates
                        )

    def _finish(self) -> tuple[str, np.ndarray]:
        assert self.header is not None
        if len(self.pieces) == 1:
            sequence = self.pieces[0]
        elif self.pieces:
            sequence = np.concatenate(self.pieces)
        else:
            sequence = np.empty(0, dtype=np.uint8)
        record = (self.header, sequence)
        self.header, self.pieces, self.bases = None, [], 0
        return record

    def _check(
        self,
        arr: np.ndarray,
        classes: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        header_lines: np.ndarray,
        headers: list[str],
    ) -> None:
        """Raise ReadsError for the block's first bad line (in file order), if any."""
        problems: list[tuple[int, str]] = []
        if self.header is None:
            limit = int(header_lines[0]) if len(header_lines) else len(starts)
            content = np.flatnonzero(ends[:limit] > starts[:limit])
            if len(content):
                problems.append(
                    (int(content[0]), "holds sequence before the first '>' header line (is this FASTA?)")
                )
        bad = np.flatnonzero(classes == _OTHER)
        if len(bad):
            line_of_bad = np.searchsorted(starts, bad, side="right") - 1
            is_header = np.zeros(len(starts), dtype=bool)
            is_header[header_lines] = True
            in_sequence = np.flatnonzero(~is_header[line_of_bad])
            if len(in_sequence):
                pos = int(bad[in_sequence[0]])
                char = bytes(arr[pos : pos + 1])
                problems.append(
                    (
                        int(line_of_bad[in_sequence[0]]),
                        f"holds {char!r} at column {pos - int(starts[line_of_bad[in_sequence[0]]]) + 1}, "
                        "which is not an IUPAC nucleotide code, '-' or '*'",
                    )
                )
        for line, header in zip(header_lines.tolist(), headers, strict=True):
            if not header.strip():
                problems.append((line, "is a '>' header with no name"))
                break
        if problems:
            line, what = min(problems)
            record = self.record + int(np.searchsorted(header_lines, line, side="right"))
            where = (
                f"record {record:,}, line {self.line + line + 1:,}"
                if record
                else f"line {self.line + line + 1:,}"
            )
            raise ReadsError(f"{self.path}: {where} {what}.")
