"""Delivery folders in an inbox: when one is complete, what its manifests say, and what it may name.

A delivery is written by whoever can write the inbox, so nothing in it is followed or trusted
before it is checked: a delivery folder or manifest that is a symbolic link is refused without
being read, a manifest is read once through a descriptor opened with ``O_NOFOLLOW`` and parsed
from those bytes, and every data path must resolve (``realpath``) inside the inbox's own
``realpath``. A path that cannot be resolved — a link loop, a name longer than the file system
allows — or a manifest that is not text refuses that delivery with one sentence; no exception
from one delivery ever stops the examination of the others. No line of a file is quoted in a
reason.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import hashlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidrelease.config.run import RESULTS_FILES
from rapidrelease.config.schemas import load_schema
from rapidrelease.config.sheets import Sheet, read_sheet, split_sheet_line
from rapidrelease.config.yaml_files import decode_text
from rapidrelease.errors import ConfigError
from rapidrelease.outputs import sha256_file

__all__ = [
    "Delivery",
    "content_digest",
    "examine_delivery",
    "scan_inbox",
    "LOT_MANIFEST",
    "UNITS_MANIFEST",
    "DATA_COLUMNS",
    "WAITING",
    "READY",
    "REFUSED",
    "shown_cell",
    "MAX_MANIFEST_ROWS",
    "MAX_MANIFEST_BYTES",
]

LOT_MANIFEST, UNITS_MANIFEST = "lot.tsv", "units.tsv"
_ILLUMINA_MARKERS = ("CopyComplete.txt", "RTAComplete.txt")
# what a MinKNOW output folder holds while it runs; final_summary_*.txt is written when it ends
_ONT_RUN_SIGNS = ("fastq_pass", "fastq_fail", "bam_pass", "pod5_pass", "pod5")
DATA_COLUMNS = ("path", "path2")

WAITING, READY, REFUSED = "waiting", "ready", "refused"
# A lot has tens of units (the demo's nine; a large panel with single stains and FMOs, ~100). The
# configuration check of a delivery grows with the square of its rows (10,000 rows took 222 s), so
# a manifest is refused above 1,000 rows (or 16 MiB, unread) before any row is parsed.
MAX_MANIFEST_ROWS = 1_000
MAX_MANIFEST_BYTES = 16 * 2**20
# C0 and C1 controls but tab and line ends, and the Unicode line and paragraph separators
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n|\Z)")


@dataclass(frozen=True)
class Delivery:
    """One delivery folder as examined: its state (waiting, ready or refused) and why.

    ``fingerprint`` changes whenever a manifest or a file the units name changes (path, size,
    modification time); ``lots`` and ``units`` are the manifests, read only once the delivery is
    stable; ``files`` maps each data path as the units name it to the file it resolves to, inside
    the inbox.
    """

    folder: Path
    state: str
    reason: str
    fingerprint: str
    lot_id: str | None = None
    lots: Sheet | None = None
    units: Sheet | None = None
    files: Mapping[str, Path] = field(default_factory=dict)


class _Waiting(Exception):
    """The delivery is not complete yet; the message says what it waits for."""


class _Refused(Exception):
    """The delivery is refused; the message is the one sentence that says why."""


def _last_change(info: os.stat_result) -> float:
    # ctime too: a copy that preserves the source's mtime (cp -p, rsync -t) still changes ctime
    return max(info.st_mtime, info.st_ctime)


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


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
    for path, info in files:
        relative = os.path.relpath(path, inbox)
        digest.update(f"{relative}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def shown_cell(name: str) -> str:
    """A cell as a reason quotes it: its repr, cut short (a 4,000-character path says nothing more)."""
    return repr(name if len(name) <= 80 else name[:60] + "…")


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a loop of symbolic links"
    if exc.errno == errno.ENAMETOOLONG:
        return "is longer than the file system allows (a name of at most 255 bytes, a path of 4,095)"
    return f"cannot be reached ({exc.strerror or exc})"


def _manifest_bytes(path: Path, stable: Callable[[Path, os.stat_result], str | None]) -> bytes:
    """The manifest's bytes, read once through a descriptor that does not follow a link."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise _Waiting(f"its manifest {path.name} has not arrived") from None
    if stat.S_ISLNK(info.st_mode):
        raise _Refused(
            f"{path} is a symbolic link; a manifest must be a file written into the delivery itself, "
            "and a link is not followed."
        )
    if not stat.S_ISREG(info.st_mode):
        raise _Refused(f"{path} is not a plain file.")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise _Refused(
            f"{path} holds {info.st_size:,} bytes; a delivery's manifest holds at most "
            f"{MAX_MANIFEST_BYTES:,} ({MAX_MANIFEST_ROWS:,} rows of one lot)."
        )
    why = stable(path, info)
    if why:
        raise _Waiting(why)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        opened = os.fstat(fh.fileno())
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            raise _Waiting(f"{path} was replaced while it was being read")
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise _Waiting(f"{path} grew while it was being read")
    if b"\0" in data:
        raise _Refused(f"{path} holds a NUL byte; a manifest is text.")
    return data


