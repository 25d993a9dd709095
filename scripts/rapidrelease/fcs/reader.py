"""Reading list-mode FCS 2.0, 3.0, 3.1 and 3.2 files as instruments in the wild write them.

An FCS file holds one or more data sets, each a HEADER (FCS 3.1 §3.1: version and the byte offsets
of the other segments), a TEXT segment of keywords (§3.2), a DATA segment of events (§3.3) and
optionally an ANALYSIS segment (ignored here). :func:`read_fcs` parses the keywords of every data
set at once and reads events lazily, chunk by chunk, from disk.

Event values are bit-identical to ``flowio.FlowData(path).as_array(preprocess=True)`` (FlowKit's
"raw" events) for every file flowio reads: integers masked by $PnR, $PnE log-amplified values
converted to linear, values divided by $PnG (except the time channel), and the time channel
multiplied by $TIMESTEP, in flowio's order of operations.

Where files break the standard, the reader tolerates what has one defensible reading and records
one warning sentence per quirk; anything else raises :class:`FCSReadError` with one sentence naming
the file. Decisions:

- DATA offsets come from TEXT ($BEGINDATA/$ENDDATA) and the HEADER, which disagree in real files.
  The expected DATA length is $TOT × bytes per event. Candidates are tried in order — TEXT then
  HEADER for FCS 3.x, HEADER then TEXT for FCS 2.0 (whose standard defines offsets in the HEADER
  only) — first for an exact length, then for an end offset one past the last byte (exclusive
  instead of inclusive), then for a span long enough for $TOT events, read from its start.
  A span that overlaps the TEXT segment or starts inside the HEADER is never used. When no
  candidate fits and the file is too short, the file is reported truncated, with the missing bytes.
- Several data sets ($NEXTDATA, offsets relative to the current data set, FCS 3.1 §3.2.18): with
  ``dataset=None`` the data set with the highest FCS version is read, the first one on ties.
  Beckman Coulter LMD files carry an FCS 2.0 data set of 10-bit binned values followed by an
  FCS 3.0 one at full resolution, which FlowJo and Kaluza analyse; this rule picks the latter.
  $NEXTDATA pointing backwards, past the end of the file or at no FCS HEADER is an error.
- $PnN/$PnS/… keywords of parameters beyond $PAR (left by software that dropped channels) are
  ignored with a warning. A missing $TOT is derived from the DATA length, a missing $MODE means
  list mode and a missing $PnN becomes ``P<n>``, each with a warning; a missing $PnE means linear
  (FCS 2.0 made it optional) and a missing $PnG means 1. Other required keywords ($PAR,
  $DATATYPE, $BYTEORD for binary data, $PnB, $PnR) must be present.
- $COMP (FCS 3.0) and $DFCiTOj (FCS 2.0) compensation keywords are not used: their orientation
  (spillover or its inverse, rows or columns) is not defined precisely enough to apply safely, and
  FCS 3.1 replaced them with $SPILLOVER. When present (and non-zero) a warning says so.
- Integer widths must be whole bytes (8 to 64 bits, any mix, e.g. 24-bit Cytek files); FCS 2.0
  bit-packed values (e.g. $PnB 10) have no defined bit order and are refused.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rapidrelease.errors import FCSReadError
from rapidrelease.fcs.acquisition import acquisition_interval
from rapidrelease.fcs.compensation import Spillover, parse_spillover
from rapidrelease.fcs.data_segment import DataLayout, ValueFormat, range_mask
from rapidrelease.fcs.text_segment import TextSegment, parse_text_segment, shown
from rapidrelease.outputs import sha256_file

__all__ = ["Channel", "FCSFile", "read_fcs", "describe_fcs"]

_HEADER_BYTES = 58
_SUPPORTED_VERSIONS = ("2.0", "3.0", "3.1", "3.2")
_MAX_DATASETS = 1000
_SPILLOVER_KEYWORDS = ("$SPILLOVER", "$SPILL", "SPILL", "SPILLOVER")
_PARAMETER_KEYWORD = re.compile(r"\$P(\d+)([A-Z]+)")
_DFC_KEYWORD = re.compile(r"\$DFC\d+TO\d+")
_SCATTER_OR_TIME_PREFIXES = ("fsc-", "ssc-", "time")
_REPLACEMENT_CHARACTER = "\ufffd".encode()
_TEXT_CONVERSION_PROBE_BYTES = 65536


@dataclass(frozen=True)
class Channel:
    """One parameter of a data set, from its $Pn* keywords (FCS 3.1 §3.2.18-19).

    ``range`` is $PnR (the exclusive upper bound of stored values, in channel units), ``gain`` the
    amplifier gain $PnG (1.0 if absent), ``log_decades``/``log_offset`` the two fields of $PnE (0, 0
    for linear); an offset of 0 with decades > 0 is read as 1.0, as the standard and flowio do.
    ``bits`` is $PnB, None for delimited ASCII (``*``).
    """

    number: int
    pnn: str
    pns: str
    bits: int | None
    range: float
    gain: float
    log_decades: float
    log_offset: float


@dataclass(frozen=True)
class _Header:
    version: str
    offsets: tuple[int | None, ...]  # TEXT start/end, DATA start/end, ANALYSIS start/end; None when blank


@dataclass(frozen=True)
class _DataSetText:
    base: int  # absolute byte offset of the data set's HEADER
    header: _Header
    text: TextSegment
    keywords: dict[str, str]
    warnings: tuple[str, ...]
    nextdata: int


@dataclass(frozen=True, eq=False)
class FCSFile:
    """One data set of one FCS file: its metadata, and its events read lazily from disk.

    ``sample_id`` is the file name (not $FIL); ``sha256`` hashes the whole file; ``keywords`` holds
    every primary and supplemental TEXT keyword upper-cased with its '$', values as written;
    ``warnings`` has one sentence per quirk tolerated; ``dataset_index`` is 0-based.
    """

    path: Path
    sample_id: str
    sha256: str
    size_bytes: int
    version: str
    datatype: str
    n_events: int
    channels: tuple[Channel, ...]
    keywords: dict[str, str] = field(repr=False)
    warnings: tuple[str, ...]
    dataset_index: int
    n_datasets: int
    _layout: DataLayout = field(repr=False)
    _data_start: int = field(repr=False)  # absolute offset of the first event
    _data_bytes: int = field(repr=False)
    _time_step: float | None = field(repr=False)
    _mtime_ns: int = field(repr=False)

    @property
    def pnn_labels(self) -> list[str]:
        """$PnN short names in parameter order."""
        return [c.pnn for c in self.channels]

    @property
    def pns_labels(self) -> list[str]:
        """$PnS long names in parameter order ('' where absent)."""
        return [c.pns for c in self.channels]

    @property
    def fluoro_indices(self) -> list[int]:
        """0-based indices of fluorescence channels: flowio/FlowKit's rule, $PnN not starting with
        ``fsc-``, ``ssc-`` or ``time`` (case-insensitive)."""
        return [i for i, c in enumerate(self.channels) if c.pnn.lower()[:4] not in _SCATTER_OR_TIME_PREFIXES]

    @property
    def time_index(self) -> int | None:
        """0-based index of the time channel ($PnN ``time``, any case; the last one, as flowio)."""
        found = None
        for i, c in enumerate(self.channels):
            if c.pnn.lower() == "time":
                found = i
        return found

    def events(self, start: int = 0, stop: int | None = None, preprocess: bool = True) -> np.ndarray:
        """Events ``start`` … ``stop - 1`` as float64 of shape (stop - start, n_channels), in event order.

        The array is column-major (each channel contiguous), the layout gating reads.

        With ``preprocess`` the values are those of ``flowio.FlowData.as_array(preprocess=True)``:
        $PnE log values converted to linear (FCS 3.1 §3.2.18 $PnE), divided by $PnG except on the
        time channel (§3.2.19), time multiplied by $TIMESTEP (seconds per time unit); without it,
        the stored values (integers already masked by $PnR). Raises FCSReadError when the file
        changed on disk since it was read or its DATA cannot be decoded.
        """
        stop = self.n_events if stop is None else stop
        if not 0 <= start <= stop <= self.n_events:
            raise ValueError(f"event range {start}:{stop} is outside 0:{self.n_events}")
        with self._open() as fh:
            values = self._layout.read(fh, self._data_start, self._data_bytes, start, stop - start)
        if preprocess:
            self._scale(values)
        return values

    def iter_event_chunks(self, chunk_size: int) -> Iterator[np.ndarray]:
        """Consecutive blocks of :meth:`events` (preprocessed) covering all events in order.

        Each block is float64 of shape (≤ chunk_size, n_channels); memory stays bounded by
        ``chunk_size`` for fixed-width data (delimited ASCII is parsed whole once). A data set
        with no events yields one block of shape (0, n_channels), so callers can always concatenate.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
        if self.n_events == 0 or self._layout.delimited:
            everything = self.events()
            for start in range(0, max(self.n_events, 1), chunk_size):
                yield everything[start : start + chunk_size].copy(order="F")
            return
        with self._open() as fh:
            for start in range(0, self.n_events, chunk_size):
                count = min(chunk_size, self.n_events - start)
                values = self._layout.read(fh, self._data_start, self._data_bytes, start, count)
                self._scale(values)
                yield values

    def spillover(self) -> Spillover | None:
        """The spillover matrix from $SPILLOVER, $SPILL, SPILL or SPILLOVER, or None.

        The first of these keywords that is present and neither blank nor ``0`` (which writers use
        for "none") is parsed. Raises FCSReadError when its text is malformed (see
        :func:`rapidrelease.fcs.compensation.parse_spillover`).
        """
        key = _spillover_keyword(self.keywords)
        if key is None:
            return None
        return parse_spillover(self.keywords[key], f"{self.sample_id} {key}")

    @contextmanager
    def _open(self) -> Iterator[BinaryIO]:
        try:
            stat = os.stat(self.path)
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below, after the size check
        except OSError as exc:
            raise FCSReadError(f"{self.sample_id}: cannot be opened again ({exc.strerror}).") from None
        with fh:
            if stat.st_size != self.size_bytes or stat.st_mtime_ns != self._mtime_ns:
                raise FCSReadError(f"{self.sample_id}: changed on disk since it was read; read it again.")
            try:
                yield fh
            except OSError as exc:
                raise FCSReadError(f"{self.sample_id}: cannot be read ({exc.strerror or exc}).") from None

    def _scale(self, values: np.ndarray) -> None:
        """Apply flowio's preprocessing in place, in flowio's order, so the float64 results match bit
        for bit (``flowio.FlowData.as_array``): time × $TIMESTEP, then per channel the $PnE decode
        ``10 ** (f1 * x / PnR) * f2`` and the division by $PnG (not for the time channel)."""
        time_index = self.time_index
        # Overflow to infinity can only come from a wrong $PnE, $PnR, $PnG or $TIMESTEP; checking the
        # floating-point flag does not change any result.
        with np.errstate(over="raise"):
            try:
                if self._time_step is not None and time_index is not None:
                    values[:, time_index] = values[:, time_index] * self._time_step
                for i, channel in enumerate(self.channels):
                    if channel.log_decades > 0:
                        values[:, i] = (
                            10 ** (channel.log_decades * values[:, i] / channel.range)
                        ) * channel.log_offset
                    gain = 1.0 if i == time_index else channel.gain
                    if gain != 1.0 and gain != 0:
                        values[:, i] = values[:, i] / gain
            except FloatingPointError:
                raise FCSReadError(
                    f"{self.sample_id}: scaling a channel by its $PnE, $PnG or $TIMESTEP overflows to "
                    "infinity, so one of those keywords is wrong."
                ) from None


