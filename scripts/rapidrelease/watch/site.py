"""The site's sheets: a delivery's rows put in place of its lot's rows, if the configuration stays valid."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rapidrelease.config.run import run_config_from_dict
from rapidrelease.config.schemas import load_schema
from rapidrelease.config.sheets import Sheet, SheetRow, read_sheet, split_sheet_line
from rapidrelease.config.yaml_files import load_yaml
from rapidrelease.errors import ConfigError
from rapidrelease.outputs import write_text
from rapidrelease.watch.delivery import DATA_COLUMNS, Delivery, shown_cell

__all__ = ["panels_folder", "register_delivery", "site_digest", "site_sheets"]

_Origin = tuple[Path, int]
_SHOWN_PROBLEMS = 20


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


def panels_folder(config_path: Path) -> Path:
    """The site's panels: the ``panels`` folder beside the configuration file (``config/panels``)."""
    return Path(config_path).parent / "panels"


def _panel_files(config_path: Path) -> list[Path]:
    folder = panels_folder(config_path)
    if not folder.is_dir():
        return []
    return sorted(
        folder / name
        for name in os.listdir(folder)
        if name.endswith((".yaml", ".yml")) and (folder / name).is_file()
    )


def site_digest(config_path: Path) -> str:
    """SHA-256 over the site files a refusal may have come from: config, specs, sheets, panels.

    Only the site's own files are read, never a path a delivery names.
    """
    settings, lots_path, units_path = site_sheets(config_path)
    files = [
        config_path,
        lots_path,
        units_path,
        Path(str(settings.get("specs", ""))),
        *_panel_files(config_path),
    ]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return digest.hexdigest()


def _site_panels(config_path: Path, units_path: Path, lot_id: str) -> dict[str, str]:
    """The panels a delivery may name: each text it may name one by, mapped to what the site's sheet records.

    The files of the site's panels folder, by file name or by their path as the site's sheet writes
    it (``config/panels/car_t_phenotype.yaml``), and the panels the site's unit sheet already names
    for its other lots, as written there.
    """
    panels: dict[str, str] = {}
    for path in _panel_files(config_path):
        panels[path.name] = panels[str(path)] = panels[os.path.normpath(path)] = str(path)
    problems: list[str] = []
    sheet = read_sheet(units_path, load_schema("units.schema.yaml"), problems)
    for row in sheet.rows if sheet is not None else ():
        template = row.cells.get("template", "")
        if template and row.cells.get("lot_id") != lot_id:
            panels.setdefault(template, template)
    return panels


def _panel_problem(delivery: Delivery, config_path: Path, units_path: Path) -> tuple[Sheet, str]:
    """The delivery's units with each panel named as the site names it, or the sentence refusing them.

    Panels, gating templates and specifications are the site's analysis; a delivery only chooses
    among them. A panel that is not the site's, or that resolves inside the inbox (a site panel
    that is a link into it), is refused: a delivery could otherwise bring a panel of its own, say
    one whose CAR+ numerator is its denominator.
    """
    assert delivery.units is not None and delivery.lot_id is not None
    panels = _site_panels(config_path, units_path, delivery.lot_id)
    inbox = os.path.realpath(delivery.folder.parent)
    rows = []
    for row in delivery.units.rows:
        named = row.cells.get("template", "")
        panel = (panels.get(named) or panels.get(os.path.normpath(named))) if named else ""
        if named and (panel is None or os.path.realpath(panel).startswith(inbox.rstrip(os.sep) + os.sep)):
            choices = ", ".join(sorted(path.name for path in _panel_files(config_path))) or "none yet"
            return delivery.units, (
                f"{delivery.units.path} row {row.line}, column 'template': {shown_cell(named)} is not one of "
                f"the site's panels ({choices}); a delivery names a panel of {panels_folder(config_path)}/ "
                "and cannot bring its own."
            )
        rows.append(SheetRow(line=row.line, cells={**row.cells, "template": panel or ""}))
    return dataclasses.replace(delivery.units, rows=tuple(rows)), ""


def register_delivery(delivery: Delivery, config_path: Path) -> tuple[bool, str]:
    """Put the delivery's rows in the site's sheets if the configuration stays valid.

    Returns (registered, message). Sheets are written only when their text changes, so registering
    the same delivery again does not make every lot's decision look out of date to Snakemake.
    """
    assert delivery.lots is not None and delivery.units is not None and delivery.lot_id is not None
    settings, lots_path, units_path = site_sheets(config_path)
    units, refused = _panel_problem(delivery, config_path, units_path)
    if refused:
        return False, refused

    def absolute(name: str) -> str:
        # the file examine_delivery resolved inside the inbox, not the path resolved again
        return str(delivery.files[name])

    lots_text, lot_origins = _sheet_with_lot(lots_path, delivery.lot_id, delivery.lots, absolute)
    units_text, unit_origins = _sheet_with_lot(units_path, delivery.lot_id, units, absolute)
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
            # a count of the problems, then one line each; every row of a manifest may be wrong, and
            # the log shows enough to correct the first ones
            problems = re.sub(pattern, where, str(exc)).split("\n")
            if len(problems) > 1 + _SHOWN_PROBLEMS:
                more = len(problems) - 1 - _SHOWN_PROBLEMS
                problems = [*problems[: 1 + _SHOWN_PROBLEMS], f"… and {more:,} more problems."]
            return False, "the configuration would be refused with it:\n" + "\n".join(problems)
    changed = []
    for path, text in ((lots_path, lots_text), (units_path, units_text)):
        if path.read_text(encoding="utf-8-sig") != text:
            write_text(path, text)
            changed.append(str(path))
    written = f"written to {' and '.join(changed)}" if changed else "already in the site's sheets"
    return True, f"lot {delivery.lot_id} registered ({len(delivery.units.rows)} units, {written})"