def _manifest_sheet(path: Path, data: bytes, schema_name: str) -> Sheet:
    """The manifest parsed as the site's sheets are, from the bytes read; a reason quotes no line of it."""
    schema = load_schema(schema_name)
    try:
        text = decode_text(path, data)
    except ConfigError as exc:
        raise _Refused(str(exc)) from None
    lines = text.split("\n")
    used = [n for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]
    if len(used) - 1 > MAX_MANIFEST_ROWS:
        raise _Refused(
            f"{path} has {len(used) - 1:,} rows; a delivery's manifest holds at most "
            f"{MAX_MANIFEST_ROWS:,} (one lot's units)."
        )
    # a tab separates cells; any other control or line-separator character could shift a cell into
    # the next column of the site's sheet or forge a line of the log
    control = _CONTROL.search(text)
    if control:
        raise _Refused(
            f"{path} row {text.count(chr(10), 0, control.start()) + 1} holds a control character "
            f"(U+{ord(control.group()[0]):04X}); a manifest holds text cells separated by tabs."
        )
    header_at = used[0] if used else 0
    if header_at and schema.get("additionalProperties", True) is False:
        try:
            header = split_sheet_line(lines[header_at - 1].rstrip("\r"))
        except csv.Error:
            raise _Refused(f"{path} row {header_at}: the header cannot be split into cells.") from None
        known = schema.get("properties", {})
        unknown = [str(position) for position, name in enumerate(header, 1) if name and name not in known]
        if unknown:
            # the column is named by its position only: the line may be any file's first line
            raise _Refused(
                f"{path} row {header_at}: column {', '.join(unknown)} of the header is not a known "
                f"column (the columns are {', '.join(known)})."
            )
    with tempfile.TemporaryDirectory(prefix="rapidrelease-watch-") as private:
        # parsed from a private copy of the bytes read, so what is checked is what was read
        copy = Path(private) / path.name
        copy.write_bytes(data)
        problems: list[str] = []
        sheet = read_sheet(copy, schema, problems)
    if sheet is None:
        first = problems[0].replace(str(copy), str(path)) if problems else f"{path} cannot be read."
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise _Refused(first + more)
    return dataclasses.replace(sheet, path=path)


def _data_file(
    folder: Path, inbox: Path, units: Sheet, row_line: int, column: str, name: str, unit_id: str
) -> Path:
    """The file a data path names, resolved; refused unless it is a plain file inside the inbox."""
    where = f"{units.path} row {row_line}, column '{column}'"
    outside = (
        f"{where}: {shown_cell(name)} is not inside the inbox {inbox}; data paths are relative to the "
        "delivery folder, and no link in them may lead out of the inbox."
    )
    if os.path.isabs(name):
        raise _Refused(outside)
    joined = os.path.join(folder, name)
    # NAME_MAX and PATH_MAX of Linux file systems: a longer path can only ever fail
    if any(len(os.fsencode(part)) > 255 for part in name.split("/")) or len(os.fsencode(joined)) > 4095:
        raise _Refused(f"{where}: {shown_cell(name)} {_os_problem(OSError(errno.ENAMETOOLONG, ''))}.")
    if not _inside(os.path.normpath(joined), str(inbox)):
        raise _Refused(outside)
    try:
        real = os.path.realpath(joined, strict=True)
    except FileNotFoundError:
        raise _Waiting(f"{os.path.realpath(joined)} (unit {unit_id}) has not arrived") from None
    except OSError as exc:
        raise _Refused(f"{where}: {shown_cell(name)} {_os_problem(exc)}.") from None
    if not _inside(real, str(inbox)):
        raise _Refused(outside)
    if not stat.S_ISREG(os.stat(real).st_mode):
        raise _Refused(f"{where}: {shown_cell(name)} is not a plain file.")
    return Path(real)


