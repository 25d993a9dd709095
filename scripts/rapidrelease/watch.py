"""Scheduled runs on new instrument output: register complete lot deliveries and run them.

An inbox is a folder the instruments and the LIMS write into. A **delivery** is a folder directly in
the inbox that holds a lot manifest, as the LIMS drops it::

    <inbox>/<delivery>/lot.tsv     the lot's one row, columns as config/lots.tsv
    <inbox>/<delivery>/units.tsv   its units, columns as config/units.tsv; data paths relative to
                                   this folder, e.g. DEMO-001_phenotype.fcs or
                                   ../RUN-0412/Fastq/S1_R1.fastq.gz (a sequencing run's folder in
                                   the same inbox, shared by the lots it sequenced)

A delivery is complete when both manifests and every file its units name exist, none of them has
changed (content or metadata) for ``stable_seconds`` — a file still being copied keeps changing —
and every instrument run folder holding one of those files carries its completion marker:
``CopyComplete.txt`` or ``RTAComplete.txt`` beside an Illumina ``RunInfo.xml``, a
``final_summary_*.txt`` in an Oxford Nanopore run folder. Until then nothing of it is read but
file metadata. A data path that leaves the inbox, or a manifest that is not one lot, refuses the
delivery.

A complete delivery that is new, or changed since it was processed, is checked as the site's
configuration would be with its rows in place of the lot's rows; if that configuration is valid the
site's sheets are rewritten (atomically, every other row and comment kept) and Snakemake runs for
that lot's outputs only, so no other lot is touched. A refused delivery is logged with every problem
and tried again only when it or the site's configuration changes; a failed Snakemake run is tried
again at the next scan. State, lock and log live in ``<inbox>/.rapidrelease-watch/``: a second
watcher on the same inbox exits at once, and a scan that finds nothing new changes nothing.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rapidrelease.config.run import run_config_from_dict
from rapidrelease.config.schemas import WORKFLOW_DIR, load_schema
from rapidrelease.config.sheets import Sheet, read_sheet, split_sheet_line
from rapidrelease.config.yaml_files import load_yaml
from rapidrelease.errors import ConfigError, RapidReleaseError
from rapidrelease.outputs import write_json, write_text

__all__ = [
    "WatchLockedError",
    "Delivery",
    "examine_delivery",
    "register_delivery",
    "scan_inbox",
    "watch",
    "STATE_DIR_NAME",
    "WAITING",
    "READY",
    "REFUSED",
]

STATE_DIR_NAME = ".rapidrelease-watch"
LOT_MANIFEST, UNITS_MANIFEST = "lot.tsv", "units.tsv"
_ILLUMINA_MARKERS = ("CopyComplete.txt", "RTAComplete.txt")
# what a MinKNOW output folder holds while it runs; final_summary_*.txt is written when it ends
_ONT_RUN_SIGNS = ("fastq_pass", "fastq_fail", "bam_pass", "pod5_pass", "pod5")
_DATA_COLUMNS = ("path", "path2")

WAITING, READY, REFUSED = "waiting", "ready", "refused"


class WatchLockedError(RapidReleaseError):
    """Another watcher holds the inbox's lock."""


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
        for column in _DATA_COLUMNS:
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


# --- the site's sheets ----------------------------------------------------------------------------

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
        for column in _DATA_COLUMNS:
            if cells.get(column):
                cells[column] = absolute(cells[column])
        kept.append("\t".join(cells.get(column, "") for column in header))
        origins.append((delivered.path, row.line))
    return "\n".join(kept) + "\n", origins


def _site_sheets(config_path: Path) -> tuple[dict[str, Any], Path, Path]:
    settings, _ = load_yaml(config_path)
    if not isinstance(settings, dict) or "lots" not in settings or "units" not in settings:
        raise ConfigError(f"{config_path}: names no lots and units sheets for the watcher to register into.")
    return settings, Path(settings["lots"]), Path(settings["units"])


def _site_digest(config_path: Path, delivery: Delivery) -> str:
    """SHA-256 over the site files a refusal may have come from: config, specs, sheets, panels named."""
    settings, lots_path, units_path = _site_sheets(config_path)
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
    settings, lots_path, units_path = _site_sheets(config_path)

    def absolute(name: str) -> str:
        return str((delivery.folder / name).resolve())

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


# --- running --------------------------------------------------------------------------------------


@contextmanager
def _inbox_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "lock", "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise WatchLockedError(
                f"{state_dir / 'lock'}: another rapidrelease watch is running on this inbox "
                f"({holder}); this one exits."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {_now()}\n")
        handle.flush()
        yield


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Log:
    """Each line to the inbox's watch.log and to ``echo``, with a UTC time stamp."""

    def __init__(self, path: Path, echo: TextIO) -> None:
        self.path, self.echo = path, echo

    def __call__(self, message: str) -> None:
        line = f"{_now()} {message}"
        print(line, file=self.echo, flush=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def _run_snakemake(
    lot_ids: Sequence[str], config_path: Path, settings: Mapping[str, Any], options: _Options, log: _Log
) -> int:
    """Snakemake for the lots' decisions and reports only; its output goes to a log of its own."""
    results = Path(str(settings.get("results", "results")))
    targets = [str(results / lot / name) for lot in lot_ids for name in ("release.json", "report.html")]
    command = [
        str(Path(sys.executable).parent / "snakemake"),
        "--snakefile", str(options.snakefile),
        "--configfile", str(config_path),
        "--cores", str(options.cores),
        *options.snakemake_args,
        *targets,
    ]  # fmt: skip
    run_log = options.state_dir / "runs" / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}.log"
    run_log.parent.mkdir(parents=True, exist_ok=True)
    log(f"running snakemake for {', '.join(lot_ids)} (output in {run_log}): {' '.join(command)}")
    with open(run_log, "w", encoding="utf-8") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    if code == 0:
        log(f"snakemake finished {', '.join(lot_ids)}.")
    else:
        tail = run_log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        log(f"snakemake exited {code} for {', '.join(lot_ids)}; it is tried again at the next scan:\n"
            + "\n".join(tail))  # fmt: skip
    return code


