"""Fuzzing the FCS reader and the read-file input: seed files, mutations and the targets that read them.

Shared by the bounded unit tests (tests/unit/fcs/test_fuzz_reader.py, tests/unit/reads/test_fuzz_input.py:
Hypothesis draws the mutations, so a failure shrinks) and the long-running command
tests/fuzz/fuzz_readers.py (``random.Random`` draws them for as long as a developer likes). The seeds
are small real files (FCS: FACSCalibur FCS 2.0 16-bit, Fortessa FCS 3.0 floats, Cytek xP5, plus
delimited and fixed-width ASCII and a two-data-set chain; reads: FASTQ plain, gzip and BGZF, FASTA, SAM
and BAM written from real reads); a target reads a mutated file completely and fails on anything but
the project's own one-sentence errors (FCSReadError, ReadsError), a NumPy RuntimeWarning, the FCS
reader's catch-all "is malformed" message or an execution slower than :data:`HANG_SECONDS`.
"""

from __future__ import annotations

import gzip
import random
import re
import struct
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rapidrelease.errors import FCSReadError, ReadsError
from rapidrelease.fcs.reader import describe_fcs, read_fcs
from rapidrelease.reads.input import iter_read_batches, read_stats

FCSPARSER_DATA = Path(__import__("fcsparser").__file__).parent / "tests" / "data" / "FlowCytometers"
SHARED_READS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "seq" / "reads" / "host"
HANG_SECONDS = 5.0

# --- seeds ---------------------------------------------------------------------------------------

_OFFSET_KEYWORDS = ("$BEGINDATA", "$ENDDATA", "$BEGINSTEXT", "$ENDSTEXT", "$BEGINANALYSIS", "$ENDANALYSIS")


def fcs_file(keywords: dict[str, str], data: bytes, version: str = "3.1", nextdata: int = 0) -> bytes:
    """One FCS data set: HEADER, TEXT from byte 58 with '/' delimiters, DATA right after it."""
    keywords = {**keywords, "$NEXTDATA": f"{nextdata:010d}"}
    if version != "2.0":
        keywords |= {"$BEGINDATA": "0" * 10, "$ENDDATA": "0" * 10}

    def text() -> bytes:
        body = "".join(f"{k.replace('/', '//')}/{v.replace('/', '//')}/" for k, v in keywords.items())
        return ("/" + body).encode("utf-8")

    text_end = 58 + len(text()) - 1
    start, end = (text_end + 1, text_end + len(data)) if data else (0, 0)
    if version != "2.0":
        keywords |= {"$BEGINDATA": f"{start:010d}", "$ENDDATA": f"{end:010d}"}
    header = f"FCS{version}    {58:8d}{text_end:8d}{start:8d}{end:8d}{0:8d}{0:8d}".encode()
    return header + text() + data


def _shrunk(path: Path, n_events: int) -> bytes:
    """A real file's keywords with its first ``n_events`` events: small, so mutations hit every part."""
    fcs = read_fcs(path)
    keywords = {k: v for k, v in fcs.keywords.items() if k not in _OFFSET_KEYWORDS and k != "$NEXTDATA"}
    keywords["$TOT"] = str(n_events)
    raw = path.read_bytes()
    data = raw[fcs._data_start : fcs._data_start + n_events * fcs._layout.record_bytes]
    return fcs_file(keywords, data, fcs.version)


def fcs_seeds() -> dict[str, bytes]:
    """Small valid FCS files, by name."""
    seeds = {
        "calibur_fcs2.0_int16": _shrunk(FCSPARSER_DATA / "FACSCaliburHTS" / "Sample_Well_A02.fcs", 6),
        "fortessa_fcs3.0_float": _shrunk(
            FCSPARSER_DATA / "Fortessa" / "FCS_3.0_Fortessa_PBS_Specimen_001_A1_A01.fcs", 6
        ),
        "cytek_xp5": _shrunk(FCSPARSER_DATA / "Cytek_xP5" / "Cytek_xP5.fcs", 6),
    }
    two = {"$PAR": "2", "$MODE": "L", "$P1N": "FSC-A", "$P1R": "1024", "$P2N": "Time", "$P2R": "1024"}
    seeds["ascii_delimited"] = fcs_file(
        two | {"$DATATYPE": "A", "$TOT": "3", "$P1B": "*", "$P2B": "*"}, b"1 2\n3,4\n5\t6\n"
    )
    seeds["ascii_fixed"] = fcs_file(
        two | {"$DATATYPE": "A", "$TOT": "3", "$P1B": "4", "$P2B": "3"}, b"000100200030040005006"
    )
    integers = two | {"$DATATYPE": "I", "$TOT": "2", "$P1B": "16", "$P2B": "24", "$BYTEORD": "4,3,2,1"}
    integers |= {"$TIMESTEP": "0.01", "$P1E": "4,1", "$DATE": "24-NOV-2026", "$BTIM": "10:00:00"}
    first = fcs_file(integers, bytes(range(10)), "2.0")
    floats = integers | {"$DATATYPE": "F", "$P1B": "32", "$P2B": "32", "$P1E": "0,0"}
    floats |= {"$BYTEORD": "1,2,3,4", "$SPILLOVER": "1,FSC-A,1"}
    first = fcs_file(integers, bytes(range(10)), "2.0", nextdata=len(first))
    seeds["chain_fcs2.0_fcs3.1"] = first + fcs_file(floats, np.arange(4, dtype="<f4").tobytes())
    return seeds


