"""The demo's synthetic history: sealed decisions the index can trust, enough of them for trends."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from statistics import mean, stdev

from rapidrelease.records import read_release
from rapidrelease.synthetic.demo.archive import N_ARCHIVED_LOTS
from rapidrelease.synthetic.demo.lots import DEMO_LOTS


def test_the_archive_holds_sealed_decisions_over_two_sites_before_the_demo_lots(demo_dir: Path) -> None:
    releases = [read_release(path) for path in sorted((demo_dir / "archive").glob("*/release.json"))]
    assert len(releases) == N_ARCHIVED_LOTS == 24
    demo_day = min(lot.acquisition_start for lot in DEMO_LOTS).date()
    assert all(datetime.fromisoformat(r.lot.collected_at).date() < demo_day for r in releases)
    sites = [r.lot.site for r in releases]
    assert sites.count("SITE-A") == sites.count("SITE-B") == 12
    statuses = [r.status for r in releases]
    # Phase I limits need 20 decided lots; a few failed, as a real history has
    assert statuses.count("RELEASE_CANDIDATE") + statuses.count("NOT_RELEASABLE") >= 20
    assert 3 <= statuses.count("NOT_RELEASABLE") <= 5
    failed = {a.name for r in releases for a in r.attributes if a.result == "FAIL"}
    assert {"car_of_cd3", "viability", "sterility"} <= failed
    # every unit is recorded without a data file: nothing of these lots was measured
    assert all(u.path is None and u.inputs == () for r in releases for u in r.units)
    assert all(r.audit["user"] == "synthetic" for r in releases)


def test_archived_values_spread_around_the_demo_lots_like_a_process(demo_dir: Path) -> None:
    releases = [read_release(path) for path in sorted((demo_dir / "archive").glob("*/release.json"))]
    values = {
        name: [
            float(a.evidence.measured_value)  # type: ignore[arg-type]
            for r in releases
            for a in r.attributes
            if a.name == name and a.result == "PASS"
        ]
        for name in ("viability", "car_of_cd3", "dose_per_kg")
    }
    # DEMO-001 measures 88.1 % viable, 37.7 % CAR+ and 5.5e6 cells/kg
    assert 83 <= mean(values["viability"]) <= 89 and 1.5 <= stdev(values["viability"]) <= 4.5
    assert 28 <= mean(values["car_of_cd3"]) <= 38 and 4 <= stdev(values["car_of_cd3"]) <= 10
    assert 3.5e6 <= mean(values["dose_per_kg"]) <= 7.5e6
