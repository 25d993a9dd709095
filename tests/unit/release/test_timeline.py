"""The lot's 24-hour window: cytometer clocks, read-file times and Snakemake benchmarks on one clock."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rapidrelease.records import Acquisition, FileHash, UnitSummary
from rapidrelease.release.timeline import lot_timeline, unit_analysis_interval

COLLECTED = datetime.fromisoformat("2026-11-25T08:30:00+01:00")
DEADLINE = COLLECTED + timedelta(hours=24)
# Snakemake 9's benchmark header and one repeat of a 62.5-second job
BENCHMARK = (
    "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    "62.50\t0:01:02\t812.11\t1500.20\t800.00\t805.00\t10.00\t2.00\t95.00\t60.10\n"
)


def _write_benchmark(path: Path, finished: datetime, text: str = BENCHMARK) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (finished.timestamp(), finished.timestamp()))


def _unit(
    unit_id: str, assay: str, paths: tuple[str, ...] = (), acquisition: Acquisition | None = None
) -> UnitSummary:
    """A unit as release.json lists it: its input files and the instrument's clock, if any."""
    inputs = tuple(FileHash(p, None, None) for p in paths)
    return UnitSummary(unit_id, assay, "test", None, "ok", None, inputs, acquisition)


def _fcs_unit(unit_id: str, start: str, end: str) -> UnitSummary:
    return _unit(unit_id, "phenotype", ("/nonexistent.fcs",), Acquisition(start, end, "LSRFortessa"))


def test_cytometer_clock_is_read_in_the_collection_time_zone() -> None:
    evaluated = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    timeline = lot_timeline(
        "L1",
        COLLECTED,
        DEADLINE,
        [_fcs_unit("PHENO", "2026-11-25T09:41:12", "2026-11-25T09:41:27")],
        evaluated,
    )
    unit = timeline["units"][0]
    # 09:41:12 on a cytometer in the +01:00 site is 08:41:12 UTC
    assert (unit["acquired_start"], unit["acquired_end"]) == (
        "2026-11-25T08:41:12.000Z",
        "2026-11-25T08:41:27.000Z",
    )
    assert unit["acquired_source"] == "FCS keywords"
    assert timeline["collected_at"] == "2026-11-25T07:30:00.000Z"
    assert timeline["deadline"] == "2026-11-26T07:30:00.000Z"
    # collected 07:30 UTC, result 14:00 UTC: 6.5 h to result, 17.5 h left in the window
    assert (timeline["hours_to_result"], timeline["hours_left"]) == (6.5, 17.5)


def test_an_fcs_time_with_its_own_offset_keeps_it() -> None:
    timeline = lot_timeline(
        "L1",
        COLLECTED,
        DEADLINE,
        [_fcs_unit("PHENO", "2026-11-25T09:41:12-05:00", "2026-11-25T09:42:00-05:00")],
        DEADLINE,
    )
    assert timeline["units"][0]["acquired_start"] == "2026-11-25T14:41:12.000Z"


def test_an_overrun_deadline_gives_negative_hours_left() -> None:
    evaluated = DEADLINE + timedelta(hours=3, minutes=15)
    timeline = lot_timeline("L1", COLLECTED, DEADLINE, [], evaluated)
    assert timeline["hours_left"] == -3.25
    assert timeline["hours_to_result"] == 27.25
    assert timeline["analysis_start"] is None


def test_reads_without_a_clock_are_placed_at_their_files_modification_times(tmp_path: Path) -> None:
    r1, r2 = tmp_path / "S_R1.fastq.gz", tmp_path / "S_R2.fastq.gz"
    for path, moment in (
        (r1, datetime(2026, 11, 25, 12, 0, tzinfo=UTC)),
        (r2, datetime(2026, 11, 25, 12, 5, tzinfo=UTC)),
    ):
        path.write_bytes(b"")
        os.utime(path, (moment.timestamp(), moment.timestamp()))
    unit = _unit("STER", "sterility_reads", (str(r1), str(r2)))
    row = lot_timeline("L1", COLLECTED, DEADLINE, [unit], DEADLINE)["units"][0]
    assert (row["acquired_start"], row["acquired_end"]) == (
        "2026-11-25T12:00:00.000Z",
        "2026-11-25T12:05:00.000Z",
    )
    assert row["acquired_source"] == "file modification time"


def test_analysis_spans_every_job_of_a_unit_classified_in_parts(tmp_path: Path) -> None:
    end_1 = datetime(2026, 11, 25, 13, 0, 0, tzinfo=UTC)
    end_2 = datetime(2026, 11, 25, 13, 0, 30, tzinfo=UTC)
    gathered = datetime(2026, 11, 25, 13, 2, 0, tzinfo=UTC)
    _write_benchmark(tmp_path / "classify_reads_part/L1/STER/1.tsv", end_1)
    _write_benchmark(tmp_path / "classify_reads_part/L1/STER/2.tsv", end_2)
    _write_benchmark(tmp_path / "gather_reads_unit/L1/STER.tsv", gathered, BENCHMARK.replace("62.50", "4.00"))
    # another unit's and another lot's jobs are not this unit's analysis
    _write_benchmark(tmp_path / "measure_flow_unit/L1/STER-NC.tsv", gathered + timedelta(hours=1))
    _write_benchmark(tmp_path / "classify_reads_part/L2/STER/1.tsv", end_1 - timedelta(hours=5))
    start, end, files = unit_analysis_interval(tmp_path, "L1", "STER")
    assert start == end_1 - timedelta(seconds=62.5)
    assert end == gathered
    assert len(files) == 3

    unit = _unit("STER", "sterility_reads")
    timeline = lot_timeline("L1", COLLECTED, DEADLINE, [unit], gathered, tmp_path)
    assert timeline["analysis_start"] == "2026-11-25T12:58:57.500Z"
    assert timeline["units"][0]["analysis_end"] == "2026-11-25T13:02:00.000Z"


def test_an_unreadable_benchmark_leaves_the_analysis_time_unknown(tmp_path: Path) -> None:
    _write_benchmark(tmp_path / "measure_flow_unit/L1/PHENO.tsv", DEADLINE, "s\nnot-a-number\n")
    assert unit_analysis_interval(tmp_path, "L1", "PHENO")[:2] == (None, None)


def test_reads_in_an_illumina_run_folder_are_placed_at_the_runs_clock_not_the_files(tmp_path: Path) -> None:
    (tmp_path / "RunInfo.xml").write_text(
        "<RunInfo><Run Id='R' Number='1'><Date>2026-11-25T12:20:03Z</Date></Run></RunInfo>"
    )
    (tmp_path / "RTAComplete.txt").write_text("11/25/2026,22:05:41.220,Illumina RTA 3.10.30\n")
    fastq = tmp_path / "Data" / "Intensities" / "BaseCalls" / "S_R1.fastq.gz"
    fastq.parent.mkdir(parents=True)
    fastq.write_bytes(b"")
    copied = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a transfer twelve days later
    os.utime(fastq, (copied.timestamp(), copied.timestamp()))
    row = lot_timeline(
        "L1", COLLECTED, DEADLINE, [_unit("STER", "sterility_reads", (str(fastq),))], DEADLINE
    )["units"][0]
    assert (row["acquired_start"], row["acquired_end"]) == (
        "2026-11-25T12:20:03.000Z",
        "2026-11-25T21:05:41.000Z",  # the instrument's clock, read in the site's zone (UTC+1)
    )
    assert row["acquired_source"] == "Illumina RunInfo.xml and RTAComplete.txt"