def _bgzf(content: bytes) -> bytes:
    """BGZF (SAM v1 §4.1): gzip members of at most 64 KiB with the BC extra field, then the EOF block."""
    out = b""
    for i in range(0, max(len(content), 1), 65280):
        chunk = content[i : i + 65280]
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = deflate.compress(chunk) + deflate.flush()
        out += b"\x1f\x8b\x08\x04" + bytes(4) + b"\x00\xff\x06\x00BC\x02\x00"
        out += struct.pack("<H", 18 + len(body) + 8 - 1) + body
        out += struct.pack("<II", zlib.crc32(chunk), len(chunk) & 0xFFFFFFFF)
    return out + bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _real_reads() -> list[tuple[str, str]]:
    fastq = SHARED_READS / "hostile_human_ERR3239334_50pairs_R1.fastq.gz"
    if fastq.is_file():
        lines = gzip.decompress(fastq.read_bytes()).decode().splitlines()[:24]
        return [(lines[k][1:].split()[0], lines[k + 1]) for k in range(0, len(lines), 4)]
    rng = np.random.default_rng(1)  # without ../shared/data: reads of the same shape
    return [(f"ERR3239334.{i}", "".join(rng.choice(list("ACGTN"), 150))) for i in range(6)]


def reads_seeds(folder: Path) -> dict[str, tuple[str, bytes]]:
    """Small valid read files, by name: (compression 'plain'/'gzip'/'bgzf', uncompressed bytes)."""
    import pysam

    reads = _real_reads()
    fastq = "".join(f"@{n} 1:N:0\n{s}\n+\n{'I' * len(s)}\n" for n, s in reads).encode()
    bam = folder / "seed.bam"
    header = {"HD": {"VN": "1.6", "SO": "unsorted"}, "SQ": [{"SN": "chrS", "LN": 5000}]}
    with pysam.AlignmentFile(str(bam), "wb", header=header) as out:
        for i, (_, seq) in enumerate(reads):
            record = pysam.AlignedSegment(out.header)
            mate1 = i % 2 == 0  # records 2k and 2k+1 are the two mates of pair k, named after mate 1
            record.query_name, record.flag, record.query_sequence = (
                reads[i - i % 2][0],
                77 if mate1 else 141,
                seq,
            )
            record.query_qualities = pysam.qualitystring_to_array("I" * len(seq))
            out.write(record)
        aligned = pysam.AlignedSegment(out.header)  # a reverse-strand aligned single read
        aligned.query_name, aligned.flag, aligned.query_sequence = "aligned", 0x10, reads[0][1]
        aligned.reference_id, aligned.reference_start, aligned.cigarstring = 0, 100, f"{len(reads[0][1])}M"
        out.write(aligned)
    sam = pysam.view("-h", str(bam)).encode()
    return {
        "fastq": ("plain", fastq),
        "fastq_gzip": ("gzip", fastq),
        "fastq_bgzf": ("bgzf", fastq),
        "fasta": ("plain", b">r1 one\nACGTN\nacgt\n>r2\n\n>r3\nAC\n"),
        "sam": ("plain", sam),
        "bam": ("bgzf", gzip.decompress(bam.read_bytes())),
    }


# --- mutations -----------------------------------------------------------------------------------
# A mutation is a tuple of plain values, so that Hypothesis can draw and shrink it and a failure
# prints as a reproducer. Positions are fractions of the region they fall in.

