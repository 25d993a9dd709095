"""Byte blocks of a plain or gzip-compressed file, and what its first bytes say the file is.

Shared by the FASTQ/FASTA parsers of :mod:`rapidrelease.reads.fastq` and :mod:`rapidrelease.reads.fasta`,
and by :mod:`rapidrelease.reads.input`, which picks the parser from what the first bytes say.
Compression is recognised by magic bytes, never by the file name: gzip (RFC 1952 §2.3.1, ``1f 8b``),
including BGZF and any other concatenation of gzip members (RFC 1952 §2.2), is decompressed with
ISA-L (``isal``, Intel's Intelligent Storage Acceleration Library, zlib's interface and output); bzip2,
xz and zstd are recognised only to say that they are not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from isal import isal_zlib

from rapidrelease.errors import ReadsError

__all__ = [
    "BATCH_BASES",
    "BLOCK_BYTES",
    "KIND_NAMES",
    "MAX_READ_BASES",
    "ByteReader",
    "GzipTruncatedError",
    "iter_blocks",
    "read_limit",
    "read_too_long",
    "sniff_format",
]

BLOCK_BYTES = 1 << 20
"""Largest decompressed block handed to a parser, in bytes."""

MAX_READ_BASES = 1 << 27
"""Longest read the parsers pass on: 134,217,728 bases, and half of that for each mate of a pair
(both mates are classified as one read); looked up at call time.

A parser holds a read whole (pysam does for SAM/BAM/CRAM; FASTQ holds its text, twice the bases),
so this bounds their memory; the classifier itself scans any read in windows. It is ~30× the
longest reads sequenced (a few Mb, ultra-long nanopore), so a longer "read" is an assembly or a
corrupt file, and is refused by :func:`read_too_long` rather than filling memory.
"""

BATCH_BASES = 1 << 23
"""Most bases (both mates) the parsers put in one batch, unless a single read (pair) holds more.

