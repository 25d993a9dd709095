"""When a sequencing run acquired its reads: the instrument's run metadata beside the read files.

FASTQ and BAM carry no acquisition clock, and a file's modification time is when it was last
written or copied (demultiplexing, a transfer, a checkout), often days after the run. The
instruments write the run's clock into the run folder, which holds the reads in a subfolder:

- Oxford Nanopore (MinKNOW): ``final_summary_*.txt``, ``key=value`` lines, ``started`` and
  ``acquisition_stopped`` as ISO 8601 with the offset;
- Illumina: ``RunInfo.xml``, ``<Run><Date>`` — ISO 8601 (NextSeq 1000/2000, NovaSeq X) or
  ``M/D/YYYY h:mm:ss AM`` (RTA 3) — the run's start; ``RTAComplete.txt``, when its text starts with
  a date and time (``11/1/2012,17:23:45.123,Illumina RTA 1.12.4``), its end. The older ``yymmdd``
  date has no time of day, so it is no clock and is not used.

The run folder is looked for in the read file's folder and up to :data:`MAX_LEVELS` folders above
(``<run>/Data/Intensities/BaseCalls/*.fastq.gz`` is three). A time without an offset is the
instrument's local clock, read in the caller's time zone (the site's). Anything unreadable gives
None, never an error: the acquisition time documents a run, it does not change its reads.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

__all__ = ["MAX_LEVELS", "RunClock", "sequencing_run_clock"]

MAX_LEVELS = 3
"""Folders above the read file's own folder searched for the run's metadata."""

_MAX_METADATA_BYTES = 1 << 20  # run metadata files are a few kB; a larger one is not one
_SLASHED = re.compile(
    r"\s*(\d{1,2})/(\d{1,2})/(\d{4})[ ,]+(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?\s*([AaPp][Mm])?"
)


@dataclass(frozen=True)
class RunClock:
    """A run's acquisition: ``start`` and ``end`` (aware; either may be None) and ``source``, the
    metadata file they were read from, as the report names it."""

    start: datetime | None
    end: datetime | None
    source: str


def _text(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > _MAX_METADATA_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _iso(text: str | None, zone: tzinfo) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _slashed(text: str | None, zone: tzinfo) -> datetime | None:
    """``M/D/YYYY h:mm:ss [AM|PM]`` (Illumina's US-style clock), or None."""
    match = _SLASHED.match(text or "")
    if match is None:
        return None
    month, day, year, hour, minute, second = (int(g) for g in match.groups()[:6])
    meridiem = (match.group(7) or "").upper()
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "PM" else 0)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None


def _nanopore(folder: Path, zone: tzinfo) -> RunClock | None:
    for path in sorted(folder.glob("final_summary*.txt")):
        text = _text(path)
        if text is None:
            continue
        fields = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
        start = _iso(fields.get("started"), zone)
        end = _iso(fields.get("acquisition_stopped"), zone)
        if start is not None or end is not None:
            return RunClock(start, end, f"ONT {path.name}")
    return None


def _illumina(folder: Path, zone: tzinfo) -> RunClock | None:
    text = _text(folder / "RunInfo.xml")
    if text is None:
        return None
    try:
        date = ElementTree.fromstring(text).findtext("Run/Date")
    except ElementTree.ParseError:
        return None
    start = _iso(date, zone) if date and "-" in date else _slashed(date, zone)
    end = _slashed(_text(folder / "RTAComplete.txt"), zone)
    if start is None and end is None:
        return None
    return RunClock(start, end, "Illumina RunInfo.xml" + (" and RTAComplete.txt" if end else ""))


def sequencing_run_clock(read_path: Path, zone: tzinfo) -> RunClock | None:
    """The acquisition of the run that wrote ``read_path``, from the nearest run folder's metadata
    (module docstring), or None when no readable metadata holds a clock.

    ``zone`` is the time zone of a time written without an offset (the site's).
    """
    folder = Path(read_path).parent
    for _ in range(MAX_LEVELS + 1):
        clock = _nanopore(folder, zone) or _illumina(folder, zone)
        if clock is not None:
            return clock
        if folder.parent == folder:
            break
        folder = folder.parent
    return None
