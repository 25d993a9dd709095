"""The site's sheets: a delivery's rows put in place of its lot's rows, if the configuration stays valid."""

from __future__ import annotations

import csv
import hashlib
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rapidrelease.config.run import run_config_from_dict
from rapidrelease.config.sheets import Sheet, split_sheet_line
from rapidrelease.config.yaml_files import load_yaml
from rapidrelease.errors import ConfigError
from rapidrelease.outputs import write_text
from rapidrelease.watch.delivery import DATA_COLUMNS, Delivery

__all__ = ["register_delivery", "site_digest", "site_sheets"]

_Origin = tuple[Path, int]


def _sheet_with_lot(
    sheet_path: Path, lot_id: str, delivered: Sheet, absolute: Callable[[str], str]
) -> tuple[str, list[_Origin]]:
    """The site sheet's text with ``lot_id``'s rows replaced by the delivered rows, and each line's origin.

    Every other line (comments, other lots) is kept as written. Columns the delivery fills and the
    sheet lacks are added to its header; rows are padded by the reader. ``absolute`` turns a
    delivered data path into the path the sheet records.
    """
    lines = sheet_path.read_text(encoding="utf-8-sig").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    kept: list[str] = []
    origins: list[_Origin] = []
    header: list[str] | None = None
    header_index = -1
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if header is None and line.strip() and not line.lstrip().startswith("#"):
            header, header_index = split_sheet_line(line), len(kept)
        elif header is not None and line.strip() and not line.lstrip().startswith("#"):
            try:
                cells = split_sheet_line(line)
            except csv.Error:
                cells = []
            column = header.index("lot_id") if "lot_id" in header else len(cells)
            if column < len(cells) and cells[column] == lot_id:
                continue
        kept.append(line)
        origins.append((sheet_path, number))
    if header is None:
        raise ConfigError(f"{sheet_path}: is empty; the first line must name the columns.")
    added = [
        column
        for column in delivered.columns
        if column not in header and any(row.cells.get(column) for row in delivered.rows)
    ]
    if added:
        header = header + added
        kept[header_index] = "\t".join(header)
    for row in delivered.rows:
        cells = {**row.cells}
        for column in DATA_COLUMNS:
            if cells.get(column):
                cells[column] = absolute(cells[column])
        kept.append("\t".join(cells.get(column, "") for column in header))
        origins.append((delivered.path, row.line))
    return "\n".join(kept) + "\n", origins


def site_sheets(config_path: Path) -> tuple[dict[str, Any], Path, Path]:
    settings, _ = load_yaml(config_path)
    if not isinstance(settings, dict) or "lots" not in settings or "units" not in settings:
        raise ConfigError(f"{config_path}: names no lots and units sheets for the watcher to register into.")
    return settings, Path(settings["lots"]), Path(settings["units"])


def site_digest(config_path: Path, delivery: Delivery) -> str:
    """SHA-256 over the site files a refusal may have come from: config, specs, sheets, panels named."""
    settings, lots_path, units_path = site_sheets(config_path)
    files = [config_path, lots_path, units_path, Path(str(settings.get("specs", "")))]
    if delivery.units is not None:
        files += [Path(row.cells["template"]) for row in delivery.units.rows if row.cells.get("template")]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return digest.hexdigest()


def register_delivery(delivery: Delivery, config_path: Path) -> tuple[bool, str]:
    """Put the delivery's rows in the site's sheets if the configuration stays valid.

    Returns (registered, message). Sheets are written only when their text changes, so registering
    the same delivery again does not make every lot's decision look out of date to Snakemake.
    """
    assert delivery.lots is not None and delivery.units is not None and delivery.lot_id is not None
    settings, lots_path, units_path = site_sheets(config_path)

    def absolute(name: str) -> str:
        # the file examine_delivery resolved inside the inbox, not the path resolved again
        return str(delivery.files[name])

    lots_text, lot_origins = _sheet_with_lot(lots_path, delivery.lot_id, delivery.lots, absolute)
    units_text, unit_origins = _sheet_with_lot(units_path, delivery.lot_id, delivery.units, absolute)
    with tempfile.TemporaryDirectory(prefix="rapidrelease-watch-") as tmp:
        trial = {"lots": Path(tmp) / "lots.tsv", "units": Path(tmp) / "units.tsv"}
        trial["lots"].write_text(lots_text, encoding="utf-8")
        trial["units"].write_text(units_text, encoding="utf-8")
        try:
            run_config_from_dict({**settings, **{k: str(v) for k, v in trial.items()}}, config_path)
        except ConfigError as exc:
            # point each problem at the file and line it came from, not at the trial copy
            sources = {
                str(trial["lots"]): (lots_path, lot_origins),
                str(trial["units"]): (units_path, unit_origins),
            }

            def where(match: re.Match[str]) -> str:
                site_path, origins = sources[match.group(1)]
                if match.group(2) is None:
                    return str(site_path)
                path, line = origins[int(match.group(2)) - 1]
                return f"{path} row {line}"

            pattern = "(" + "|".join(re.escape(k) for k in sources) + r")(?: row (\d+))?"
            problems = re.sub(pattern, where, str(exc))
            return False, f"the configuration would be refused with it:\n{problems}"
    changed = []
    for path, text in ((lots_path, lots_text), (units_path, units_text)):
        if path.read_text(encoding="utf-8-sig") != text:
            write_text(path, text)
            changed.append(str(path))
    written = f"written to {' and '.join(changed)}" if changed else "already in the site's sheets"
    return True, f"lot {delivery.lot_id} registered ({len(delivery.units.rows)} units, {written})"
