"""Delivery folders in an inbox: when one is complete, and what its manifests say."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapidrelease.config.schemas import load_schema
from rapidrelease.config.sheets import Sheet, read_sheet

__all__ = [
    "Delivery",
    "examine_delivery",
    "scan_inbox",
    "LOT_MANIFEST",
    "UNITS_MANIFEST",
    "DATA_COLUMNS",
    "WAITING",
    "READY",
    "REFUSED",
]

LOT_MANIFEST, UNITS_MANIFEST = "lot.tsv", "units.tsv"
_ILLUMINA_MARKERS = ("CopyComplete.txt", "RTAComplete.txt")
# what a MinKNOW output folder holds while it runs; final_summary_*.txt is written when it ends
_ONT_RUN_SIGNS = ("fastq_pass", "fastq_fail", "bam_pass", "pod5_pass", "pod5")
DATA_COLUMNS = ("path", "path2")

WAITING, READY, REFUSED = "waiting", "ready", "refused"


@dataclass(frozen=True)
class Delivery:
    """One delivery folder as examined: its state (waiting, ready or refused) and why.

    ``fingerprint`` changes whenever a manifest or a file the units name changes (path, size,
    modification time); ``lots`` and ``units`` are the manifests, read only once the delivery is
    stable.
    """

    folder: Path
    state: str
    reason: str
    fingerprint: str
    lot_id: str | None = None
    lots: Sheet | None = None
    units: Sheet | None = None


def _last_change(stat: os.stat_result) -> float:
    # ctime too: a copy that preserves the source's mtime (cp -p, rsync -t) still changes ctime
    return max(stat.st_mtime, stat.st_ctime)


def _run_folder_waiting(path: Path, inbox: Path) -> str | None:
    """Why the instrument run folder holding ``path`` is not finished yet, if it is in one."""
    folder = path.parent
    while folder != inbox and inbox in folder.parents:
        if (folder / "RunInfo.xml").is_file():
            if not any((folder / marker).is_file() for marker in _ILLUMINA_MARKERS):
                return f"Illumina run {folder} has no CopyComplete.txt or RTAComplete.txt yet"
            return None
        ont = any((folder / sign).exists() for sign in _ONT_RUN_SIGNS) or any(
            folder.glob("sequencing_summary*.txt")
        )
        if ont:
            if not any(folder.glob("final_summary*.txt")):
                return f"Oxford Nanopore run {folder} has no final_summary_*.txt yet"
            return None
        folder = folder.parent
    return None


def _fingerprint(inbox: Path, files: Sequence[tuple[Path, os.stat_result]]) -> str:
    digest = hashlib.sha256()
    for path, stat in files:
        relative = os.path.relpath(path, inbox)
        digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def examine_delivery(folder: Path, inbox: Path, stable_seconds: float, now: float | None = None) -> Delivery:
    """Decide whether a delivery folder is complete; reads no file that may still be being written."""
    folder, inbox = Path(folder).resolve(), Path(inbox).resolve()
    now = time.time() if now is None else now
    seen: list[tuple[Path, os.stat_result]] = []

    def result(state: str, reason: str = "", **found: Any) -> Delivery:
        return Delivery(folder, state, reason, _fingerprint(inbox, seen), **found)

    def unstable(path: Path) -> str | None:
        stat = path.stat()
        seen.append((path, stat))
        if now - _last_change(stat) < stable_seconds:
            return f"{path} changed less than {stable_seconds:g} s ago (it may still be being written)"
        return None

    for name in (LOT_MANIFEST, UNITS_MANIFEST):
        if not (folder / name).is_file():
            return result(WAITING, f"its manifest {name} has not arrived")
        why = unstable(folder / name)
        if why:
            return result(WAITING, why)
    problems: list[str] = []
    lots = read_sheet(folder / LOT_MANIFEST, load_schema("lots.schema.yaml"), problems)
    units = read_sheet(folder / UNITS_MANIFEST, load_schema("units.schema.yaml"), problems)
    if lots is None or units is None:
        return result(REFUSED, " ".join(problems))
    if len(lots.rows) != 1 or not lots.rows[0].cells.get("lot_id"):
        return result(REFUSED, f"{lots.path} must hold exactly one lot row with a lot_id.")
    lot_id = lots.rows[0].cells["lot_id"]
    if not units.rows:
        return result(REFUSED, f"{units.path} lists no units.", lot_id=lot_id)
    for row in units.rows:
        if row.cells["lot_id"] != lot_id:
            return result(
                REFUSED,
                f"{units.path} row {row.line} names lot {row.cells['lot_id']!r}, not {lot_id!r}.",
                lot_id=lot_id,
            )
    for row in units.rows:
        for column in DATA_COLUMNS:
            name = row.cells.get(column, "")
            if not name:
                continue
            data = (folder / name).resolve()
            if Path(name).is_absolute() or inbox not in data.parents:
                return result(
                    REFUSED,
                    f"{units.path} row {row.line}, column '{column}': {name!r} is not inside the inbox "
                    f"{inbox}; data paths are relative to the delivery folder.",
                    lot_id=lot_id,
                )
            if not data.is_file():
                return result(WAITING, f"{data} (unit {row.cells['unit_id']}) has not arrived", lot_id=lot_id)
            why = unstable(data) or _run_folder_waiting(data, inbox)
            if why:
                return result(WAITING, why, lot_id=lot_id)
    return result(READY, lot_id=lot_id, lots=lots, units=units)


def scan_inbox(inbox: Path, stable_seconds: float, now: float | None = None) -> list[Delivery]:
    """Every delivery folder of the inbox (a folder holding a manifest), examined, in name order."""
    inbox = Path(inbox)
    return [
        examine_delivery(folder, inbox, stable_seconds, now)
        for folder in sorted(inbox.iterdir())
        if folder.is_dir()
        and not folder.name.startswith(".")
        and any((folder / name).exists() for name in (LOT_MANIFEST, UNITS_MANIFEST))
    ]
