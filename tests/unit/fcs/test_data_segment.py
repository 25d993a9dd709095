"""DATA record decoding: $PnR bit masks, odd integer widths, byte orders and delimited ASCII."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rapidrelease.errors import FCSReadError
from rapidrelease.fcs.data_segment import DataLayout, ValueFormat, range_mask


@pytest.mark.parametrize(
    ("pnr", "bits", "mask"),
    [
        (1024, 16, 1023),  # 10-bit ADC values in 16-bit words
        (1000, 16, 1023),  # not a power of two: the next one is used
        (262144, 24, 262143),
        (65536, 16, None),  # the whole field
        (2**31 - 1, 32, 2**31 - 1),  # cyflow's TIME channel
        (255, 8, None),
        (1048576, 32, 2**20 - 1),  # Beckman Coulter LMD FCS 3.0 data set
        (2**40, 32, None),  # wider than the field: nothing to mask
    ],
)
def test_range_mask_keeps_the_bits_below_pnr(pnr, bits, mask):
    assert range_mask(pnr, bits) == mask


def _read(tmp_path: Path, layout: DataLayout, content: bytes, count: int) -> np.ndarray:
    path = tmp_path / "data.bin"
    path.write_bytes(b"HEAD" + content)
    with open(path, "rb") as fh:
        return layout.read(fh, 4, len(content), 0, count)


@pytest.mark.parametrize(
    ("big_endian", "expected"), [(True, [0x010203, 0x0405060708]), (False, [0x030201, 0x0807060504])]
)
def test_three_and_five_byte_integers_in_both_byte_orders(tmp_path, big_endian, expected):
    layout = DataLayout((ValueFormat("u", 3), ValueFormat("u", 5)), big_endian=big_endian, source="x.fcs")
    values = _read(tmp_path, layout, bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 2, 2)
    assert values.tolist() == [expected, expected]


def test_masks_apply_per_parameter(tmp_path):
    layout = DataLayout((ValueFormat("u", 2, 1023), ValueFormat("u", 2)), big_endian=True, source="x.fcs")
    values = _read(tmp_path, layout, bytes([0xFF, 0xFF, 0xFF, 0xFF]), 1)
    assert values.tolist() == [[1023, 65535]]


def test_reading_past_the_end_is_an_fcs_error(tmp_path):
    layout = DataLayout((ValueFormat("f", 4),), big_endian=False, source="short.fcs")
    with pytest.raises(FCSReadError, match=r"^short\.fcs: DATA ended early while reading from event 1 "):
        _read(tmp_path, layout, b"\0" * 6, 2)


def test_delimited_ascii_values_and_a_count_that_does_not_fit(tmp_path):
    layout = DataLayout((ValueFormat("a", 0), ValueFormat("a", 0)), big_endian=False, source="a.fcs")
    assert layout.parse_delimited(b"1 2,3\t4\r\n5.5 ,6\n").tolist() == [[1, 2], [3, 4], [5.5, 6]]
    with pytest.raises(FCSReadError, match=r"^a\.fcs: ASCII DATA holds 3 values, not a multiple of the 2"):
        layout.parse_delimited(b"1 2 3")