Op = tuple[Any, ...]
FCS_KEYWORDS = (
    "$PAR", "$TOT", "$DATATYPE", "$BYTEORD", "$P1B", "$P2B", "$P3B", "$P1R", "$P2R", "$P1E", "$P2E",
    "$P1G", "$P1DATATYPE", "$BEGINDATA", "$ENDDATA", "$NEXTDATA", "$BEGINSTEXT", "$ENDSTEXT", "$MODE",
    "$TIMESTEP", "$SPILLOVER", "$P1N", "$P2N", "$DATE", "$BTIM", "$ETIM", "$BEGINDATETIME",
)  # fmt: skip
FCS_VALUES = (
    "0", "1", "2", "3", "7", "8", "9", "12", "24", "64", "65", "-1", "58", "1000000000000",
    "99999999999999999999", "*", "I", "F", "D", "A", "X", "1,2,3,4", "4,3,2,1", "2,1", "3,4,1,2", " ",
    "nan", "inf", "-inf", "1e308", "1e-320", "0,0", "4,0", "4000,1", "1,", "Time", "\xff", "1_0",
    "2,FSC-A,Time,1,0.1,0,1", "31-Dec-9999", "23:59:59", "00:00:01:59", "9999-12-31T23:59:59-01:00",
)  # fmt: skip
REGIONS = ("header", "text", "data", "anywhere")
INSERTS = (b"\x00", b"/", b"//", b"\n", b"@", b"+", b"\r\n", b"/1", b" ", b"\t", b"\xff\xfe", b"FCS3.1")
BAM_EXTREMES = (0, 1, -1, 7, 255, 65535, 1 << 16, 1 << 20, 1 << 28, (1 << 31) - 1, -(1 << 31))


class RandomPick:
    """Choices from ``random.Random``, for the time-bounded command."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.rng.randrange(len(options))]


class HypothesisPick:
    """The same choices made by Hypothesis (``data`` is its ``st.data()`` object), so failures shrink."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        from hypothesis import strategies as st

        return self.data.draw(st.integers(lo, hi))

    def choice(self, options: Sequence[Any]) -> Any:
        from hypothesis import strategies as st

        return self.data.draw(st.sampled_from(list(options)))


def _byte_op(pick: Any, regions: Sequence[str]) -> Op:
    kind = pick.choice(("flip", "insert", "delete", "truncate", "duplicate"))
    where = pick.choice(regions)
    position = pick.int(0, 999) / 1000
    if kind == "flip":
        return (kind, where, position, pick.int(0, 255))
    if kind == "insert":
        return (kind, where, position, pick.choice(INSERTS) if pick.int(0, 1) else bytes([pick.int(0, 255)]))
    return (kind, where, position, pick.int(1, 64))


def draw_fcs_ops(pick: Any) -> list[Op]:
    ops: list[Op] = []
    for _ in range(pick.int(1, 4)):
        kind = pick.int(0, 3)
        if kind <= 1:
            ops.append(("keyword", pick.choice(FCS_KEYWORDS), pick.choice(FCS_VALUES)))
        elif kind == 2:
            ops.append(("header", pick.int(0, 5), pick.choice(("0", "57", "58", "99999999", "-1", "x", ""))))
        else:
            ops.append(_byte_op(pick, REGIONS))
    return ops


def draw_reads_ops(pick: Any) -> list[Op]:
    ops: list[Op] = [("mode", pick.choice(("single", "stats", "interleaved", "pair")), pick.int(1, 8))]
    for _ in range(pick.int(1, 4)):
        kind = pick.int(0, 3)
        if kind == 3:
            ops.append(("bam_field", pick.int(0, 999) / 1000, pick.choice(BAM_EXTREMES)))
        else:
            ops.append(_byte_op(pick, ("content", "compressed")))
    return ops


def _span(data: bytes, where: str) -> tuple[int, int]:
    if where in ("anywhere", "content", "compressed"):
        return 0, len(data)
    try:
        text_end = int(data[18:26])
    except ValueError:
        text_end = min(len(data), 300)
    return {"header": (0, min(58, len(data))), "text": (58, text_end + 1), "data": (text_end + 1, len(data))}[
        where
    ]


def _apply_byte_op(data: bytearray, op: Op) -> bytearray:
    kind, where, position, value = op
    lo, hi = _span(bytes(data), where)
    hi = max(lo, min(hi, len(data)))
    i = lo + int(position * (hi - lo))
    if kind == "flip" and i < len(data):
        data[i] = value
    elif kind == "insert":
        data[i:i] = value
    elif kind == "delete":
        del data[i : i + value]
    elif kind == "truncate":
        del data[i:]
    elif kind == "duplicate":
        data[i:i] = data[i : i + value]
    return data


def mutate_fcs(seed: bytes, ops: list[Op]) -> bytes:
    data = bytearray(seed)
    for op in ops:
        if op[0] == "keyword":
            _, key, value = op
            encoded, delimiter = value.encode("latin-1"), bytes(data[58:59] or b"/")
            d = re.escape(delimiter)
            found = re.search(re.escape(key.encode()) + d + b"([^" + d + b"]*)" + d, bytes(data))
            if found:
                data[found.start(1) : found.end(1)] = encoded
            else:
                data[59:59] = key.encode() + delimiter + encoded + delimiter
        elif op[0] == "header":
            _, field, value = op
            data[10 + 8 * field : 18 + 8 * field] = value.rjust(8)[:8].encode()
        else:
            data = _apply_byte_op(data, op)
    return bytes(data)