def examine_delivery(folder: Path, inbox: Path, stable_seconds: float, now: float | None = None) -> Delivery:
    """Decide whether a delivery folder is complete; reads no file that may still be being written.

    Never raises for what the delivery holds: anything wrong with it is a refusal in one sentence.
    """
    inbox = Path(os.path.realpath(inbox))
    # the folder's own name is not followed: a link there is refused below
    folder = Path(os.path.realpath(Path(folder).parent)) / Path(folder).name
    now = time.time() if now is None else now
    seen: list[tuple[Path, os.stat_result]] = []
    found: dict[str, Any] = {}

    def result(state: str, reason: str = "") -> Delivery:
        return Delivery(folder, state, reason, _fingerprint(inbox, seen), **found)

    def stable(path: Path, info: os.stat_result) -> str | None:
        seen.append((path, info))
        if now - _last_change(info) < stable_seconds:
            return f"{path} changed less than {stable_seconds:g} s ago (it may still be being written)"
        return None

    try:
        if os.path.islink(folder):
            raise _Refused(_LINKED_FOLDER.format(folder=folder))
        data = {name: _manifest_bytes(folder / name, stable) for name in (LOT_MANIFEST, UNITS_MANIFEST)}
        lots = _manifest_sheet(folder / LOT_MANIFEST, data[LOT_MANIFEST], "lots.schema.yaml")
        units = _manifest_sheet(folder / UNITS_MANIFEST, data[UNITS_MANIFEST], "units.schema.yaml")
        if len(lots.rows) != 1 or not lots.rows[0].cells.get("lot_id"):
            raise _Refused(f"{lots.path} must hold exactly one lot row with a lot_id.")
        lot_id = found["lot_id"] = lots.rows[0].cells["lot_id"]
        if lot_id.casefold() in RESULTS_FILES:
            # results/<lot>/ would be the lots index's own file, and every later run would stop on it
            raise _Refused(
                f"{lots.path} row {lots.rows[0].line}, column 'lot_id': {shown_cell(lot_id)} is the name of "
                "a file in the results folder, not a lot id."
            )
        if not units.rows:
            raise _Refused(f"{units.path} lists no units.")
        for row in units.rows:
            if row.cells["lot_id"] != lot_id:
                named = shown_cell(row.cells["lot_id"])
                raise _Refused(f"{units.path} row {row.line} names lot {named}, not {lot_id!r}.")
        files: dict[str, Path] = {}
        for row in units.rows:
            for column in DATA_COLUMNS:
                name = row.cells.get(column, "")
                if not name or name in files:
                    continue
                real = _data_file(folder, inbox, units, row.line, column, name, row.cells["unit_id"])
                why = stable(real, os.stat(real)) or _run_folder_waiting(real, inbox)
                if why:
                    raise _Waiting(why)
                files[name] = real
    except _Waiting as waiting:
        return result(WAITING, str(waiting))
    except _Refused as refused:
        return result(REFUSED, str(refused))
    except (OSError, ValueError) as exc:
        # a last guard: whatever the delivery holds, it is refused alone and the scan goes on
        problem = _os_problem(exc) if isinstance(exc, OSError) else "holds a name no file system accepts"
        return result(REFUSED, f"{folder}: something it names {problem}.")
    found.update(lots=lots, units=units, files=files)
    return result(READY)


def content_digest(delivery: Delivery) -> str:
    """SHA-256 of what a ready delivery holds: its manifests' bytes and each data file's SHA-256.

    Files are taken by the path its units give them, and neither the folder's name nor any time
    goes in, so a delivery renamed, or copied into the inbox again, has the same digest.
    """
    assert delivery.lots is not None and delivery.units is not None
    digest = hashlib.sha256()
    digest.update(
        f"{LOT_MANIFEST}\0{delivery.lots.sha256}\n{UNITS_MANIFEST}\0{delivery.units.sha256}\n".encode()
    )
    for name in sorted(delivery.files):
        digest.update(f"{name}\0{sha256_file(delivery.files[name])}\n".encode())
    return digest.hexdigest()


_LINKED_FOLDER = (
    "{folder} is a symbolic link; a delivery must be a folder in the inbox itself, and a link is not "
    "followed."
)


def scan_inbox(inbox: Path, stable_seconds: float, now: float | None = None) -> list[Delivery]:
    """Every delivery folder of the inbox (a folder holding a manifest), examined, in name order.

    A link in the inbox that leads to a folder holding a manifest is refused as a delivery, unread;
    other links (to an instrument's run folder, say) are no delivery and are passed over.
    """
    inbox = Path(os.path.realpath(inbox))
    deliveries: list[Delivery] = []
    for name in sorted(os.listdir(inbox)):
        folder = inbox / name
        if name.startswith("."):
            continue
        # lexists looks through a link only to see whether a manifest is there, reading nothing
        if not any(os.path.lexists(folder / manifest) for manifest in (LOT_MANIFEST, UNITS_MANIFEST)):
            continue
        if os.path.islink(folder):
            try:
                fingerprint = _fingerprint(inbox, [(folder, os.lstat(folder))])
            except OSError:
                continue  # removed since the folder was listed; the next scan sees what is there
            deliveries.append(Delivery(folder, REFUSED, _LINKED_FOLDER.format(folder=folder), fingerprint))
        elif os.path.isdir(folder):
            deliveries.append(examine_delivery(folder, inbox, stable_seconds, now))
    return deliveries