Batches of short reads stop at their read count first; 8 Mi bases keep a batch of long reads, and
the copies of it that travel to worker processes, near 10 MB each.
"""

KIND_NAMES = {"fastq": "FASTQ", "fasta": "FASTA", "sam": "SAM", "bam": "BAM", "cram": "CRAM"}
"""How messages name each read format :func:`sniff_format` recognises."""

_COMPRESSED_READ = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_BAM_MAGIC = b"BAM\x01"  # SAM v1 §4.2: the first 4 bytes of the decompressed BAM stream
_CRAM_MAGIC = b"CRAM"  # CRAM v3.1 §6: the file definition starts with "CRAM"
_SAM_HEADER_TAGS = (b"@HD\t", b"@SQ\t", b"@RG\t", b"@PG\t", b"@CO\t")  # SAM v1 §1.3
_OTHER_COMPRESSION = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_SNIFF_BYTES = 64


class GzipTruncatedError(ReadsError):
    """The gzip data end before their end-of-stream marker (a cut download or copy).

    ``decompressed_bytes`` counts the bytes recovered before the cut, so a parser can say which
    record the file ends in; the message alone already names the file.
    """

    def __init__(self, message: str, decompressed_bytes: int) -> None:
        super().__init__(message)
        self.decompressed_bytes = decompressed_bytes


def read_limit(mate: bool) -> int:
    """The most bases a read may have (:data:`MAX_READ_BASES`), or a ``mate`` of a pair (half)."""
    return MAX_READ_BASES // 2 if mate else MAX_READ_BASES


def read_too_long(
    path: Path, record: int, name: str, bases: int, exact: bool = True, mate: bool = False
) -> ReadsError:
    """The refusal of a read (or ``mate``) longer than :func:`read_limit`: ``bases`` is its length, or
    (not ``exact``) how far the parser got before it stopped reading it."""
    limit = read_limit(mate)
    what = "a mate of a pair may have (both mates are classified as one read)" if mate else "a read may have"
    length = f"{bases:,} bases, more than the {limit:,}" if exact else f"more than the {limit:,} bases"
    return ReadsError(
        f"{path}: read {name!r} (record {record:,}) has {length} {what}; it is likely an assembly or a "
        "damaged file, not a sequenced read."
    )


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ReadsError(f"{path}: file not found.") from None
    except IsADirectoryError:
        raise ReadsError(f"{path}: is a folder, not a file of reads.") from None
    except OSError as exc:
        raise ReadsError(f"{path}: cannot be opened ({exc.strerror or exc}).") from None


def _read(fh: BinaryIO, size: int, path: Path) -> bytes:
    try:
        return fh.read(size)
    except OSError as exc:
        raise ReadsError(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def iter_blocks(path: Path, block_bytes: int | None = None) -> Iterator[bytes]:
    """The file's content, decompressed when it is gzip, as consecutive non-empty blocks.

    Each block holds at most ``block_bytes`` bytes (default :data:`BLOCK_BYTES`, looked up at call
    time), so memory stays bounded whatever the compression ratio. Raises
    :class:`GzipTruncatedError` when the gzip data end before their end-of-stream marker and
    ReadsError when they are corrupt or followed by bytes that are not another gzip member (trailing
    zero bytes, which tape and some copy tools add, are ignored as gzip does).
    """
    if block_bytes is None:
        block_bytes = BLOCK_BYTES
    fh = _open(path)
    with fh:
        head = _read(fh, 2, path)
        if head != _GZIP_MAGIC:
            if head:
                yield head
            while block := _read(fh, block_bytes, path):
                yield block
            return
        yield from _gunzip(fh, head, path, block_bytes)


class ByteReader:
    """The file's content, decompressed when it is gzip, read into buffers the caller owns.

    For a plain file :meth:`readinto` reads straight into the caller's buffer (no intermediate
    copy, a third of the FASTQ parsing time otherwise); for gzip it copies decompressed blocks of
    :func:`iter_blocks`. Use as a context manager; errors as :func:`iter_blocks`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: BinaryIO | None = None
        self._blocks: Iterator[bytes] | None = None
        self._pending = memoryview(b"")
        fh = _open(path)
        try:
            gzipped = _read(fh, 2, path) == _GZIP_MAGIC
            fh.seek(0)
        except BaseException:
            fh.close()
            raise
        if gzipped:
            fh.close()
            self._blocks = iter_blocks(path)
        else:
            self._fh = fh

    def readinto(self, target: memoryview) -> int:
        """Fill the start of ``target`` with the next bytes; returns how many (0 at the end)."""
        if self._fh is not None:
            try:
                return self._fh.readinto(target) or 0
            except OSError as exc:
                raise ReadsError(f"{self.path}: cannot be read ({exc.strerror or exc}).") from None
        assert self._blocks is not None
        if not self._pending:
            self._pending = memoryview(next(self._blocks, b""))
        n = min(len(target), len(self._pending))
        target[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        """Close the file (and stop the decompression)."""
        if self._fh is not None:
            self._fh.close()
        if self._blocks is not None:
            self._blocks.close()  # type: ignore[attr-defined]

    def __enter__(self) -> ByteReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _gunzip(fh: BinaryIO, pending: bytes, path: Path, block_bytes: int) -> Iterator[bytes]:
    # a decompressor object rather than gzip.GzipFile: a third faster on 150-bp FASTQ, and it tells a
    # cut file (no end-of-stream marker) from corrupt data. ISA-L's decompressor inflates 150-bp FASTQ in
    # half zlib's time (0.62 against 1.13-1.24 CPU s for 323 MB), a tenth of classifying it.
    produced = 0
    member = isal_zlib.decompressobj(wbits=31)
    data = pending
    while True:
        if not data:
            data = _read(fh, _COMPRESSED_READ, path)
            if not data:
                out = _inflate(member, None, block_bytes, path, produced)
                if out:
                    produced += len(out)
                    yield out
                if member.eof:
                    return
                raise GzipTruncatedError(
                    f"{path}: is truncated: its gzip data end after {produced:,} decompressed bytes "
                    "without an end-of-stream marker (an incomplete download or copy?).",
                    produced,
                )
        out = _inflate(member, data, block_bytes, path, produced)
        if out:
            produced += len(out)
            yield out
        if not member.eof:
            data = member.unconsumed_tail
            continue
        # RFC 1952 §2.2: a gzip file is a series of members; BGZF (SAM v1 §4.1) relies on it.
        data = member.unused_data
        while len(data) < 2:
            more = _read(fh, _COMPRESSED_READ, path)
            if not more:
                break
            data += more
        if not data:
            return
        if data[:2] != _GZIP_MAGIC:
            if not data.strip(b"\0") and _rest_is_zero(fh, path):
                return
            raise ReadsError(
                f"{path}: holds {data[:8]!r}… after the end of its gzip data, which is neither another "
                "gzip member nor padding; the file is damaged."
            )
        member = isal_zlib.decompressobj(wbits=31)


def _inflate(member: Any, data: bytes | None, limit: int, path: Path, produced: int) -> bytes:
    """Decompress ``data`` (at most ``limit`` bytes out), or flush the member when ``data`` is None."""
    try:
        return member.flush() if data is None else member.decompress(data, limit)
    except isal_zlib.error as exc:
        raise ReadsError(
            f"{path}: its gzip data are corrupt after {produced:,} decompressed bytes (ISA-L: {exc})."
        ) from None


def _rest_is_zero(fh: BinaryIO, path: Path) -> bool:
    while block := _read(fh, _COMPRESSED_READ, path):
        if block.strip(b"\0"):
            return False
    return True


def sniff_format(path: Path) -> str:
    """What the file holds, from its first (decompressed) bytes, not from its name.

    Returns ``"empty"`` (no bytes at all, or gzip of nothing), ``"bam"`` (BGZF whose content starts
    with ``BAM\\1``, SAM v1 §4.2), ``"cram"`` (``CRAM``, CRAM v3.1 §6), ``"sam"`` (a SAM header line,
    SAM v1 §1.3), ``"fastq"`` (``@``) or ``"fasta"`` (``>``). Raises ReadsError for anything else,
    naming the compression when it is bzip2, xz or zstd.
    """
    fh = _open(path)
    with fh:
        raw = _read(fh, _SNIFF_BYTES, path)
    if raw.startswith(_CRAM_MAGIC):
        return "cram"
    for magic, name in _OTHER_COMPRESSION.items():
        if raw.startswith(magic):
            raise ReadsError(
                f"{path}: is compressed with {name}, which is not read here; recompress it with gzip "
                "or bgzip."
            )
    head = raw
    if raw.startswith(_GZIP_MAGIC):
        head = b""
        try:
            for block in iter_blocks(path, block_bytes=_SNIFF_BYTES):
                head += block
                if len(head) >= _SNIFF_BYTES:
                    break
        except GzipTruncatedError:
            if not head:
                raise
        if head.startswith(_BAM_MAGIC):
            return "bam"
    if not head:
        return "empty"
    if head.startswith(_SAM_HEADER_TAGS):
        return "sam"
    if head.startswith(b"@"):
        return "fastq"
    if head.startswith(b">"):
        return "fasta"
    kind = "gzip-compressed data" if raw.startswith(_GZIP_MAGIC) else "a file"
    raise ReadsError(f"{path}: is not FASTQ, FASTA, SAM, BAM or CRAM ({kind} starting with {head[:12]!r}).")
