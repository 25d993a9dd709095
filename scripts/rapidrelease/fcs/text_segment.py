"""Keyword-value pairs of an FCS TEXT segment (primary or supplemental).

FCS 3.1 §3.2.1: the first byte of the primary TEXT segment is the delimiter, which may be any
character; keywords and values alternate between delimiters; a delimiter inside a keyword or value
is written twice; keywords are case-insensitive; values may not be empty. Files in the wild also
omit the final delimiter and pad the segment with spaces or NULs, and some are Latin-1, not UTF-8.

Unlike flowio (which lower-cases keys and strips every '$', even inside values) the keywords are
kept upper-cased with their '$' and the values exactly as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TextSegment", "parse_text_segment", "shown"]


def shown(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters with control characters escaped, for quoting file
    content inside a one-line message."""
    cut = text[:limit]
    escaped = "".join(
        c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in cut
    )
    return escaped + ("…" if len(text) > limit else "")


@dataclass(frozen=True)
class TextSegment:
    """The keywords of one TEXT segment, in file order, and what was tolerated while parsing."""

    keywords: dict[str, str]
    delimiter: bytes
    encoding: str
    warnings: tuple[str, ...]


def _tokens(body: bytes, delimiter: bytes, empty_values: bool) -> list[bytes]:
    """Split ``body`` into keyword and value tokens.

    FCS 3.1 §3.2.1: values may not be empty, so a run of 2k delimiters is k literal delimiter
    characters and a run of 2k+1 is k literals ending the token followed by one separator.
    With ``empty_values`` a pair of delimiters right after a keyword instead ends the keyword and
    an empty value, as CellQuest and other writers produce and flowCore reads by default.
    """
    pieces = re.split(b"(" + re.escape(delimiter) + b"+)", body)
    tokens: list[bytes] = []
    current = b""
    for k in range(0, len(pieces) - 1, 2):
        current += pieces[k]
        run = len(pieces[k + 1])
        if empty_values and run == 2 and current and len(tokens) % 2 == 0:
            tokens += [current, b""]
            current = b""
            continue
        current += delimiter * (run // 2)
        if run % 2:
            tokens.append(current)
            current = b""
    current += pieces[-1]
    if current:
        # The final delimiter is missing (or trailing padding follows it).
        tokens.append(current)
    return tokens


def _pairs(tokens: list[str]) -> tuple[list[tuple[str, str]], str | None]:
    """Keyword-value pairs and the unpaired last token (None when there is none or it is padding)."""
    unpaired = None
    if len(tokens) % 2:
        last = tokens[-1]
        unpaired = last if last.strip(" \t\r\n\x00") else None
        tokens = tokens[:-1]
    return [(tokens[k], tokens[k + 1]) for k in range(0, len(tokens), 2)], unpaired


def _plausibility(pairs: list[tuple[str, str]], unpaired: str | None) -> tuple[int, int]:
    """Standard keywords start with '$' and never contain the delimiter: more of them, and no
    unpaired token, make a reading of the TEXT more plausible."""
    return sum(key.startswith("$") for key, _ in pairs), 0 if unpaired is None else -1


def parse_text_segment(raw: bytes, delimiter: bytes | None = None) -> TextSegment:
    """Parse a TEXT segment's bytes into keywords (FCS 3.1 §3.2.1).

    ``raw`` is the segment from its first to its last byte. For the primary TEXT segment leave
    ``delimiter`` as None: the first byte is the delimiter. For a supplemental TEXT segment
    ($BEGINSTEXT/$ENDSTEXT) pass the primary delimiter; a leading delimiter there is skipped.
    The segment is decoded as UTF-8, or as Latin-1 when it is not valid UTF-8 (as flowio does).

    Raises ValueError when ``raw`` is empty; every other oddity is tolerated and described in
    ``warnings`` (one sentence each).
    """
    if not raw:
        raise ValueError("empty TEXT segment")
    if delimiter is None:
        delimiter = raw[:1]
        body = raw[1:]
    else:
        body = raw[1:] if raw[:1] == delimiter else raw
    try:
        raw.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "latin-1"
    standard = [t.decode(encoding, errors="replace") for t in _tokens(body, delimiter, empty_values=False)]
    lenient = [t.decode(encoding, errors="replace") for t in _tokens(body, delimiter, empty_values=True)]
    pairs, unpaired = _pairs(standard)
    warnings: list[str] = []
    if lenient != standard:
        lenient_pairs, lenient_unpaired = _pairs(lenient)
        if _plausibility(lenient_pairs, lenient_unpaired) > _plausibility(pairs, unpaired):
            empty = [key for key, value in lenient_pairs if value == ""]
            warnings.append(
                f"TEXT writes empty values as doubled delimiters ({shown(', '.join(empty), 30)}); "
                "they were read as empty values, not as escaped delimiters."
            )
            pairs, unpaired = lenient_pairs, lenient_unpaired
    if unpaired is not None:
        warnings.append(f"TEXT ends with keyword '{shown(unpaired)}' that has no value; it was ignored.")
    keywords: dict[str, str] = {}
    repeated: dict[str, int] = {}
    for key_as_written, value in pairs:
        key = key_as_written.upper()
        if key in keywords and keywords[key] != value:
            repeated[key] = repeated.get(key, 1) + 1
        keywords[key] = value
    if repeated:
        names = shown(", ".join(sorted(repeated)), 80)
        warnings.append(f"keyword(s) {names} appear more than once with different values; the last is used.")
    return TextSegment(keywords=keywords, delimiter=delimiter, encoding=encoding, warnings=tuple(warnings))
