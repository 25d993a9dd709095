"""What a LIMS imports and what a reviewer signs, from the session's demo run (no run of its own)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from rapidrelease.cli import main
from rapidrelease.release.signatures import SIGNATURES_FILE, read_signatures
from rapidrelease.report.release_csv import COLUMNS

pytestmark = pytest.mark.slow


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def test_each_lots_release_csv_and_releases_csv_hold_the_decisions(demo_run: Path):
    results = demo_run / "results"
    first, second = _rows(results / "DEMO-001" / "release.csv"), _rows(results / "DEMO-002" / "release.csv")
    # the release specification's 10 attributes, then the starting material's 2 (APHERESIS-DEMO)
    for rows in (first, second):
        assert [r["part"] for r in rows] == ["product"] * 10 + ["starting_material"] * 2
        assert [r["result"] for r in rows[10:]] == ["PASS", "PASS"]
    assert {(r["lot_status"], r["result"]) for r in first} == {("RELEASE_CANDIDATE", "PASS")}
    failed = [r for r in second if r["result"] != "PASS"]
    assert [(r["attribute"], r["value"], r["criterion"], r["result"]) for r in failed] == [
        ("car_of_cd3", "8.9", "≥ 15 %", "FAIL")
    ]
    (car,) = failed
    assert float(car["ci_low"]) < 8.9 < float(car["ci_high"])
    assert round(100 * int(car["numerator_count"]) / int(car["denominator_count"]), 1) == 8.9
    # every lot in one file, in order of collection, row for row as in the lots' own files
    assert _rows(results / "releases.csv") == first + second


def test_a_reviewer_signs_a_copy_of_a_demo_lot_and_its_report_shows_the_signature(
    demo_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    lot = tmp_path / "results" / "DEMO-001"
    lot.mkdir(parents=True)
    for name in ("release.json", "report.html"):  # in this order, so the report is the newer file
        shutil.copy2(demo_run / "results" / "DEMO-001" / name, lot / name)
    monkeypatch.chdir(demo_run)  # the data files' paths are relative to the site's folder
    sign = [
        "sign",
        "--results",
        str(tmp_path / "results"),
        "--lot",
        "DEMO-001",
        "--reviewer",
        "Grace Approver",
    ]
    assert main([*sign, "--meaning", "approved", "--role", "QA"]) == 0
    (status,) = read_signatures(lot / SIGNATURES_FILE, lot / "release.json")
    assert (
        status.valid
        and status.signature is not None
        and status.signature.release_status == "RELEASE_CANDIDATE"
    )
    assert (lot / "release.json").read_bytes() == (
        demo_run / "results" / "DEMO-001" / "release.json"
    ).read_bytes()
