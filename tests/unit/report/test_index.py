"""The lots index: every lot with status, time to result and links; control charts; site comparability."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from rapidrelease.config.run import load_run_config
from rapidrelease.errors import RapidReleaseError
from rapidrelease.records import AttributeResult, Release
from rapidrelease.report.index import render_index, write_index
from rapidrelease.report.page import plotly_js

from support.configs import unit_result, write_project
from support.releases import sealed_release

HOSTILE = "<script>alert('x')</script> \"Lösung\" / ü"


Lots = Callable[[Path], list[tuple[Path, Release]]]


@pytest.fixture
def lots(make_release: Callable[..., Release], make_attribute: Callable[..., AttributeResult]) -> Lots:
    """``lots(folder)``: twenty release candidates of two sites and a late lot of a high dose, each
    with the path of its release.json in ``folder``."""

    def lot(lot_id: str, site: str, day: int, status: str, dose: float | None, hours: float = 20.0):
        dose_per_kg = make_attribute(
            "dose_per_kg",
            dose,
            "INCONCLUSIVE" if dose is None else "PASS",
            description="Viable CAR+ T cells per kg",
            unit="cells/kg",
            comparison="between",
            lower=1.0e6,
            upper=1.0e7,
            limit=None,
        )
        return make_release(
            lot_id,
            status,
            [dose_per_kg],
            product=HOSTILE,
            site=site,
            collected_at=f"2026-11-{day:02d}T08:00:00+01:00",
            audit={"timeline": {"hours_to_result": hours, "hours_left": 24.0 - hours}},
        )

    def made(folder: Path) -> list[tuple[Path, Release]]:
        doses = [5.0e6, 5.2e6, 4.9e6, 5.1e6, 5.0e6, 5.3e6, 4.8e6, 5.1e6, 5.0e6, 5.2e6] * 2
        releases = [
            lot(f"A-{i:02d}", "SITE-A" if i % 2 else "SITE-B", i + 1, "RELEASE_CANDIDATE", d)
            for i, d in enumerate(doses)
        ]
        releases.append(lot("LATE-01", "SITE-B", 25, "NOT_RELEASABLE", 9.5e6, hours=27.5))
        return [(folder / r.lot.lot_id / "release.json", r) for r in releases]

    return made


def test_every_lot_is_listed_in_order_of_collection_with_links_and_time_to_result(
    lots: Lots, tmp_path: Path
) -> None:
    page = render_index(lots(tmp_path), tmp_path, {"margins": {"dose_per_kg": 1.0e6}})
    table = page[page.index("<h1>Lots</h1>") : page.index("<h2>Attributes across lots</h2>")]
    assert table.index("<b>A-00</b>") < table.index("<b>A-19</b>") < table.index("<b>LATE-01</b>")
    assert "<a href='LATE-01/report.html'>report</a>" in table
    assert "<a href='LATE-01/release.json'>release.json</a>" in table
    # 27.5 h to result against a 24-hour window: the overrun is stated
    assert "1 d 3 h 30 min <span class='result FAIL'>overrun 3 h 30 min</span>" in table
    assert "21 lots: 20 release candidates, 1 not releasable, 0 inconclusive." in page


def test_a_lot_beyond_three_sigma_of_the_decided_lots_is_counted_and_sites_are_compared(
    lots: Lots, tmp_path: Path
) -> None:
    page = render_index(lots(tmp_path), tmp_path, {"margins": {"dose_per_kg": 0.5e6}})
    # the not-releasable lot is in the baseline too (no assignable cause), and still beyond the limits
    assert "<b>dose_per_kg</b>: 21 baseline lots, 1 beyond the limits" in page
    assert (
        "every decided lot (release candidate or not releasable, whatever its specification result)"
        not in page
    )
    assert (
        "every decided lot (release candidate or not releasable), whatever its specification result" in page
    )
    comparison = page[page.index("<h2>Site-to-site comparability</h2>") :]
    assert "SITE-A (n = 10," in comparison and "SITE-B (n = 11," in comparison
    # the late lot's high dose spreads SITE-B's values: equivalence within 5×10⁵ cells/kg is not shown
    assert "<span class='result FAIL'>not shown equivalent</span>" in comparison
    without = render_index(lots(tmp_path)[:-1], tmp_path, {"margins": {"dose_per_kg": 0.5e6}})
    assert "<span class='result PASS'>equivalent</span>" in without
    assert 'id="trend-dose_per_kg"' in page
    assert page.count(plotly_js()[:200]) == 1


def test_fewer_than_20_baseline_lots_are_charted_without_limits_said_plainly(
    lots: Lots, tmp_path: Path
) -> None:
    page = render_index(lots(tmp_path)[:12], tmp_path, {"excluded_lots": {"A-03": "deviation DEV-7"}})
    assert (
        "<b>dose_per_kg</b>: no control limits: Phase I limits need at least 20 baseline lots, "
        "and 11 have a value</li>"
    ) in page
    assert "less the lots excluded for an assignable cause (A-03: deviation DEV-7)" in page


def test_names_from_the_sheets_are_text_never_markup(lots: Lots, tmp_path: Path) -> None:
    page = render_index(lots(tmp_path), tmp_path, None)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &#34;Lösung&#34; / ü" in page
    assert "no equivalence margin is configured" in page


def test_write_index_refuses_an_unreadable_release_json_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "L1" / "release.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(RapidReleaseError, match=re.escape(f"{bad}: is not a complete JSON record")):
        write_index([bad], tmp_path / "index.html", None)
    assert not (tmp_path / "index.html").exists()


def test_write_index_writes_the_page_beside_the_lot_folders(project: Path) -> None:
    run = load_run_config(write_project(project))
    paths = [project / lot / "release.json" for lot in ("DEMO-001", "DEMO-002")]
    for path in paths:
        sealed_release(path, run, path.parent.name, [unit_result(path.parent.name)])
    write_index(paths, project / "index.html", {})
    page = (project / "index.html").read_text(encoding="utf-8")
    assert "<a href='DEMO-002/report.html'>report</a>" in page
    assert page.count("Release candidate") >= 2


def test_write_index_refuses_a_release_json_edited_after_it_was_written(project: Path) -> None:
    run = load_run_config(write_project(project))
    path = project / "DEMO-001" / "release.json"
    sealed_release(path, run, "DEMO-001", [unit_result(metrics={})])
    path.write_text(path.read_text(encoding="utf-8").replace('"INCONCLUSIVE"', '"RELEASE_CANDIDATE"', 1))
    with pytest.raises(RapidReleaseError, match=re.escape(f"{path}: its content does not match its seal")):
        write_index([path], project / "index.html", {})
    assert not (project / "index.html").exists()
