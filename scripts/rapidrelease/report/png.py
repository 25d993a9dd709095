"""PNG images written with the standard library, for pictures a report embeds in itself.

PNG (ISO/IEC 15948, W3C PNG 2nd ed.): the 8-byte signature, then IHDR, one IDAT holding the zlib
stream of the scanlines (each prefixed by filter type 0, None) and IEND; every chunk ends with the
CRC-32 of its type and data (§5.3).
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

__all__ = ["png_bytes", "png_data_uri"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bytes(rgba: np.ndarray) -> bytes:
    """An image as PNG: ``rgba`` is uint8 of shape (rows, columns, 4), the first row the top one,
    straight (not premultiplied) alpha. Written as 8-bit RGBA (colour type 6)."""
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4 or 0 in rgba.shape[:2]:
        raise ValueError(
            f"png_bytes takes a non-empty uint8 array of shape (rows, columns, 4), not {rgba.shape}"
        )
    rows, columns = rgba.shape[:2]
    scanlines = np.concatenate([np.zeros((rows, 1), dtype=np.uint8), rgba.reshape(rows, columns * 4)], axis=1)
    header = struct.pack(
        ">IIBBBBB", columns, rows, 8, 6, 0, 0, 0
    )  # 8 bits, RGBA, deflate, filter 0, no interlace
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 9))
        + _chunk(b"IEND", b"")
    )


def png_data_uri(rgba: np.ndarray) -> str:
    """``rgba`` (see :func:`png_bytes`) as a ``data:image/png;base64,…`` URI, for a page to hold
    inside itself."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgba)).decode("ascii")
