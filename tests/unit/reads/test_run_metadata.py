"""A sequencing run's clock from its run folder: Illumina RunInfo.xml, RTAComplete.txt, ONT final_summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from rapidrelease.reads.run_metadata import MAX_LEVELS, sequencing_run_clock

SITE = timezone(timedelta(hours=1))


def _run_info(folder: Path, date: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "RunInfo.xml").write_text(
        f'<?xml version="1.0"?>\n<RunInfo Version="6"><Run Id="R" Number="1"><Flowcell>F</Flowcell>'
        f"<Instrument>VH00123</Instrument><Date>{date}</Date></Run></RunInfo>\n"
    )


def _reads_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "S_R1.fastq.gz"
    path.write_bytes(b"")
    return path


def test_nanopore_final_summary_gives_start_and_stop_with_their_offset(tmp_path: Path) -> None:
    (tmp_path / "final_summary_PAW21164_80d49020.txt").write_text(
        "instrument=PCA100290\nflow_cell_id=PAW21164\n"
        "started=2024-07-17T17:36:44.188174+01:00\n"
        "acquisition_stopped=2024-07-22T07:36:44.417267+01:00\n"
        "processing_stopped=2024-07-22T07:47:07.094144+01:00\n"
    )
    clock = sequencing_run_clock(_reads_in(tmp_path / "fastq_pass" / "barcode01"), UTC)
    assert clock is not None
    assert clock.start == datetime(2024, 7, 17, 16, 36, 44, 188174, tzinfo=UTC)
    assert clock.end == datetime(2024, 7, 22, 6, 36, 44, 417267, tzinfo=UTC)
    assert clock.source == "ONT final_summary_PAW21164_80d49020.txt"


def test_illumina_iso_date_is_the_start_and_rta_complete_the_end_on_the_site_clock(tmp_path: Path) -> None:
    _run_info(tmp_path, "2026-11-25T12:20:03Z")
    (tmp_path / "RTAComplete.txt").write_text("11/25/2026,22:05:41.220,Illumina RTA 3.10.30\n")
    reads = _reads_in(tmp_path / "Data" / "Intensities" / "BaseCalls")  # three folders down
    clock = sequencing_run_clock(reads, SITE)
    assert clock is not None
    assert clock.start == datetime(2026, 11, 25, 12, 20, 3, tzinfo=UTC)
    # RTAComplete.txt has no offset: the instrument's local clock, the site's (UTC+1)
    assert clock.end == datetime(2026, 11, 25, 21, 5, 41, tzinfo=UTC)
    assert clock.source == "Illumina RunInfo.xml and RTAComplete.txt"


def test_illumina_us_style_clock_reads_pm_hours(tmp_path: Path) -> None:
    _run_info(tmp_path, "11/25/2026 1:20:03 PM")
    clock = sequencing_run_clock(_reads_in(tmp_path), SITE)
    assert clock is not None and clock.end is None
    assert clock.start == datetime(2026, 11, 25, 13, 20, 3, tzinfo=SITE)
    assert clock.source == "Illumina RunInfo.xml"


def test_a_date_without_a_time_of_day_is_no_clock(tmp_path: Path) -> None:
    _run_info(tmp_path, "261125")  # MiSeq/HiSeq yymmdd: the day only
    assert sequencing_run_clock(_reads_in(tmp_path), SITE) is None


def test_run_folder_further_up_than_the_search_goes_is_not_used(tmp_path: Path) -> None:
    _run_info(tmp_path, "2026-11-25T12:20:03Z")
    deep = tmp_path
    for level in range(MAX_LEVELS + 1):
        deep = deep / f"level{level}"
    assert sequencing_run_clock(_reads_in(deep), SITE) is None
    assert sequencing_run_clock(_reads_in(deep.parent), SITE) is not None


def test_unreadable_metadata_gives_no_clock_and_no_error(tmp_path: Path) -> None:
    (tmp_path / "RunInfo.xml").write_text("<RunInfo><Run><Date>2026-11-25T12:20")  # truncated
    (tmp_path / "final_summary_x.txt").write_text("started=yesterday\n")
    assert sequencing_run_clock(_reads_in(tmp_path), SITE) is None
    (tmp_path / "final_summary_x.txt").write_bytes(b"started=2026-11-25T12:00:00Z\n" + b"#" * (1 << 20))
    assert sequencing_run_clock(_reads_in(tmp_path), SITE) is None  # too large to be run metadata
