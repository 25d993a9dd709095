"""SAM, BAM and CRAM input through pysam (htslib): the reads of an alignment file, paired by FLAG.

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

A truncated file is named with the record it ends at: htslib is told to read past a missing
end-of-file marker, which is then checked here (SAM v1 §4.1.2, CRAM v3.1 §9).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

from rapidrelease.errors import ReadsError
from rapidrelease.reads import _stream
from rapidrelease.reads._stream import KIND_NAMES, read_limit, read_too_long

if TYPE_CHECKING:
    from pysam import AlignmentFile

__all__ = ["MAX_PENDING_MATES", "AlignedReads", "iter_alignment_reads"]

MAX_PENDING_MATES = 1_000_000
"""Most SAM/BAM/CRAM reads held while waiting for their mate (about 0.5 GB for 150-bp reads)."""

MAX_PENDING_BASES = 1 << 28
"""Most bases of those reads: long paired reads reach it before the read count."""

_COMPLEMENT = bytes.maketrans(b"ACGTURYSWKMBDHVNacgturyswkmbdhvn", b"TGCAAYRSWMKVHDBNtgcaayrswmkvhdbn")


class AlignedReads(NamedTuple):
    """One batch of reads (or pairs) of an alignment file, sequences as htslib decodes them.

    ``mate1`` (and ``mate2``, or None for single-end reads) hold one sequence per name, as sequenced
    (reverse-strand records restored), ASCII bytes in the letters of ``=ACMGRSVTWYHKDBN``;
    ``first_record`` is the 1-based number of the batch's first read (pair) in the order reads are
    yielded.
    """

    names: list[str]
    mate1: list[bytes]
    mate2: list[bytes] | None
    first_record: int


def _open_alignments(path: Path, kind: str, reference: Path | None) -> AlignmentFile:
    import pysam

    mode = {"sam": "r", "bam": "rb", "cram": "rc"}[kind]
    # a missing end-of-file marker is checked by _missing_eof_marker after the last record, so the
    # error can say how far the file goes; pysam would refuse to open such a file without a record
    options: dict[str, bool | str] = {"check_sq": False, "ignore_truncation": True}
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
            f"{path}: is {KIND_NAMES[kind]} compressed with plain gzip, not in the BGZF blocks of SAM v1 "
            "§4.1 that htslib needs; recompress it with bgzip (or samtools view -b)."
        ) from None
    raise ReadsError(
        f"{path}: cannot be opened as {KIND_NAMES[kind]} (htslib: {message}); its header may be "
        "truncated or damaged."
    )


@contextlib.contextmanager
def _quiet_pysam_open(pysam: ModuleType) -> Iterator[None]:
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
def _alignments(path: Path, kind: str, reference: Path | None) -> Iterator[AlignmentFile]:
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


def iter_alignment_reads(
    path: Path, kind: str, batch_reads: int, reference: Path | None, batch_bases: int | None = None
) -> Iterator[AlignedReads]:
    """SAM/BAM/CRAM reads in batches of at most ``batch_reads`` reads (pairs) and ``batch_bases``
    bases (default :data:`~rapidrelease.reads._stream.BATCH_BASES`; one read or pair alone may hold
    more); see the module docstring for flags and pairing. A read longer than
    :data:`~rapidrelease.reads._stream.MAX_READ_BASES` (a mate of a pair: half of it) is refused
    before its bases are decoded.

    The loop body runs once per record in Python, so it is written for speed: plain lists, no
    method calls beyond pysam's attribute decoding.
    """
    if batch_bases is None:
        batch_bases = _stream.BATCH_BASES
    max_mate = read_limit(mate=True)
    names: list[str] = []  # single-end reads waiting for a full batch
    seqs: list[bytes] = []
    bases = 0  # in seqs
    pair_names: list[str] = []
    pair_seqs1: list[bytes] = []
    pair_seqs2: list[bytes] = []
    pair_bases = 0
    pending: dict[str, tuple[bytes, bool, int]] = {}  # name → (sequence, is READ1, record number)
    pending_bases = 0
    fragment = 1  # 1-based number of the next read (pair) to yield
    record = 0
    with _alignments(path, kind, reference) as alignments:
        try:
            for aligned in alignments.fetch(until_eof=True):
                record += 1
                flag = aligned.flag
                if flag & 0x900:
                    continue
                name = aligned.query_name or ""
                length = aligned.query_length  # SEQ's length, read before its bases are decoded
                if length > max_mate:  # rare: only then see whether it is a mate or a read
                    is_mate = bool(flag & 0x1) and (flag & 0xC0) in (0x40, 0x80)
                    if length > read_limit(is_mate):
                        raise read_too_long(path, record, name, length, mate=is_mate)
                text = aligned.query_sequence
                # pysam's copy of the record holds 1.5 bytes per base, and the decoded text one more:
                # neither is kept once the read is bytes (which a one-read batch's array then shares)
                del aligned
                seq = text.encode("ascii") if text else b""
                del text
                if flag & 0x10:
                    seq = seq.translate(_COMPLEMENT)[::-1]
                if name[-2:] in ("/1", "/2") and len(name) >= 3:  # _read_id, inlined for speed
                    name = name[:-2]
                mate_bits = flag & 0xC0
                if not (flag & 0x1) or mate_bits == 0 or mate_bits == 0xC0:
                    bases += length
                    if bases > batch_bases and names:  # the batch so far, without this read
                        yield AlignedReads(names, seqs, None, fragment)
                        fragment += len(names)
                        names, seqs, bases = [], [], length
                    names.append(name)
                    seqs.append(seq)
                    del seq  # the batch holds it; the variable would hold it on through the next record
                    # a full batch goes at once, not held while htslib loads the next record
                    if len(names) == batch_reads or bases >= batch_bases:
                        yield AlignedReads(names, seqs, None, fragment)
                        fragment += len(names)
                        names, seqs, bases = [], [], 0
                    continue
                is_read1 = mate_bits == 0x40
                mate = pending.pop(name, None)
                if mate is None:
                    if len(pending) >= MAX_PENDING_MATES or pending_bases > MAX_PENDING_BASES:
                        held = (
                            f"more than {MAX_PENDING_MATES:,} reads"
                            if len(pending) >= MAX_PENDING_MATES
                            else f"{len(pending):,} reads of more than {MAX_PENDING_BASES:,} bases"
                        )
                        raise ReadsError(
                            f"{path}: at record {record:,}, {held} wait for their mates; sort it by read "
                            "name (samtools collate, or samtools sort -n) so mates are adjacent."
                        )
                    pending[name] = (seq, is_read1, record)
                    pending_bases += len(seq)
                    continue
                pending_bases -= len(mate[0])
                if mate[1] == is_read1:
                    raise ReadsError(
                        f"{path}: record {record:,} is read {1 if is_read1 else 2} of {name!r} again "
                        f"(first at record {mate[2]:,}); a pair has one READ1 and one READ2 record."
                    )
                if pair_names and pair_bases + len(seq) + len(mate[0]) > batch_bases:
                    yield AlignedReads(pair_names, pair_seqs1, pair_seqs2, fragment)
                    fragment += len(pair_names)
                    pair_names, pair_seqs1, pair_seqs2, pair_bases = [], [], [], 0
                pair_names.append(name)
                pair_seqs1.append(mate[0] if mate[1] else seq)
                pair_seqs2.append(seq if mate[1] else mate[0])
                pair_bases += len(seq) + len(mate[0])
                del seq, mate  # as for single reads: the batch holds them
                if len(pair_names) == batch_reads or pair_bases >= batch_bases:
                    yield AlignedReads(pair_names, pair_seqs1, pair_seqs2, fragment)
                    fragment += len(pair_names)
                    pair_names, pair_seqs1, pair_seqs2, pair_bases = [], [], [], 0
        except (OSError, ValueError) as exc:
            raise _alignment_error(path, kind, record + 1, exc, reference) from None
    missing = _missing_eof_marker(path, kind)
    if missing:
        raise ReadsError(
            f"{path}: is truncated after record {record:,}: the {missing} is missing from its end "
            "(an incomplete download or copy?)."
        )
    if pair_names:
        yield AlignedReads(pair_names, pair_seqs1, pair_seqs2, fragment)
        fragment += len(pair_names)
    # then the reads whose mate is not in the file, in file order
    for name, (seq, _, _) in pending.items():
        if names and bases + len(seq) > batch_bases:
            yield AlignedReads(names, seqs, None, fragment)
            fragment += len(names)
            names, seqs, bases = [], [], 0
        names.append(name)
        seqs.append(seq)
        bases += len(seq)
        if len(names) == batch_reads or bases >= batch_bases:
            yield AlignedReads(names, seqs, None, fragment)
            fragment += len(names)
            names, seqs, bases = [], [], 0
    if names:
        yield AlignedReads(names, seqs, None, fragment)


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
        f"{path}: {KIND_NAMES[kind]} record {record:,} cannot be read (htslib: {exc}); the file is "
        "truncated or damaged."
    )
