"""Tab-separated sample sheets (lots.tsv, units.tsv) read with their line numbers.

A sheet is text a person edits, often in a spreadsheet program, so the reader is tolerant of what
such programs add (a byte order mark, CRLF line ends, quoted cells, spaces around a value, blank
lines, ``#`` comment lines) and strict about what changes meaning (a row with more cells than
the header, a missing, repeated or unknown column). Every problem is reported as
``<file> row <line>, column '<name>': <problem>`` where the row is the line number in the file
(the header is row 1 when nothing precedes it), so the person can go straight to the cell.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidrelease.config.schemas import schema_problems
from rapidrelease.config.yaml_files import decode_text, read_config_bytes
from rapidrelease.errors import ConfigError

__all__ = [
    "Sheet",
    "SheetRow",
    "CheckedRow",
    "read_sheet",
    "split_sheet_line",
    "cell_problem",
    "row_records",
    "sheet_problems",
]

# A plain decimal number as a spreadsheet writes it; inf, nan and hex are not volumes.
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")


@dataclass(frozen=True)
class SheetRow:
    """One data row: its line number in the file and its cells by column (stripped, '' if empty)."""

    line: int
    cells: Mapping[str, str]


@dataclass(frozen=True)
class Sheet:
    """A parsed sheet: the column names in header order, the usable data rows, the SHA-256 of the file.

    ``data_lines`` counts every data line, including those refused for their number of cells.
    """

    path: Path
    columns: tuple[str, ...]
    rows: tuple[SheetRow, ...]
    sha256: str
    data_lines: int


def cell_problem(path: Path, line: int, column: str | None, message: str) -> str:
    """The one-line message for a problem in a sheet cell (or a whole row when ``column`` is None)."""
    where = f"{path} row {line}" if column is None else f"{path} row {line}, column '{column}'"
    return f"{where}: {message}"


def split_sheet_line(line: str) -> list[str]:
    """One line of a sheet as its cells, stripped; raises csv.Error for a line that cannot be split."""
    # csv handles the quotes a spreadsheet puts around a cell; a cell never spans lines in our sheets.
    return [cell.strip() for cell in next(csv.reader([line], delimiter="\t", strict=True))]


def read_sheet(path: Path, schema: Mapping[str, Any], problems: list[str]) -> Sheet | None:
    """Read a TSV sheet whose rows ``schema`` describes; append problems, return None if unusable.

    The header must name every required property of the schema and may leave out optional ones (a
    flow-only site need not carry the columns of sequencing controls); further columns are refused
    when the schema sets ``additionalProperties: false`` and kept otherwise. Rows with fewer cells than the
    header are padded with empty cells (editors drop trailing tabs); a row with more is refused.
    """
    try:
        data = read_config_bytes(path)
        text = decode_text(path, data)
    except ConfigError as exc:
        problems.append(str(exc))
        return None
    header: list[str] | None = None
    header_line = 0
    rows: list[SheetRow] = []
    data_lines = 0
    row_errors: list[str] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            cells = split_sheet_line(line)
        except csv.Error as exc:
            row_errors.append(cell_problem(path, number, None, f"cannot be split into cells ({exc})."))
            continue
        if header is None:
            header, header_line = cells, number
            continue
        data_lines += 1
        if len(cells) > len(header):
            row_errors.append(
                cell_problem(
                    path, number, None, f"has {len(cells)} cells but the header has {len(header)} columns."
                )
            )
            continue
        cells += [""] * (len(header) - len(cells))
        row = dict(zip(header, cells, strict=True))
        # an optional column left out of the header reads as empty in every row
        rows.append(SheetRow(line=number, cells={**dict.fromkeys(schema.get("properties", {}), ""), **row}))
    if header is None:
        problems.append(f"{path}: is empty; the first line must name the columns.")
        return None
    header_errors = _header_problems(path, header_line, header, schema)
    problems.extend(header_errors)
    if header_errors:
        return None
    problems.extend(row_errors)
    return Sheet(
        path=Path(path),
        columns=tuple(header),
        rows=tuple(rows),
        sha256=hashlib.sha256(data).hexdigest(),
        data_lines=data_lines,
    )


def _header_problems(path: Path, line: int, header: Sequence[str], schema: Mapping[str, Any]) -> list[str]:
    known = list(schema.get("properties", {}))
    extra_allowed = schema.get("additionalProperties", True) is not False
    problems: list[str] = []
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            problems.append(cell_problem(path, line, None, f"column {position} of the header has no name."))
        elif name in seen:
            problems.append(cell_problem(path, line, name, "is named twice in the header."))
        elif name not in known and not extra_allowed:
            problems.append(
                cell_problem(path, line, name, f"is not a known column (the columns are {', '.join(known)}).")
            )
        seen.add(name)
    required = list(schema.get("required", []))
    for name in required:
        if name not in seen:
            problems.append(
                cell_problem(
                    path,
                    line,
                    name,
                    f"is missing from the header (the required columns are {', '.join(required)}).",
                )
            )
    return problems


def _typed_cell(text: str, property_schema: Mapping[str, Any]) -> Any:
    """The cell as the schema expects it: numbers as float when they read as one, else the text."""
    if property_schema.get("type") in ("number", "integer") and _NUMBER.match(text):
        value = float(text)
        if math.isfinite(value):
            return value
    return text


@dataclass
class CheckedRow:
    """A data row with its record (empty cells left out) and the problems found in it so far."""

    sheet: Sheet
    row: SheetRow
    record: dict[str, Any]
    bad: set[str] = field(default_factory=set)
    found: list[tuple[int, str]] = field(default_factory=list)

    def add(self, column: str | None, message: str) -> None:
        """Record a problem of ``column`` (None: the whole row); only the first per cell is kept."""
        if column is not None:
            if column in self.bad:
                return
            self.bad.add(column)
        columns = self.sheet.columns
        position = columns.index(column) if column in columns else len(columns)
        self.found.append((position, cell_problem(self.sheet.path, self.row.line, column, message)))


def row_records(
    sheet: Sheet,
    schema: Mapping[str, Any],
    cell_rules: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None,
) -> list[CheckedRow]:
    """Each row as a record checked against ``schema``, with the problems found in it.

    Empty cells are left out of the record, so ``required`` in the schema means "not empty".
    ``cell_rules(record)`` may add rules of the sheet's own as (column, phrase); they are checked
    first because their phrase is the more specific one. The caller may add cross-row problems
    with :meth:`CheckedRow.add` and then collect all with :func:`sheet_problems`.
    """
    properties = schema.get("properties", {})
    checked: list[CheckedRow] = []
    for row in sheet.rows:
        record = {
            column: _typed_cell(text, properties.get(column, {}))
            for column, text in row.cells.items()
            if text != ""
        }
        item = CheckedRow(sheet, row, record)
        for column, message in cell_rules(record) if cell_rules is not None else []:
            item.add(column, message)
        for keys, message in schema_problems(record, schema):
            item.add(str(keys[0]) if keys else None, message)
        checked.append(item)
    return checked


def sheet_problems(checked: Sequence[CheckedRow]) -> list[str]:
    """All problems of the checked rows, one line each, in row then column order."""
    return [message for item in checked for _, message in sorted(item.found, key=lambda found: found[0])]
