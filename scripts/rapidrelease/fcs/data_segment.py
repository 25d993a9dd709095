"""Decoding the DATA segment of a list-mode FCS data set into float64 event values, chunk by chunk.

FCS 3.1 §3.3: events are stored one after another, each event holding one value per parameter in
parameter order. Binary values ($DATATYPE I, F, D; FCS 3.2 $PnDATATYPE per parameter) take $PnB
bits, in the byte order of $BYTEORD; ASCII values ($DATATYPE A) take $PnB characters, or, when
every $PnB is ``*``, are separated by white space or commas. Integers keep only the bits below
$PnR (FCS 3.1 §3.2.18 $PnR: when $PnR is not a power of two the next power of two is used), the
rule flowio applies. Decoding is vectorised NumPy over a structured record dtype: no Python loop
runs per event, and a fixed-width chunk is read with one ``np.fromfile`` call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import BinaryIO, Literal

import numpy as np

from rapidrelease.errors import FCSReadError
from rapidrelease.fcs.text_segment import shown

__all__ = ["ValueFormat", "DataLayout", "range_mask"]

_NATIVE_INTEGER_BYTES = (1, 2, 4, 8)
_ASCII_SEPARATORS = re.compile(rb"[\s,]+")


def range_mask(pnr: float, width_bits: int) -> int | None:
    """The bit mask flowio applies to an integer parameter, or None when it changes nothing.

    FCS 3.1 §3.2.18 $PnR: the stored integer uses only the bits below the next power of two of
    $PnR. flowio (``FlowData.__parse_int_data``) keeps ``value & (next_pow2(int(PnR)) - 1)`` when
    that power of two is narrower than the field; a wider or equal one leaves the value unchanged.
    """
    limit = int(pnr)
    power = 1 if limit <= 0 else 1 << (limit - 1).bit_length()
    return power - 1 if power < (1 << width_bits) else None


@dataclass(frozen=True)
class ValueFormat:
    """How one parameter's value is stored in an event record.

    ``kind`` is ``"u"`` (unsigned integer), ``"f"`` (IEEE 754 float) or ``"a"`` (ASCII decimal);
    ``width`` is in bytes (binary) or characters (fixed-width ASCII), 0 for delimited ASCII;
    ``mask`` is the $PnR bit mask of an integer (see :func:`range_mask`), None when not needed.
    """

    kind: Literal["u", "f", "a"]
    width: int
    mask: int | None = None


@dataclass(frozen=True)
class DataLayout:
    """The record layout of one data set's DATA segment and how to decode it.

    ``formats`` has one entry per parameter (in $PnN order); ``big_endian`` comes from $BYTEORD
    (``4,3,2,1``/``2,1``); ``source`` (the file name) starts every error message.
    """

    formats: tuple[ValueFormat, ...]
    big_endian: bool
    source: str

    @property
    def delimited(self) -> bool:
        """True for ASCII data whose values are separated, not fixed-width ($PnB ``*``)."""
        return self.formats[0].kind == "a" and self.formats[0].width == 0

    @property
    def record_bytes(self) -> int:
        """Bytes per event for fixed-width data; 0 for delimited ASCII."""
        return sum(f.width for f in self.formats)

    @cached_property
    def _uniform_dtype(self) -> np.dtype | None:
        """One plain dtype for every value when all parameters share it, else None."""
        first = self.formats[0]
        if any((f.kind, f.width) != (first.kind, first.width) for f in self.formats):
            return None
        if (first.kind == "u" and first.width in _NATIVE_INTEGER_BYTES) or first.kind == "f":
            return np.dtype(f"{'>' if self.big_endian else '<'}{first.kind}{first.width}")
        return None

    @cached_property
    def record_dtype(self) -> np.dtype:
        """Structured dtype of one event record (fields ``p1`` … ``pn``), for fixed-width data."""
        order = ">" if self.big_endian else "<"
        fields: list[tuple] = []
        for n, f in enumerate(self.formats, start=1):
            if f.kind == "a":
                fields.append((f"p{n}", f"S{f.width}"))
            elif f.kind == "f" or f.width in _NATIVE_INTEGER_BYTES:
                fields.append((f"p{n}", f"{order}{f.kind}{f.width}"))
            else:
                # 3, 5, 6 or 7-byte integers have no NumPy type: keep their bytes and assemble below.
                fields.append((f"p{n}", "u1", (f.width,)))
        return np.dtype(fields)

    def read(
        self, fh: BinaryIO, segment_start: int, segment_bytes: int, start: int, count: int
    ) -> np.ndarray:
        """Read events ``start`` … ``start + count - 1`` as stored values.

        ``segment_start`` is the absolute byte offset of the first event, ``segment_bytes`` the
        length of the DATA segment (used for delimited ASCII only). Returns a float64 array of shape
        (count, n_parameters), column-major because gating reads whole channels: integers masked by
        $PnR, nothing else scaled.
        """
        n_par = len(self.formats)
        if count == 0:
            return np.empty((0, n_par), dtype=np.float64, order="F")
        if self.delimited:
            fh.seek(segment_start)
            return np.asfortranarray(self.parse_delimited(fh.read(segment_bytes))[start : start + count])
        fh.seek(segment_start + start * self.record_bytes)
        uniform = self._uniform_dtype
        if uniform is not None:
            flat = np.fromfile(fh, dtype=uniform, count=count * n_par)
            self._check_complete(flat.size, count * n_par, start)
            values = flat.reshape(count, n_par)
            masks = [f.mask for f in self.formats]
            if any(m is not None for m in masks):
                all_bits = np.iinfo(values.dtype).max
                values = values & np.array([all_bits if m is None else m for m in masks], dtype=values.dtype)
            return values.astype(np.float64, order="F")
        records = np.fromfile(fh, dtype=self.record_dtype, count=count)
        self._check_complete(records.size, count, start)
        return self._decode_records(records)

    def _check_complete(self, got: int, wanted: int, start: int) -> None:
        if got < wanted:
            raise FCSReadError(
                f"{self.source}: DATA ended early while reading from event {start + 1} "
                "(the file was truncated or changed on disk after it was opened)."
            )

    def _decode_records(self, records: np.ndarray) -> np.ndarray:
        out = np.empty((records.size, len(self.formats)), dtype=np.float64, order="F")
        for i, f in enumerate(self.formats):
            column = records[f"p{i + 1}"]
            if f.kind == "a":
                out[:, i] = self._ascii_to_float(column)
                continue
            if f.kind == "u" and f.width not in _NATIVE_INTEGER_BYTES:
                assembled = np.zeros(records.size, dtype=np.uint64)
                for k in range(f.width):
                    shift = 8 * (f.width - 1 - k) if self.big_endian else 8 * k
                    assembled |= column[:, k].astype(np.uint64) << np.uint64(shift)
                column = assembled
            if f.mask is not None:
                column = column & np.array(f.mask, dtype=column.dtype)
            out[:, i] = column
        return out

    def _ascii_to_float(self, values: np.ndarray) -> np.ndarray:
        try:
            return values.astype(np.float64)
        except ValueError:
            bad = next((v for v in values if not _is_number(v)), values[0])
            raise FCSReadError(
                f"{self.source}: ASCII DATA holds '{shown(bad.decode('latin-1'), 20)}', "
                "which is not a number."
            ) from None

    def parse_delimited(self, raw: bytes) -> np.ndarray:
        """Values of a delimited-ASCII DATA segment as float64 of shape (n_events, n_parameters).

        FCS 3.1 §3.3: values are separated by spaces, tabs, commas, carriage returns or line feeds.
        """
        items = [item for item in _ASCII_SEPARATORS.split(raw) if item]
        n_par = len(self.formats)
        if len(items) % n_par:
            raise FCSReadError(
                f"{self.source}: ASCII DATA holds {len(items)} values, not a multiple of the "
                f"{n_par} parameters."
            )
        values = self._ascii_to_float(np.array(items, dtype=bytes))
        return values.reshape(-1, n_par)


def _is_number(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
