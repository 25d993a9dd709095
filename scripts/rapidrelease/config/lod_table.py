"""A lab's empirical limits of detection per organism, from its method validation.

ICH Q2(R2) and USP <1223> validate a detection limit by experiment: a dilution series of each
organism, replicates at every level, and the LOD95 read off a probit (or logistic) fit of the
fraction detected. Such a table, when the site gives one (``detection.lod_table`` in config.yaml),
overrides the limit the sequencing calls predict from the run's positive control.

The table is tab-separated with a header line: ``organism`` (a scientific name, as in the checklist,
or an NCBI taxid) and ``lod95_cfu_per_ml`` (a positive number, CFU per mL of product). Other columns
(e.g. ``replicates``, ``validation_report``) are kept for people and ignored here.
"""

from __future__ import annotations

import math
from pathlib import Path

from rapidrelease.errors import ConfigError

__all__ = ["LOD_TABLE_COLUMNS", "LOD_TABLE_UNIT", "read_lod_table"]

LOD_TABLE_COLUMNS = ("organism", "lod95_cfu_per_ml")
LOD_TABLE_UNIT = "CFU/mL"
"""The unit of the table's limits: a run whose positive control is in another unit cannot use them."""


def read_lod_table(path: Path) -> dict[str, float]:
    """The validated LOD95 per organism (CFU/mL), keyed by the organism as written, letter case folded.

    Raises ConfigError naming the file (and line) for a missing file, a missing column, an
    organism given twice or a limit that is not a positive finite number.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: the LOD table cannot be read ({exc}).") from exc
    rows = [(n, line.split("\t")) for n, line in enumerate(lines, 1) if line.strip() and line[0] != "#"]
    if not rows:
        raise ConfigError(f"{path}: the LOD table is empty; it needs the columns organism, lod95_cfu_per_ml.")
    header = [name.strip() for name in rows[0][1]]
    missing = [name for name in LOD_TABLE_COLUMNS if name not in header]
    if missing:
        raise ConfigError(
            f"{path}: the LOD table has no column {missing[0]!r} (tab-separated, header first)."
        )
    at_organism, at_lod = (header.index(name) for name in LOD_TABLE_COLUMNS)
    limits: dict[str, float] = {}
    for line, row in rows[1:]:
        cells = [cell.strip() for cell in row] + [""] * len(header)
        organism, text = cells[at_organism], cells[at_lod]
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not organism:
            raise ConfigError(f"{path}, line {line}: names no organism.")
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(
                f"{path}, line {line}: lod95_cfu_per_ml of {organism} is {text!r}, not a positive number."
            )
        key = organism.casefold()
        if key in limits:
            raise ConfigError(f"{path}, line {line}: {organism} is given twice.")
        limits[key] = value
    return limits
