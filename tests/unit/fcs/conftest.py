"""Fixtures for the FCS reader tests: the real FCS corpus and a byte-level FCS writer for edge cases.

Edge cases (byte orders, odd widths, broken offsets) are written into ``tmp_path`` at test time,
mostly by re-encoding the events of real files, so no binary fixture is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import fcsparser
import pytest

FCSPARSER_CYTOMETERS = Path(fcsparser.__file__).parent / "tests" / "data" / "FlowCytometers"

_OFFSET_DIGITS = 10


def fcs_bytes(
    keywords: dict[str, str],
    data: bytes,
    *,
    version: str = "3.1",
    delimiter: str = "/",
    header_data: tuple[int, int] | str = "auto",
    text_data: tuple[int, int] | str | None = "auto",
    trailer: bytes = b"",
) -> bytes:
    """One FCS data set: HEADER (58 bytes), TEXT from byte 58, DATA right after TEXT, then ``trailer``.

    ``header_data``/``text_data`` are the DATA offsets written in the HEADER and in
    $BEGINDATA/$ENDDATA: ``"auto"`` (correct, inclusive end), ``"blank"`` (HEADER only: spaces),
    an explicit (start, end) pair, or None for no $BEGINDATA/$ENDDATA (the FCS 2.0 default).
    Values are escaped by doubling the delimiter (FCS 3.1 §3.2.1).
    """
    if text_data == "auto" and version == "2.0":
        text_data = None
    text_keywords = dict(keywords)
    if text_data is not None:
        text_keywords["$BEGINDATA"] = "0" * _OFFSET_DIGITS
        text_keywords["$ENDDATA"] = "0" * _OFFSET_DIGITS

    def text_segment() -> bytes:
        doubled = delimiter * 2
        body = "".join(
            f"{key.replace(delimiter, doubled)}{delimiter}{value.replace(delimiter, doubled)}{delimiter}"
            for key, value in text_keywords.items()
        )
        return (delimiter + body).encode("utf-8")

    text_start = 58
    text_end = text_start + len(text_segment()) - 1
    data_start = text_end + 1
    data_end = data_start + len(data) - 1
    auto = (data_start, data_end) if data else (0, 0)
    if text_data is not None:
        begin, end = auto if text_data == "auto" else text_data
        text_keywords["$BEGINDATA"] = f"{begin:0{_OFFSET_DIGITS}d}"
        text_keywords["$ENDDATA"] = f"{end:0{_OFFSET_DIGITS}d}"
    if header_data == "blank":
        header_fields = [f"{text_start:8d}", f"{text_end:8d}", " " * 8, " " * 8]
    else:
        begin, end = auto if header_data == "auto" else header_data
        header_fields = [f"{text_start:8d}", f"{text_end:8d}", f"{begin:8d}", f"{end:8d}"]
    header = f"FCS{version}    " + "".join(header_fields) + f"{0:8d}{0:8d}"
    assert len(header) == 58
    return header.encode("ascii") + text_segment() + data + trailer


def chain_data_sets(data_sets: list[tuple[dict[str, str], bytes, dict]]) -> bytes:
    """Several data sets in one file, each $NEXTDATA relative to its own HEADER (FCS 3.1 §3.2.18)."""
    pieces = []
    for k, (keywords, data, options) in enumerate(data_sets):
        last = k == len(data_sets) - 1
        keywords = {**keywords, "$NEXTDATA": "0" * _OFFSET_DIGITS}
        piece = fcs_bytes(keywords, data, **options)
        if not last:
            keywords["$NEXTDATA"] = f"{len(piece):0{_OFFSET_DIGITS}d}"
            piece = fcs_bytes(keywords, data, **options)
        pieces.append(piece)
    return b"".join(pieces)


@pytest.fixture
def write_fcs(tmp_path: Path) -> Callable[..., Path]:
    """Write bytes (or :func:`fcs_bytes` arguments) to ``tmp_path/<name>`` and return the path."""

    def write(name: str, content: bytes | None = None, /, **kwargs) -> Path:
        path = tmp_path / name
        path.write_bytes(content if content is not None else fcs_bytes(**kwargs))
        return path

    return write


@pytest.fixture
def build_fcs() -> Callable[..., bytes]:
    """:func:`fcs_bytes`, the bytes of one FCS data set."""
    return fcs_bytes


@pytest.fixture
def build_chain() -> Callable[..., bytes]:
    """:func:`chain_data_sets`, the bytes of several data sets linked by $NEXTDATA."""
    return chain_data_sets


@pytest.fixture(scope="session")
def fcsparser_cytometers() -> Path:
    """The real FCS files in the fcsparser test dependency: 12 from 7 instruments, a fake large file
    and a corrupted one (14 in all)."""
    return FCSPARSER_CYTOMETERS