@dataclass(frozen=True)
class _Options:
    state_dir: Path
    stable_seconds: float
    cores: int
    snakefile: Path
    snakemake_args: tuple[str, ...]


def watch(
    inbox: Path,
    config_path: Path = Path("config/config.yaml"),
    once: bool = False,
    interval: float = 300.0,
    stable_seconds: float = 60.0,
    cores: int = 1,
    snakemake_args: Sequence[str] = (),
    snakefile: Path | None = None,
    echo: TextIO = sys.stderr,
) -> list[str]:
    """Scan ``inbox`` once, or every ``interval`` seconds, and run Snakemake for new complete lots.

    Snakemake runs ``snakefile`` (default: this installation's workflow/Snakefile) in the current
    folder, the site's, where ``config_path``'s relative paths start. Returns the lot ids run by
    the last scan. Raises WatchLockedError when another watcher holds the inbox; a problem during
    one scan of a continuous watch is logged and the next scan goes on.
    """
    inbox, config_path = Path(inbox), Path(config_path)
    if not inbox.is_dir():
        raise ConfigError(f"{inbox}: the inbox is not a folder.")
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: configuration file not found.")
    options = _Options(
        state_dir=inbox / STATE_DIR_NAME,
        stable_seconds=stable_seconds,
        cores=cores,
        snakefile=Path(snakefile) if snakefile is not None else WORKFLOW_DIR / "Snakefile",
        snakemake_args=tuple(snakemake_args),
    )
    with _inbox_lock(options.state_dir):
        log = _Log(options.state_dir / "watch.log", echo)
        while True:
            try:
                ran = _scan_once(inbox, config_path, options, log)
            except RapidReleaseError as exc:
                if once:
                    raise
                log(f"this scan stopped: {exc}")
                ran = []
            if once:
                return ran
            time.sleep(interval)


def _scan_once(inbox: Path, config_path: Path, options: _Options, log: _Log) -> list[str]:
    state_path = options.state_dir / "state.json"
    state: dict[str, dict[str, Any]] = json.loads(state_path.read_text()) if state_path.is_file() else {}
    before = json.dumps(state, sort_keys=True)
    to_run: list[str] = []
    for delivery in scan_inbox(inbox, options.stable_seconds):
        key = delivery.folder.name
        known = state.get(key, {})
        # what it waits for is logged once; the outcome of its last processing is kept beside it
        if delivery.state == WAITING:
            if known.get(WAITING) != delivery.reason:
                log(f"{delivery.folder}: waiting: {delivery.reason}.")
                state[key] = {**known, WAITING: delivery.reason}
            continue
        if WAITING in known:
            known = state[key] = {k: v for k, v in known.items() if k != WAITING}
        site = _site_digest(config_path, delivery)
        if known.get("fingerprint") == delivery.fingerprint and (
            known.get("status") == "processed"
            or (known.get("status") == REFUSED and known.get("site") == site)
        ):
            continue
        entry = {"lot_id": delivery.lot_id, "fingerprint": delivery.fingerprint, "site": site}
        claimed = _claimed_elsewhere(delivery, state, inbox)
        if delivery.state == REFUSED or claimed:
            registered, message = False, delivery.reason or claimed
        else:
            registered, message = register_delivery(delivery, config_path)
        if not registered:
            log(f"{delivery.folder}: refused: {message}")
            state[key] = {**entry, "status": REFUSED, "reason": message, "at": _now()}
            continue
        log(f"{delivery.folder}: {message}.")
        state[key] = {**entry, "status": "registered", "at": _now()}
        to_run.append(str(delivery.lot_id))
    if to_run:
        settings, _, _ = _site_sheets(config_path)
        code = _run_snakemake(to_run, config_path, settings, options, log)
        for entry in state.values():
            if entry.get("status") == "registered" and entry.get("lot_id") in to_run:
                entry["status"] = "processed" if code == 0 else "failed"
                entry["at"] = _now()
    if json.dumps(state, sort_keys=True) != before:
        write_json(state_path, state)
    return to_run


def _claimed_elsewhere(delivery: Delivery, state: Mapping[str, Mapping[str, Any]], inbox: Path) -> str:
    """Why the delivery's lot may not be registered: another delivery still in the inbox holds it."""
    for name, entry in state.items():
        if (
            name != delivery.folder.name
            and entry.get("lot_id") == delivery.lot_id
            and entry.get("status") in ("registered", "processed", "failed")
            and (inbox / name).is_dir()
        ):
            return (
                f"lot {delivery.lot_id} was already delivered in {inbox / name}; remove one of the two "
                "folders (a corrected delivery replaces its folder's files)."
            )
    return ""
