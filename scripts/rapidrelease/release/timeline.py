"""The lot's 24-hour window: collection → acquisition → analysis → the decision deadline.

A CAR-T lot is released fresh, so the result must be available within ``deadline_hours`` of
sampling. The timeline puts on one clock the moments the decision depends on:

- ``collected_at`` and the deadline, from the lot sheet and config.yaml;
- each unit's acquisition: for an FCS file the instrument's own $BTIM/$ETIM (or FCS 3.2
  $BEGINDATETIME/$ENDDATETIME); for a sequencing file the run's clock from the run folder's
  metadata (Illumina RunInfo.xml, ONT final_summary; :mod:`rapidrelease.reads.run_metadata`), and
  only without it the file's modification time, which a copy or checkout moves (FASTQ and BAM carry
  no acquisition clock);
- each unit's analysis, from the Snakemake benchmark files of the jobs that measured it (a job's
  start is its benchmark's modification time less its wall-clock seconds);
- the end of the evaluation, when release.json is written.

FCS clocks are local and carry no time zone; they are read in the time zone of ``collected_at``,
the site's, because the cytometer stands where the lot is tested. Everything is reported in UTC
with milliseconds, as the audit block's other times. The timeline holds wall-clock times of this
run, so it belongs to the audit block, the part of release.json that may differ between reruns.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from rapidrelease.config.run import MEASURED_DIR
from rapidrelease.reads.run_metadata import sequencing_run_clock
from rapidrelease.records import UnitSummary
from rapidrelease.release.audit import utc_timestamp

__all__ = ["lot_timeline", "unit_analysis_interval"]


def _aware(text: Any, zone: tzinfo) -> datetime | None:
    """An ISO 8601 time; one without an offset is taken to be in ``zone``. None if unparseable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _file_time(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def _benchmark_seconds(path: Path) -> float | None:
    """Wall-clock seconds of a Snakemake benchmark file (its column ``s``; the longest repeat)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    seconds = []
    for row in rows:
        try:
            value = float(row.get("s") or "nan")
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            seconds.append(value)
    return max(seconds) if seconds else None


def unit_analysis_interval(
    benchmarks_dir: Path, lot_id: str, unit_id: str, measured: str | None = None
) -> tuple[datetime | None, datetime | None, list[str]]:
    """Start and end (UTC) of the jobs that measured a unit, and the benchmark files they come from.

    The workflow writes ``benchmarks/<rule>/<lot>/<unit>.tsv`` for one-job steps and
    ``benchmarks/<rule>/<lot>/<unit>/<part>.tsv`` for a unit classified in parts; a sequencing unit's
    reads are classified and gathered once per run under their key ``measured``
    (``benchmarks/<rule>/_measured/<key>.tsv`` and ``.../<key>/<part>.tsv``).
    """
    folders = [f"{lot_id}/{unit_id}"] + ([] if measured is None else [f"{MEASURED_DIR}/{measured}"])
    files: list[Path] = []
    for folder in folders:
        files += sorted(Path(benchmarks_dir).glob(f"*/{folder}.tsv"))
        files += sorted(Path(benchmarks_dir).glob(f"*/{folder}/*.tsv"))
    starts: list[datetime] = []
    ends: list[datetime] = []
    for path in files:
        end, seconds = _file_time(path), _benchmark_seconds(path)
        if end is None or seconds is None:
            continue
        ends.append(end)
        starts.append(end - timedelta(seconds=seconds))
    return (min(starts) if starts else None), (max(ends) if ends else None), [str(f) for f in files]


def _file_acquisition(
    paths: Sequence[Path], zone: tzinfo
) -> tuple[datetime | None, datetime | None, str | None]:
    """Start, end and source of a unit's acquisition from its data files: the run's metadata where
    a run folder holds it (the earliest start and latest end over the files), else the files'
    modification times."""
    clocks = [clock for clock in (sequencing_run_clock(path, zone) for path in paths) if clock]
    if clocks:
        starts = [c.start for c in clocks if c.start is not None]
        ends = [c.end for c in clocks if c.end is not None]
        source = ", ".join(sorted({c.source for c in clocks}))
        return (min(starts) if starts else None), (max(ends) if ends else None), source
    times = [t for t in (_file_time(path) for path in paths) if t]
    if times:
        return min(times), max(times), "file modification time"
    return None, None, None


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else utc_timestamp(moment)


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 3)


def lot_timeline(
    lot_id: str,
    collected_at: datetime,
    deadline: datetime,
    units: Sequence[UnitSummary],
    evaluated_at: datetime,
    benchmarks_dir: Path | None = None,
    measured: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The lot's timeline (module docstring) from its unit records as release.json lists them.

    ``collected_at`` and ``deadline`` must be time-zone aware. Returns ``collected_at``,
    ``deadline``, ``units`` (per unit: ``acquired_start``/``acquired_end`` with their
    ``acquired_source``, ``analysis_start``/``analysis_end``), ``analysis_start``,
    ``analysis_end`` (the evaluation's end), ``hours_to_result`` (collection to analysis end) and
    ``hours_left`` (analysis end to the deadline; negative when the deadline was overrun).
    ``measured`` maps a sequencing unit's id to the key its reads were measured under.
    """
    zone = collected_at.tzinfo or UTC
    rows: list[dict[str, Any]] = []
    analysis_starts: list[datetime] = []
    for unit in units:
        acquisition = unit.acquisition
        start = _aware(acquisition.start if acquisition else None, zone)
        end = _aware(acquisition.end if acquisition else None, zone)
        source = "FCS keywords" if start is not None or end is not None else None
        if source is None:
            start, end, source = _file_acquisition([Path(i.path) for i in unit.inputs if i.path], zone)
        job_start = job_end = None
        if benchmarks_dir is not None:
            job_start, job_end, _ = unit_analysis_interval(
                benchmarks_dir, lot_id, unit.unit_id, (measured or {}).get(unit.unit_id)
            )
        if job_start is not None:
            analysis_starts.append(job_start)
        rows.append(
            {
                "unit_id": unit.unit_id,
                "assay": unit.assay,
                "role": unit.role,
                "acquired_start": _stamp(start),
                "acquired_end": _stamp(end),
                "acquired_source": source,
                "analysis_start": _stamp(job_start),
                "analysis_end": _stamp(job_end),
            }
        )
    analysis_start = min(analysis_starts) if analysis_starts else None
    return {
        "collected_at": utc_timestamp(collected_at),
        "deadline": utc_timestamp(deadline),
        "units": rows,
        "analysis_start": _stamp(analysis_start),
        "analysis_end": utc_timestamp(evaluated_at),
        "hours_to_result": _hours(evaluated_at - collected_at),
        "hours_left": _hours(deadline - evaluated_at),
    }