def _fail(name: str, problem: str) -> FCSReadError:
    return FCSReadError(f"{name}: {problem}.")


def _read_exactly(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    return fh.read(length)


def _parse_header(raw: bytes, name: str, base: int) -> _Header:
    """FCS 3.1 §3.1: ``FCSx.y``, four spaces, then six right-aligned 8-character byte offsets."""
    where = "" if base == 0 else f" at byte {base}"
    if raw[:3] != b"FCS":
        if base == 0:
            raise _fail(name, "is not an FCS file (it does not start with 'FCS')")
        raise _fail(name, f"$NEXTDATA points to byte {base}, where no FCS data set starts")
    if len(raw) < _HEADER_BYTES:
        raise _fail(name, f"is truncated inside the HEADER{where} ({len(raw)} of {_HEADER_BYTES} bytes)")
    version = raw[3:6].decode("ascii", errors="replace")
    if version not in _SUPPORTED_VERSIONS:
        raise _fail(
            name,
            f"has FCS version '{shown(version)}'{where}, which is not supported (2.0, 3.0, 3.1, 3.2 are)",
        )
    labels = ("TEXT start", "TEXT end", "DATA start", "DATA end", "ANALYSIS start", "ANALYSIS end")
    offsets: list[int | None] = []
    for k, label in enumerate(labels):
        text = raw[10 + 8 * k : 18 + 8 * k].decode("ascii", errors="replace").strip()
        if not text:
            offsets.append(None)
        elif text.isdigit():
            offsets.append(int(text))
        elif k >= 4:
            # flowio ignores an unreadable ANALYSIS offset too; ANALYSIS is not read here.
            offsets.append(None)
        else:
            raise _fail(name, f"HEADER{where} gives the {label} offset as '{shown(text)}', not a number")
    return _Header(version=version, offsets=tuple(offsets))


def _read_data_set_text(fh: BinaryIO, base: int, size: int, name: str) -> _DataSetText:
    header = _parse_header(_read_exactly(fh, base, _HEADER_BYTES), name, base)
    where = "" if base == 0 else f" of the data set at byte {base}"
    text_start, text_end = header.offsets[0], header.offsets[1]
    if text_start is None or text_end is None or text_start < _HEADER_BYTES or text_end < text_start:
        raise _fail(name, f"HEADER{where} gives no valid TEXT segment (bytes {text_start}–{text_end})")
    if base + text_end >= size:
        raise _fail(
            name,
            f"is truncated inside the TEXT segment{where} (TEXT ends at byte {base + text_end}, "
            f"the file has {size} bytes)",
        )
    text = parse_text_segment(_read_exactly(fh, base + text_start, text_end - text_start + 1))
    keywords = dict(text.keywords)
    warnings = list(text.warnings)
    if text.encoding != "utf-8" and header.version >= "3.1":
        warnings.append("TEXT is not valid UTF-8 (FCS 3.1 §3.2) and was read as Latin-1.")

    stext_start = _optional_int(keywords, "$BEGINSTEXT", name)
    stext_end = _optional_int(keywords, "$ENDSTEXT", name)
    if stext_start and stext_end and (stext_start, stext_end) != (text_start, text_end):
        if stext_end < stext_start or stext_start < _HEADER_BYTES:
            raise _fail(
                name,
                f"$BEGINSTEXT/$ENDSTEXT give no valid supplemental TEXT (bytes {stext_start}–{stext_end})",
            )
        if base + stext_end >= size:
            raise _fail(
                name,
                f"is truncated inside the supplemental TEXT segment (it ends at byte {base + stext_end}, "
                f"the file has {size} bytes)",
            )
        supplemental = parse_text_segment(
            _read_exactly(fh, base + stext_start, stext_end - stext_start + 1), delimiter=text.delimiter
        )
        warnings.extend(supplemental.warnings)
        conflicts = sorted(k for k, v in supplemental.keywords.items() if k in keywords and keywords[k] != v)
        for key, value in supplemental.keywords.items():
            keywords.setdefault(key, value)
        if conflicts:
            warnings.append(
                f"supplemental TEXT repeats {shown(', '.join(conflicts), 80)} with other values; "
                "the primary TEXT wins."
            )
    nextdata = _optional_int(keywords, "$NEXTDATA", name) or 0
    return _DataSetText(
        base=base, header=header, text=text, keywords=keywords, warnings=tuple(warnings), nextdata=nextdata
    )


def _scan_data_sets(fh: BinaryIO, size: int, name: str) -> list[_DataSetText]:
    """Read HEADER and TEXT of every data set along the $NEXTDATA chain (relative offsets)."""
    data_sets = [_read_data_set_text(fh, 0, size, name)]
    while data_sets[-1].nextdata != 0:
        current = data_sets[-1]
        following = current.base + current.nextdata
        if current.nextdata < 0:
            # Offsets may only move forward; this is also what rules out loops.
            raise _fail(name, f"$NEXTDATA of data set {len(data_sets)} is negative ({current.nextdata})")
        if following + _HEADER_BYTES > size:
            raise _fail(
                name,
                f"is truncated: $NEXTDATA of data set {len(data_sets)} points to byte {following} "
                f"but the file has {size} bytes",
            )
        if len(data_sets) >= _MAX_DATASETS:
            raise _fail(name, f"chains more than {_MAX_DATASETS} data sets through $NEXTDATA")
        data_sets.append(_read_data_set_text(fh, following, size, name))
    return data_sets


def _optional_int(keywords: dict[str, str], key: str, name: str) -> int | None:
    raw = keywords.get(key)
    if raw is None or not raw.strip():
        return None
    try:
        return int(raw.strip())
    except ValueError:
        raise _fail(name, f"{key} is '{shown(raw, 40)}', not a whole number") from None


def _required(keywords: dict[str, str], key: str, name: str) -> str:
    raw = keywords.get(key)
    if raw is None or not raw.strip():
        raise _fail(name, f"required keyword {key} is missing")
    return raw


def _number(raw: str, key: str, name: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _fail(name, f"{key} is '{shown(raw, 40)}', not a finite number")
    return value


def _byte_order(raw: str, name: str) -> bool:
    """True for big-endian. FCS 3.1 §3.2.18 $BYTEORD: ``1,2,3,4`` little-endian, ``4,3,2,1`` big."""
    try:
        order = [int(part) for part in raw.replace(" ", "").split(",")]
    except ValueError:
        order = []
    if order and order == list(range(1, len(order) + 1)):
        return False
    if order and order == list(range(len(order), 0, -1)):
        return True
    raise _fail(
        name, f"$BYTEORD '{shown(raw, 40)}' is neither little-endian (1,2,3,4) nor big-endian (4,3,2,1)"
    )


def _channels(keywords: dict[str, str], par: int, name: str, warnings: list[str]) -> tuple[Channel, ...]:
    channels = []
    unnamed = []
    for n in range(1, par + 1):
        pnn = keywords.get(f"$P{n}N")
        if pnn is None:
            pnn = f"P{n}"
            unnamed.append(n)
        bits_raw = _required(keywords, f"$P{n}B", name).strip()
        bits = None if bits_raw == "*" else _optional_int(keywords, f"$P{n}B", name)
        pnr = _number(_required(keywords, f"$P{n}R", name), f"$P{n}R", name)
        pne = keywords.get(f"$P{n}E")
        decades, offset = 0.0, 0.0
        if pne is not None:
            parts = pne.split(",")
            if len(parts) != 2:
                raise _fail(name, f"$P{n}E is '{shown(pne, 40)}', not two numbers f1,f2")
            decades = _number(parts[0], f"$P{n}E", name)
            offset = _number(parts[1], f"$P{n}E", name)
            if offset == 0 and decades != 0:
                offset = 1.0  # FCS 3.1 §3.2.18 $PnE: a zero f2 with f1 > 0 is read as 1 (flowio does too)
            if decades > 0 and pnr == 0:
                raise _fail(name, f"$P{n}E is logarithmic but $P{n}R is 0")
        gain_raw = keywords.get(f"$P{n}G")
        gain = 1.0 if gain_raw is None else _number(gain_raw, f"$P{n}G", name)
        channels.append(
            Channel(
                number=n,
                pnn=pnn,
                pns=keywords.get(f"$P{n}S", ""),
                bits=bits,
                range=pnr,
                gain=gain,
                log_decades=decades,
                log_offset=offset,
            )
        )
    if unnamed:
        warnings.append(f"$PnN is missing for parameter(s) {_numbers(unnamed)}; they are named P<n>.")
    return tuple(channels)


def _numbers(values: list[int]) -> str:
    listed = ", ".join(str(v) for v in values[:8])
    return listed + (" …" if len(values) > 8 else "")


def _layout(
    keywords: dict[str, str], datatype: str, channels: tuple[Channel, ...], name: str, warnings: list[str]
) -> DataLayout:
    formats: list[ValueFormat] = []
    odd_float_bits = []
    for channel in channels:
        n = channel.number
        kind = datatype
        if datatype != "A" and f"$P{n}DATATYPE" in keywords:
            # FCS 3.2 lets one parameter differ from $DATATYPE.
            kind = keywords[f"$P{n}DATATYPE"].strip().upper()
            if kind not in ("I", "F", "D"):
                raise _fail(name, f"$P{n}DATATYPE is '{shown(kind, 10)}', not I, F or D")
        if kind == "A":
            if channel.bits is None:
                formats.append(ValueFormat("a", 0))
            elif channel.bits >= 1:
                formats.append(ValueFormat("a", channel.bits))
            else:
                raise _fail(name, f"$P{n}B is {channel.bits}; ASCII values need at least 1 character")
            continue
        if channel.bits is None:
            raise _fail(name, f"$P{n}B is '*', which only ASCII ($DATATYPE A) data may use")
        if kind == "I":
            if channel.bits % 8 or not 8 <= channel.bits <= 64:
                raise _fail(
                    name,
                    f"$P{n}B is {channel.bits}; only whole-byte integers of 8 to 64 bits are read "
                    "(bit-packed FCS 2.0 values have no defined bit order)",
                )
            if channel.range < 1:
                raise _fail(
                    name, f"$P{n}R is {channel.range:g}; integer parameters need a range of at least 1"
                )
            formats.append(ValueFormat("u", channel.bits // 8, range_mask(channel.range, channel.bits)))
        else:
            width = 4 if kind == "F" else 8
            if channel.bits != 8 * width:
                odd_float_bits.append(n)
            formats.append(ValueFormat("f", width))
    kinds = {f.kind for f in formats}
    if "a" in kinds:
        delimited = {f.width == 0 for f in formats}
        if len(delimited) > 1:
            raise _fail(name, "mixes delimited ('*') and fixed-width $PnB in ASCII data")
    elif odd_float_bits:
        warnings.append(
            f"$PnB of float parameter(s) {_numbers(odd_float_bits)} does not match $DATATYPE; "
            "values were read as 32-bit (F) or 64-bit (D) floats, as flowio reads them."
        )
    big_endian = False
    if "a" not in kinds and any(f.width > 1 for f in formats):
        big_endian = _byte_order(_required(keywords, "$BYTEORD", name), name)
    return DataLayout(formats=tuple(formats), big_endian=big_endian, source=name)


def _data_candidates(ds: _DataSetText, name: str) -> list[tuple[str, int, int]]:
    header_span = ("HEADER", ds.header.offsets[2], ds.header.offsets[3])
    text_span = (
        "TEXT",
        _optional_int(ds.keywords, "$BEGINDATA", name),
        _optional_int(ds.keywords, "$ENDDATA", name),
    )
    ordered = [header_span, text_span] if ds.header.version == "2.0" else [text_span, header_span]
    candidates = []
    for label, start, end in ordered:
        # 0/0 (or blank) in the HEADER is the FCS 3.0+ convention for offsets beyond 99,999,999.
        if start is None or end is None or (start == 0 and end == 0):
            continue
        candidates.append((label, start, end))
    return candidates


def _locate_data(
    ds: _DataSetText, name: str, size: int, expected: int, record: int, n_events: int, warnings: list[str]
) -> tuple[int, int]:
    """Choose where DATA starts; returns (absolute start, segment length in bytes)."""
    candidates = _data_candidates(ds, name)
    text_first = ds.base + ds.header.offsets[0]
    text_last = ds.base + ds.header.offsets[1]
    valid = []
    for label, start, end in candidates:
        first, last = ds.base + start, ds.base + end
        inside_header = start < _HEADER_BYTES
        overlaps_text = first <= text_last and last >= text_first
        if not inside_header and not overlaps_text and end >= start - 1:
            valid.append((label, start, end))
    if expected == 0:
        start = valid[0][1] if valid else (candidates[0][1] if candidates else 0)
        return ds.base + start, 0
    if not valid:
        if not candidates:
            raise _fail(name, "gives no DATA offsets in either the HEADER or TEXT ($BEGINDATA/$ENDDATA)")
        listed = "; ".join(f"{label} {s}–{e}" for label, s, e in candidates)
        raise _fail(name, f"gives DATA offsets that overlap the HEADER or TEXT segment ({listed})")

    def describe(label: str, start: int, end: int) -> str:
        return f"{label} bytes {ds.base + start}–{ds.base + end}"

    def note_discrepancy(chosen: tuple[str, int, int], reason: str) -> None:
        others = [c for c in candidates if c[0] != chosen[0] and (c[1], c[2]) != (chosen[1], chosen[2])]
        if others:
            warnings.append(
                f"the HEADER and TEXT disagree on where DATA lies ({describe(*others[0])}, "
                f"{describe(*chosen)}); {chosen[0]}'s offsets were used because {reason}."
            )

    exact_reason = f"their length matches $TOT={n_events} events of {record} bytes"
    for label, start, end in valid:
        if end - start + 1 == expected and ds.base + end < size:
            note_discrepancy((label, start, end), exact_reason)
            return ds.base + start, expected
    for label, start, end in valid:
        if end - start + 1 == expected + 1 and ds.base + start + expected <= size:
            warnings.append(
                f"the DATA end offset ({label} {ds.base + end}) is one past the last byte (exclusive, not "
                f"inclusive as FCS requires); {expected} bytes = $TOT={n_events} events were read."
            )
            note_discrepancy((label, start, end), "their length is off by one byte only")
            return ds.base + start, expected
    for label, start, end in valid:
        if end - start + 1 > expected and ds.base + start + expected <= size:
            warnings.append(
                f"DATA ({describe(label, start, end)}) spans {end - start + 1} bytes, more than "
                f"$TOT={n_events} events of {record} bytes need; the first {expected} bytes were read."
            )
            note_discrepancy((label, start, end), "they hold all $TOT events")
            return ds.base + start, expected
    label, start, end = valid[0]
    missing = ds.base + start + expected - size
    if missing > 0:
        raise _fail(
            name,
            f"is truncated: DATA needs {expected} bytes from byte {ds.base + start} for $TOT={n_events} "
            f"events but the file ends {missing} bytes short",
        )
    raise _fail(
        name,
        f"gives DATA offsets ({describe(label, start, end)}) spanning {end - start + 1} bytes, fewer than "
        f"the {expected} bytes that $TOT={n_events} events of {record} bytes need",
    )


def _check_not_text_converted(fh: BinaryIO, name: str, data_start: int, data_bytes: int) -> None:
    """Refuse DATA that was once decoded and saved as UTF-8 text (e.g. by editing the file's keywords
    in a text editor): every byte that was not valid UTF-8 became the replacement character
    U+FFFD (bytes EF BF BD), so the original event values are lost although the offsets still fit.
    Real measurements almost never contain that 3-byte sequence, let alone as 10% of their bytes."""
    sample = _read_exactly(fh, data_start, min(data_bytes, _TEXT_CONVERSION_PROBE_BYTES))
    count = sample.count(_REPLACEMENT_CHARACTER)
    if count >= 4 and 3 * count * 10 >= len(sample):
        raise _fail(
            name,
            f"has corrupt DATA: {count} UTF-8 replacement characters (EF BF BD) fill {3 * count} of its "
            f"first {len(sample)} bytes, so the file was once saved as text and its event values are lost",
        )


def _derive_event_count(ds: _DataSetText, name: str, size: int, record: int, warnings: list[str]) -> int:
    """FCS 2.0 may omit $TOT: the event count is the DATA length over the bytes per event."""
    for _label, start, end in _data_candidates(ds, name):
        span = end - start + 1
        if start >= _HEADER_BYTES and ds.base + end < size and span >= 0 and span % record == 0:
            warnings.append(f"$TOT is missing; {span // record} events were derived from the DATA length.")
            return span // record
    raise _fail(
        name, f"has no $TOT and no DATA segment whose length is a whole number of {record}-byte events"
    )


def _time_step(keywords: dict[str, str], has_time: bool, warnings: list[str]) -> float | None:
    """$TIMESTEP (seconds per time-channel unit) as flowio applies it; None when it changes nothing."""
    raw = keywords.get("$TIMESTEP")
    if raw is None or not has_time:
        return None
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        # float() also reads 'nan' and 'inf', which would silently turn every time value into NaN
        warnings.append(
            f"$TIMESTEP is '{shown(raw, 40)}', not a finite number; the time channel was left unscaled."
        )
        return None
    return value


def _keyword_warnings(
    ds: _DataSetText, name: str, par: int, channels: tuple[Channel, ...], warnings: list[str]
) -> None:
    stale: dict[int, list[str]] = {}
    for key in ds.keywords:
        m = _PARAMETER_KEYWORD.fullmatch(key)
        if m and int(m[1]) > par:
            stale.setdefault(int(m[1]), []).append(key)
    if stale:
        highest = max(stale)
        example = f"$P{highest}N" if f"$P{highest}N" in stale[highest] else stale[highest][0]
        warnings.append(
            f"keywords of parameter(s) {_numbers(sorted(stale))} beyond $PAR={par} (e.g. {example}) "
            "describe channels the DATA does not hold and were ignored."
        )
    fil = ds.keywords.get("$FIL")
    if fil is not None and fil.strip() and re.split(r"[\\/]", fil.strip())[-1] != name:
        warnings.append(f"$FIL is '{shown(fil.strip(), 80)}', not the file name '{name}'.")
    if "$COMP" in ds.keywords:
        warnings.append(
            "$COMP (FCS 3.0 compensation matrix) is present but not used; its orientation is not defined "
            "precisely enough to apply, and FCS 3.1 replaced it with $SPILLOVER."
        )
    dfc = [k for k in ds.keywords if _DFC_KEYWORD.fullmatch(k)]
    if any(_is_nonzero(ds.keywords[k]) for k in dfc):
        warnings.append(
            "FCS 2.0 $DFCiTOj compensation keywords are present but not used; only $SPILLOVER-style "
            "matrices are read."
        )
    key = _spillover_keyword(ds.keywords)
    if key is not None:
        try:
            spill = parse_spillover(ds.keywords[key], key)
        except FCSReadError as exc:
            warnings.append(f"{str(exc).rstrip('.')}; no spillover matrix is available.")
        else:
            labels = {c.pnn for c in channels}
            unknown = [d for d in spill.detectors if d not in labels]
            if unknown:
                warnings.append(
                    f"{key} names detector(s) {shown(', '.join(unknown), 80)} "
                    "that are not channels ($PnN) of this data set."
                )


def _spillover_keyword(keywords: dict[str, str]) -> str | None:
    for key in _SPILLOVER_KEYWORDS:
        if key in keywords and keywords[key].strip() not in ("", "0"):
            return key
    return None


def _is_nonzero(text: str) -> bool:
    try:
        return float(text) != 0
    except ValueError:
        return bool(text.strip())


def _build(
    fh: BinaryIO,
    path: Path,
    name: str,
    stat: os.stat_result,
    data_sets: list[_DataSetText],
    index: int,
    chosen_by_default: bool,
) -> FCSFile:
    ds = data_sets[index]
    size = stat.st_size
    kw = ds.keywords
    warnings = list(ds.warnings)
    if len(data_sets) > 1:
        summary = ", ".join(f"FCS {d.header.version} at byte {d.base}" for d in data_sets)
        reason = "the highest FCS version" if chosen_by_default else "as requested"
        warnings.append(
            f"the file holds {len(data_sets)} data sets ({summary}); data set {index + 1} of "
            f"{len(data_sets)} (FCS {ds.header.version}) was read, {reason}."
        )
    mode = kw.get("$MODE")
    if mode is None or not mode.strip():
        if ds.header.version < "3.2":
            warnings.append("$MODE is missing; list mode (L) was assumed.")
    elif mode.strip().upper() != "L":
        raise _fail(name, f"stores $MODE {shown(mode.strip(), 10)} data; only list mode (L) is read")
    datatype = _required(kw, "$DATATYPE", name).strip().upper()
    if datatype not in ("I", "F", "D", "A"):
        raise _fail(name, f"$DATATYPE is '{shown(datatype, 10)}', not I, F, D or A")
    par = _optional_int(kw, "$PAR", name)
    if par is None:
        raise _fail(name, "required keyword $PAR is missing")
    if not 1 <= par <= len(kw):
        # Every parameter needs at least $PnB and $PnR, so a larger $PAR cannot be right.
        raise _fail(name, f"$PAR is {par}, impossible for a TEXT segment with {len(kw)} keywords")
    channels = _channels(kw, par, name, warnings)
    layout = _layout(kw, datatype, channels, name, warnings)

    n_events = _optional_int(kw, "$TOT", name)
    if n_events is not None and n_events < 0:
        raise _fail(name, f"$TOT is {n_events}")
    if layout.delimited:
        data_start, data_bytes, n_events = _locate_delimited(fh, ds, name, size, n_events, layout, warnings)
    else:
        record = layout.record_bytes
        if n_events is None:
            n_events = _derive_event_count(ds, name, size, record, warnings)
        data_start, data_bytes = _locate_data(ds, name, size, n_events * record, record, n_events, warnings)

    _check_not_text_converted(fh, name, data_start, data_bytes)
    _keyword_warnings(ds, name, par, channels, warnings)
    has_time = any(c.pnn.lower() == "time" for c in channels)
    time_step = _time_step(kw, has_time, warnings)
    return FCSFile(
        path=path,
        sample_id=name,
        sha256=_sha256_unchanged(path, stat, name),
        size_bytes=size,
        version=ds.header.version,
        datatype=datatype,
        n_events=n_events,
        channels=channels,
        keywords=kw,
        warnings=tuple(warnings),
        dataset_index=index,
        n_datasets=len(data_sets),
        _layout=layout,
        _data_start=data_start,
        _data_bytes=data_bytes,
        _time_step=time_step,
        _mtime_ns=stat.st_mtime_ns,
    )


def _sha256_unchanged(path: Path, stat: os.stat_result, name: str) -> str:
    """SHA-256 of the file, refusing a file that changed while it was being read (the hash must
    describe the bytes the keywords came from)."""
    digest = sha256_file(path)
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
        raise _fail(name, "changed on disk while it was being read")
    return digest


def _locate_delimited(
    fh: BinaryIO,
    ds: _DataSetText,
    name: str,
    size: int,
    n_events: int | None,
    layout: DataLayout,
    warnings: list[str],
) -> tuple[int, int, int]:
    """Delimited ASCII has no fixed record length: take the first usable span and count its values."""
    for _label, start, end in _data_candidates(ds, name):
        if start < _HEADER_BYTES or end < start:
            continue
        if ds.base + end >= size:
            raise _fail(
                name, f"is truncated: ASCII DATA ends at byte {ds.base + end} but the file has {size} bytes"
            )
        found = len(layout.parse_delimited(_read_exactly(fh, ds.base + start, end - start + 1)))
        if n_events is None:
            warnings.append(f"$TOT is missing; {found} events were counted in the ASCII DATA.")
            n_events = found
        elif found < n_events:
            raise _fail(
                name, f"is truncated: its ASCII DATA holds {found} events, fewer than $TOT={n_events}"
            )
        elif found > n_events:
            warnings.append(
                f"the ASCII DATA holds {found} events, more than $TOT={n_events}; "
                f"the first {n_events} were read."
            )
        return ds.base + start, end - start + 1, n_events
    raise _fail(name, "gives no usable DATA offsets for its ASCII data")


def read_fcs(path: Path | str, dataset: int | None = None) -> FCSFile:
    """Read the keywords of an FCS file and prepare lazy access to one data set's events.

    ``dataset`` is the 0-based data set to read; None picks the one with the highest FCS version
    (the first on ties; see the module docstring). Raises FCSReadError with one sentence
    ``"<file name>: <problem>."`` for a missing, empty, truncated, corrupt or non-FCS file.
    """
    path = Path(path)
    name = path.name
    try:
        stat = os.stat(path)
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with-block below
    except FileNotFoundError:
        raise _fail(name, f"does not exist ({path})") from None
    except OSError as exc:
        raise _fail(name, f"cannot be opened ({exc.strerror})") from None
    with fh:
        size = stat.st_size
        if size == 0:
            raise _fail(name, "is empty (0 bytes)")
        try:
            data_sets = _scan_data_sets(fh, size, name)
            if dataset is not None and not 0 <= dataset < len(data_sets):
                raise _fail(
                    name, f"holds {len(data_sets)} data set(s), so data set index {dataset} does not exist"
                )
            if dataset is None:
                versions = [d.header.version for d in data_sets]
                index = versions.index(max(versions))
            else:
                index = dataset
            fcs = _build(fh, path, name, stat, data_sets, index, dataset is None)
        except OSError as exc:
            raise _fail(name, f"cannot be read ({exc.strerror or exc})") from None
        except (ValueError, OverflowError, IndexError, KeyError, UnicodeError, MemoryError) as exc:
            # A safety net for input no rule above anticipated: still one sentence, never a traceback.
            raise _fail(name, f"is malformed and cannot be read ({type(exc).__name__}: {exc})") from exc
    return fcs


def describe_fcs(fcs: FCSFile) -> dict[str, Any]:
    """The JSON object ``rapidrelease fcs-info`` prints for one file, keys in a fixed order.

    ``acquisition.start``/``end`` are ISO 8601 date-times of the instrument's clock (see
    :func:`rapidrelease.fcs.acquisition.acquisition_interval`), null when unparseable;
    ``spillover`` lists its detectors, null when absent or malformed (a warning then says why).
    """
    kw = fcs.keywords
    start, end = acquisition_interval(kw)
    try:
        spill = fcs.spillover()
    except FCSReadError:
        spill = None
    return {
        "file": str(fcs.path),
        "sample_id": fcs.sample_id,
        "sha256": fcs.sha256,
        "size_bytes": fcs.size_bytes,
        "fcs_version": fcs.version,
        "datatype": fcs.datatype,
        "n_events": fcs.n_events,
        "n_datasets": fcs.n_datasets,
        "dataset": fcs.dataset_index,
        "cytometer": kw.get("$CYT"),
        "fil": kw.get("$FIL"),
        "acquisition": {
            "date": kw.get("$DATE"),
            "btim": kw.get("$BTIM"),
            "etim": kw.get("$ETIM"),
            "start": start.isoformat() if start is not None else None,
            "end": end.isoformat() if end is not None else None,
        },
        "spillover": None if spill is None else {"detectors": list(spill.detectors)},
        "channels": [
            {"n": c.number, "pnn": c.pnn, "pns": c.pns, "bits": c.bits, "range": c.range}
            for c in fcs.channels
        ],
        "warnings": list(fcs.warnings),
    }
