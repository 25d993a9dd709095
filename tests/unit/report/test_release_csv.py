"""The decisions as CSV for a LIMS: the figures a QA reviewer checks, read back by Python's csv module."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from rapidrelease.records import write_record
from rapidrelease.report.index import write_index
from rapidrelease.report.release_csv import COLUMNS, write_release_csv

from support.releases import DEMO_001_VIABILITY, DEMO_002_CAR, STERILITY_NOT_DETECTED, demo_release

DEMO_002 = demo_release(
    "DEMO-002", [DEMO_001_VIABILITY, DEMO_002_CAR, STERILITY_NOT_DETECTED], "NOT_RELEASABLE"
)


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def test_a_failing_attribute_carries_its_value_interval_and_the_events_behind_it(tmp_path: Path) -> None:
    write_release_csv(DEMO_002, tmp_path / "release.csv")
    rows = {row["attribute"]: row for row in _read(tmp_path / "release.csv")}
    assert list(rows) == ["viability", "car_of_cd3", "sterility"]  # specification order
    car = rows["car_of_cd3"]
    assert (car["lot"], car["lot_status"], car["site"]) == ("DEMO-002", "NOT_RELEASABLE", "SITE-B")
    assert (car["value"], car["unit"], car["criterion"], car["result"]) == ("8.9", "%", "≥ 15 %", "FAIL")
    assert car["reason"] == "8.9 % < 15 %, so ≥ 15 % is not met."
    assert float(car["ci_low"]) == 8.533490411752334 and float(car["ci_high"]) == 9.31842788224987
    assert (car["numerator_population"], car["numerator_count"]) == (
        "Cells/Singlets/Live/CD3pos/CARpos",
        "1807",
    )
    assert (car["denominator_population"], car["denominator_count"]) == (
        "Cells/Singlets/Live/CD3pos",
        "20262",
    )
    # the value a reviewer recomputes from the events behind it, to the specification's one decimal
    assert round(100 * int(car["numerator_count"]) / int(car["denominator_count"]), 1) == float(car["value"])
    sterility = rows["sterility"]
    assert (sterility["value"], sterility["result"], sterility["unit_id"]) == ("NOT_DETECTED", "PASS", "STER")
    assert sterility["unit"] == sterility["ci_low"] == sterility["numerator_count"] == ""


def test_a_reason_with_commas_quotes_and_a_line_break_round_trips(tmp_path: Path) -> None:
    reason = 'Control "NC-1", read again,\nstill 3 CFU/mL; see "deviation, 12"'
    odd = dataclasses.replace(DEMO_002_CAR, reason=reason, criterion="≥ 15 %, of CD3+")
    write_release_csv(demo_release("DEMO-002", [odd], "NOT_RELEASABLE"), tmp_path / "release.csv")
    (row,) = _read(tmp_path / "release.csv")
    assert row["reason"] == reason and row["criterion"] == "≥ 15 %, of CD3+"
    raw = (tmp_path / "release.csv").read_bytes()
    assert raw.endswith(b"\r\n") and b'"Control ""NC-1"", read again,\nstill' in raw  # RFC 4180
    assert [p.name for p in tmp_path.iterdir()] == ["release.csv"]  # no temporary file left behind


def test_releases_csv_holds_every_lot_in_order_of_collection(tmp_path: Path) -> None:
    demo_001 = demo_release("DEMO-001", [DEMO_001_VIABILITY, STERILITY_NOT_DETECTED], "RELEASE_CANDIDATE")
    later = dataclasses.replace(
        DEMO_002, lot=dataclasses.replace(DEMO_002.lot, collected_at="2026-11-26T08:00:00+01:00")
    )
    paths = []
    for release in (later, demo_001):  # given out of order
        path = tmp_path / release.lot.lot_id / "release.json"
        write_record(path, release)
        paths.append(path)
    write_index(paths, tmp_path / "index.html", None, csv_path=tmp_path / "releases.csv")
    rows = _read(tmp_path / "releases.csv")
    assert [(r["lot"], r["attribute"], r["result"]) for r in rows] == [
        ("DEMO-001", "viability", "PASS"),
        ("DEMO-001", "sterility", "PASS"),
        ("DEMO-002", "viability", "PASS"),
        ("DEMO-002", "car_of_cd3", "FAIL"),
        ("DEMO-002", "sterility", "PASS"),
    ]
