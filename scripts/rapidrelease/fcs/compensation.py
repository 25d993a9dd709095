"""Spillover matrices as FCS files carry them in $SPILLOVER (and its older names $SPILL, SPILL).

FCS 3.1 §3.2.19 (optional keywords) defines ``$SPILLOVER/n,[P1],...,[Pn],f11,...,f1n,f21,...,fnn/``:
``n`` detector names (matching $PnN), then the n×n spillover coefficients row by row, where ``fij``
is the fraction of the signal of the fluorochrome measured in detector ``i`` that spills into
detector ``j``. Well-formed text parses exactly as ``flowutils.compensate.get_spill`` parses it;
malformed text is refused with one sentence instead of being guessed at.

FCS 2.0 ``$DFCiTOj`` and FCS 3.0 ``$COMP`` are not parsed here (see ``rapidrelease.fcs.reader``).

A matrix can also come from a file a panel names (:func:`read_spillover_file`): the CSV or TSV that
FlowJo, FlowKit, R (``write.csv`` of a matrix) or flowCore write, with the same meaning and checks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rapidrelease.errors import ConfigError, FCSReadError
from rapidrelease.fcs.text_segment import shown

__all__ = ["Spillover", "parse_spillover", "read_spillover_file"]

_CELL_SEPARATOR = re.compile(r"[,\t]")


@dataclass(frozen=True, eq=False)
class Spillover:
    """A spillover matrix and the detectors it names (FCS 3.1 §3.2.19 $SPILLOVER).

    ``matrix`` is float64 of shape (n, n), read-only: row i is the fluorochrome whose primary
    detector is ``detectors[i]`` (the one emitting), column j the detector receiving, so
    ``matrix[i, j]`` is the fraction of that fluorochrome's signal seen in ``detectors[j]``; the
    diagonal is normally 1. Unitless.
    """

    detectors: tuple[str, ...]
    matrix: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Spillover):
            return NotImplemented
        return self.detectors == other.detectors and np.array_equal(self.matrix, other.matrix)

    __hash__ = None  # type: ignore[assignment]


def parse_spillover(text: str, source: str) -> Spillover:
    """Parse a $SPILLOVER value ``"n,name1,...,namen,v11,...,vnn"`` (FCS 3.1 §3.2.19).

    ``source`` names where the text came from (e.g. ``"sample.fcs $SPILLOVER"``) and starts every
    error message. Names are stripped of surrounding white space and line breaks and values parsed
    as floats, as ``flowutils.compensate.get_spill`` does; a trailing comma is tolerated.

    Raises FCSReadError when the count is not a positive integer, names are missing, empty or
    repeated, a value is not a finite number, or there are not exactly n×n values.
    """
    items = [item.strip().replace("\n", "") for item in text.strip().split(",")]
    # A writer that ends the list with a comma leaves one empty item; it carries no value.
    while len(items) > 1 and items[-1] == "":
        items.pop()
    try:
        n = int(items[0])
    except ValueError:
        raise FCSReadError(
            f"{source}: spillover must start with the number of detectors, not '{shown(items[0])}'."
        ) from None
    if n < 1:
        raise FCSReadError(f"{source}: spillover declares {n} detectors; at least 1 is needed.")
    if len(items) < 1 + n:
        raise FCSReadError(
            f"{source}: spillover declares {n} detectors but lists only {len(items) - 1} items."
        )
    detectors = tuple(items[1 : n + 1])
    for k, name in enumerate(detectors, start=1):
        if not name:
            raise FCSReadError(f"{source}: spillover detector name {k} of {n} is empty.")
    if len(set(detectors)) != n:
        repeated = sorted({d for d in detectors if detectors.count(d) > 1})
        raise FCSReadError(
            f"{source}: spillover names detector(s) {shown(', '.join(repeated), 80)} more than once."
        )
    values_text = items[n + 1 :]
    if len(values_text) != n * n:
        raise FCSReadError(
            f"{source}: spillover for {n} detectors needs {n * n} values (n×n) but has {len(values_text)}."
        )
    values = []
    for k, value_text in enumerate(values_text):
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            row, col = divmod(k, n)
            raise FCSReadError(
                f"{source}: spillover value at row {row + 1}, column {col + 1} is '{shown(value_text)}', "
                "not a finite number."
            )
        values.append(value)
    matrix = np.array(values, dtype=np.float64).reshape(n, n)
    matrix.setflags(write=False)
    return Spillover(detectors=detectors, matrix=matrix)


def _cells(line: str) -> list[str]:
    return [cell.strip().strip('"').strip() for cell in _CELL_SEPARATOR.split(line.strip().lstrip("#"))]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_spillover_file(path: Path) -> Spillover:
    """Read a spillover matrix file: detector names on one line, then one row of values per detector.

    Accepted as FlowJo, FlowKit, R and flowCore write them: comma- or tab-separated; the header may
    start with ``#``; lines before the header (a title) are skipped; each row may start with its
    detector's name (R's row names, with an empty first header cell), in which case rows are put in
    the header's order. Values mean what $SPILLOVER's do (row emitting, column receiving). Raises
    ConfigError naming the file when it is missing or not such a matrix.
    """
    path = Path(path)
    try:
        lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except FileNotFoundError:
        raise ConfigError(f"{path}: compensation matrix file not found.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as a compensation matrix ({exc}).") from None
    first_row = next((i for i, line in enumerate(lines) if any(_is_number(c) for c in _cells(line))), None)
    if not first_row:
        raise ConfigError(
            f"{path}: not a compensation matrix (no line of detector names followed by numbers)."
        )
    header = [c for c in _cells(lines[first_row - 1]) if c]
    if len(lines) - first_row < len(header):
        raise ConfigError(
            f"{path}: names {len(header)} detectors but has {len(lines) - first_row} rows of values."
        )
    rows: dict[str, list[str]] = {}
    for k, line in enumerate(lines[first_row : first_row + len(header)]):
        cells = _cells(line)
        label = header[k]
        if len(cells) == len(header) + 1 and not _is_number(cells[0]):
            label, cells = cells[0], cells[1:]
        rows[label] = cells
    if sorted(rows) != sorted(header):
        raise ConfigError(f"{path}: the row names {list(rows)} do not match the detectors {header}.")
    values = [value for name in header for value in rows[name]]
    text = ",".join([str(len(header)), *header, *values])
    try:
        return parse_spillover(text, str(path))
    except FCSReadError as exc:
        raise ConfigError(str(exc)) from None
