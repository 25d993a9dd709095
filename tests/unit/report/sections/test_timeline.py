"""The 24-hour window as release.json's audit holds it."""

from __future__ import annotations

from collections.abc import Callable

from rapidrelease.records import Release
from rapidrelease.report.sections.timeline import UnitTimes, timeline_of, timeline_section


def test_the_window_is_read_from_the_audit_with_every_units_times(
    make_release: Callable[..., Release],
) -> None:
    timeline = {
        "collected_at": "2026-11-25T08:10:00.000Z",
        "deadline": "2026-11-26T08:10:00.000Z",
        "units": [
            {
                "unit_id": "PHENO",
                "assay": "phenotype",
                "role": "test",
                "acquired_start": "2026-11-25T09:07:45.000Z",
                "acquired_end": "2026-11-25T09:08:02.000Z",
                "acquired_source": "FCS keywords",
                "analysis_start": None,
                "analysis_end": None,
            }
        ],
        "analysis_start": None,
        "analysis_end": "2026-11-26T10:10:00.000Z",
        "hours_to_result": 26.0,
        "hours_left": -2.0,
    }
    release = make_release("L", "INCONCLUSIVE", audit={"timeline": timeline})
    window = timeline_of(release)
    assert window is not None and (window.hours_to_result, window.hours_left) == (26.0, -2.0)
    assert window.units == (
        UnitTimes(
            "PHENO", "2026-11-25T09:07:45.000Z", "2026-11-25T09:08:02.000Z", "FCS keywords", None, None
        ),
    )
    section = timeline_section(release)
    assert section is not None and 'id="timeline"' in section.figure


def test_no_window_is_shown_without_a_timeline_or_its_hours(make_release: Callable[..., Release]) -> None:
    assert timeline_of(make_release("L", "INCONCLUSIVE")) is None
    no_hours = {"timeline": {"collected_at": "2026-11-25T08:10:00.000Z", "units": []}}
    assert timeline_section(make_release("L", "INCONCLUSIVE", audit=no_hours)) is None
