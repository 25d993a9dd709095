"""The archive of earlier lots' decisions: read like the run's own, refused by name, counted in the trends."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from rapidrelease.records import read_release, seal_of
from rapidrelease.report.archive import read_archive
from rapidrelease.report.index import lots_summary, render_index, write_index
from rapidrelease.report.trends import attribute_trends


@pytest.fixture
def archive(project_root: Path, tmp_path: Path) -> Path:
    """A copy of the demo's synthetic history: 24 sealed release.json files, 23 of them decided."""
    folder = tmp_path / "archive"
    shutil.copytree(project_root / "resources" / "demo" / "archive", folder)
    return folder


def _baseline(page: str, attribute: str) -> str:
    found = re.search(rf"<b>{attribute}</b>: ([^<]*)</li>", page)
    assert found, attribute
    return found.group(1)


def test_archived_lots_are_listed_as_archived_and_count_in_limits_and_site_comparisons(
    archive: Path, tmp_path: Path
) -> None:
    read = read_archive(archive, [])
    assert len(read.releases) == 24 and read.refused == () and read.superseded == ()
    trends = {t.name: t for t in attribute_trends([r for _, r in read.releases])}
    # HIST-011 is INCONCLUSIVE (its sequencing run missed its LOD): not in the baseline
    assert trends["viability"].limits is not None and trends["viability"].limits.n_baseline == 23
    assert {(c.site_a, c.site_b, c.n_a, c.n_b) for c in trends["viability"].comparisons} == {
        ("SITE-A", "SITE-B", 12, 12)
    }
    write_index([], tmp_path / "index.html", {"archive": str(archive), "margins": {"viability": 5}})
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert _baseline(page, "viability").startswith("23 baseline lots")
    assert "0 lots: 0 release candidates, 0 not releasable, 0 inconclusive" in page
    assert "24 lots: 19 release candidates, 4 not releasable, 1 inconclusive" in page
    assert page.count("<span class='note'>archived</span>") == 24
    assert "report.html" not in page  # an archived lot has no report in this run
    assert "<a href='archive/HIST-006/release.json'>release.json</a>" in page
    assert re.search(r"<td class='num'>[0-9.e-]+</td><td><span class='result (PASS|FAIL)'>", page)


def test_a_tampered_archived_release_is_refused_by_name_and_left_out(archive: Path, tmp_path: Path) -> None:
    edited = archive / "HIST-006" / "release.json"
    edited.write_text(
        edited.read_text(encoding="utf-8").replace('"NOT_RELEASABLE"', '"RELEASE_CANDIDATE"', 1)
    )
    read = read_archive(archive, [])
    assert read.refused == (
        f"{edited}: its content does not match its seal: it was changed after it was written. "
        "It is left out of the index.",
    )
    assert "HIST-006" not in {r.lot.lot_id for _, r in read.releases}
    trends = {t.name: t for t in attribute_trends([r for _, r in read.releases])}
    assert trends["car_of_cd3"].limits is not None and trends["car_of_cd3"].limits.n_baseline == 22
    page = render_index([], tmp_path, None, read)
    assert f"<li>{edited}: its content does not match its seal" in page
    assert "HIST-006 <span class='note'>archived</span>" not in page


def test_an_archived_release_made_a_candidate_and_sealed_again_is_refused_as_inconsistent(
    archive: Path,
) -> None:
    # someone who knows the seal recomputes it: the record's own results still refuse the status
    path = archive / "HIST-006" / "release.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["status"] = "RELEASE_CANDIDATE"
    data["seal"] = {"sha256": seal_of(data)}
    path.write_text(json.dumps(data), encoding="utf-8")
    (refused,) = read_archive(archive, []).refused
    assert refused.startswith(f"{path}: it is a RELEASE_CANDIDATE although not every attribute passes")


def test_an_archived_release_in_another_lots_folder_is_refused(archive: Path) -> None:
    copied = archive / "HIST-099" / "release.json"
    copied.parent.mkdir()
    shutil.copy(archive / "HIST-002" / "release.json", copied)
    read = read_archive(archive, [])
    assert read.refused == (
        f"{copied}: is the decision of lot HIST-002, not of HIST-099 (its folder); "
        "it is left out of the index.",
    )
    assert [r.lot.lot_id for _, r in read.releases].count("HIST-002") == 1


def test_a_lot_in_both_the_run_and_the_archive_is_shown_from_the_run(archive: Path, tmp_path: Path) -> None:
    archived = read_release(archive / "HIST-003" / "release.json")
    current = dataclasses.replace(archived, lot=dataclasses.replace(archived.lot, site="SITE-C"))
    current_path = tmp_path / "results" / "HIST-003" / "release.json"
    read = read_archive(archive, [(current_path, current)])
    assert "HIST-003" not in {r.lot.lot_id for _, r in read.releases}
    assert read.superseded == (
        f"Lot HIST-003 is both in this run ({current_path}) and in the archive "
        f"({archive / 'HIST-003' / 'release.json'}): the index shows this run's decision.",
    )
    page = render_index([(current_path, current)], tmp_path, None, read)
    assert page.count("<b>HIST-003</b>") == 1
    assert "<a href='results/HIST-003/report.html'>report</a>" in page
    assert "1 lot: 1 release candidate, 0 not releasable, 0 inconclusive" in page
    assert "the index shows this run&#39;s decision" in page
    assert {p.site for t in attribute_trends([current]) for p in t.points} == {"SITE-C"}


def test_an_archive_folder_that_is_missing_is_said_not_silently_empty(tmp_path: Path) -> None:
    read = read_archive(tmp_path / "not-mounted", [])
    assert read.releases == ()
    assert read.refused == (
        f"{tmp_path / 'not-mounted'}: the archive of earlier lots (config.yaml trends.archive) "
        "is not a folder.",
    )


def test_the_lots_are_counted_in_the_singular_and_the_plural() -> None:
    assert lots_summary(["RELEASE_CANDIDATE", "NOT_RELEASABLE"]) == (
        "2 lots: 1 release candidate, 1 not releasable, 0 inconclusive"
    )
    assert lots_summary(["INCONCLUSIVE"]) == "1 lot: 0 release candidates, 0 not releasable, 1 inconclusive"
