"""Images a report holds inside itself: PNG written with the standard library, read back by the spec."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pytest

from rapidrelease.report.png import png_bytes, png_data_uri


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def test_an_rgba_image_reads_back_pixel_for_pixel() -> None:
    rgba = np.random.default_rng(7).integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    data = png_bytes(rgba)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks = _chunks(data)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (3, 5, 8, 6, 0, 0, 0)  # 3 wide, 5 high, RGBA 8-bit
    rows = np.frombuffer(zlib.decompress(chunks[1][1]), dtype=np.uint8).reshape(5, 1 + 3 * 4)
    assert (rows[:, 0] == 0).all()  # filter type None on every scanline
    assert np.array_equal(rows[:, 1:].reshape(5, 3, 4), rgba)
    uri = png_data_uri(rgba)
    assert uri.startswith("data:image/png;base64,") and base64.b64decode(uri.split(",", 1)[1]) == data


def test_an_image_that_is_not_rgba_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        png_bytes(np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        png_bytes(np.zeros((4, 4, 4), dtype=np.float64))