def _bam_field_offsets(raw: bytes) -> list[tuple[int, int]]:
    """(offset, width) of the integer fields of a decompressed BAM (SAM v1 §4.2)."""
    fields, p = [(4, 4)], 8 + struct.unpack_from("<i", raw, 4)[0]
    fields.append((p, 4))
    n_ref, p = struct.unpack_from("<i", raw, p)[0], p + 4
    for _ in range(n_ref):
        fields.append((p, 4))
        p += 4 + struct.unpack_from("<i", raw, p)[0]
        fields.append((p, 4))
        p += 4
    while p + 36 <= len(raw):
        # block_size, refID, pos, l_read_name, mapq, bin, n_cigar_op, flag, l_seq, next refID/pos, tlen
        layout = [(0, 4), (4, 4), (8, 4), (12, 1), (13, 1), (14, 2), (16, 2), (18, 2), (20, 4), (24, 4)]
        fields += [(p + offset, width) for offset, width in [*layout, (28, 4), (32, 4)]]
        p += 4 + struct.unpack_from("<i", raw, p)[0]
    return fields


def mutate_reads(seed: tuple[str, bytes], ops: list[Op]) -> bytes:
    compression, content = seed
    data = bytearray(content)
    for op in ops:
        if op[0] == "bam_field" and compression == "bgzf" and content[:4] == b"BAM\x01":
            offset, width = (fields := _bam_field_offsets(content))[int(op[1] * len(fields))]
            data[offset : offset + width] = (op[2] % (1 << (8 * width))).to_bytes(width, "little")
        elif op[0] in ("flip", "insert", "delete", "truncate", "duplicate") and op[1] == "content":
            data = _apply_byte_op(data, op)
    packed = bytes(data)
    if compression == "gzip":
        packed = gzip.compress(packed, mtime=0)
    elif compression == "bgzf":
        packed = _bgzf(packed)
    out = bytearray(packed)
    for op in ops:
        if op[0] in ("flip", "insert", "delete", "truncate", "duplicate") and op[1] == "compressed":
            out = _apply_byte_op(out, op)
    return bytes(out)


# --- targets -------------------------------------------------------------------------------------


class FuzzFailure(AssertionError):
    """A mutated file made a reader fail in a way users must never see."""


def _guarded(run: Callable[[], None], allowed: type[Exception]) -> None:
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            # a NumPy RuntimeWarning (overflow, invalid; underflow is ignored as by default) means NaN
            # or inf slipped into values unnoticed
            warnings.simplefilter("error", RuntimeWarning)
            run()
    except allowed as exc:
        if "is malformed and cannot be read" in str(exc):
            # read_fcs's safety net caught an exception no rule anticipated: a message to improve
            raise FuzzFailure(f"the catch-all message was needed: {exc}") from exc
    elapsed = time.monotonic() - started
    if elapsed > HANG_SECONDS:
        raise FuzzFailure(f"one execution took {elapsed:.1f} s (more than {HANG_SECONDS} s)")


def run_fcs(data: bytes, folder: Path) -> None:
    """Read a mutated FCS file completely, as ``rapidrelease fcs-info`` and gating do."""
    path = folder / "mutated.fcs"
    path.write_bytes(data)

    def run() -> None:
        fcs = read_fcs(path)
        fcs.events()
        for _ in fcs.iter_event_chunks(4):
            pass
        describe_fcs(fcs)
        fcs.spillover()

    _guarded(run, FCSReadError)


def run_reads(data: bytes, mode: str, batch_reads: int, folder: Path) -> None:
    """Read a mutated read file to its end: alone, counted, interleaved or as mate 1 of a pair."""
    path = folder / "mutated.reads"
    path.write_bytes(data)

    def run() -> None:
        if mode == "stats":
            read_stats(path)
        elif mode == "interleaved":
            list(iter_read_batches(path, interleaved=True, batch_reads=batch_reads))
        elif mode == "pair":
            list(iter_read_batches(path, path, batch_reads=batch_reads))
        else:
            list(iter_read_batches(path, batch_reads=batch_reads))

    _guarded(run, ReadsError)


def run_reads_ops(seed: tuple[str, bytes], ops: list[Op], folder: Path) -> None:
    _, mode, batch_reads = ops[0]
    run_reads(mutate_reads(seed, ops), mode, batch_reads, folder)
