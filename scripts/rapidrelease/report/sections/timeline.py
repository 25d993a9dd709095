"""The lot's 24-hour window: collection, each unit's acquisition and analysis, the result, the deadline.

release.json holds it in ``audit.timeline`` (:func:`rapidrelease.release.timeline.lot_timeline`):
moments in UTC, durations in hours.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from rapidrelease.records import Release
from rapidrelease.report.figures import timeline_figure
from rapidrelease.report.page import figure_div
from rapidrelease.report.sections.evidence import as_mapping, as_mappings, as_number, as_text

__all__ = ["Timeline", "TimelineSection", "UnitTimes", "timeline_of", "timeline_section"]


@dataclass(frozen=True)
class UnitTimes:
    """When a unit was acquired (``acquired_source``: FCS keywords or the files' times) and analysed."""

    unit_id: str
    acquired_start: str | None
    acquired_end: str | None
    acquired_source: str | None
    analysis_start: str | None
    analysis_end: str | None


@dataclass(frozen=True)
class Timeline:
    """The window: the result ``hours_to_result`` after collection, ``hours_left`` before the
    deadline (negative when it was overrun); ``analysis_end`` is when the result was available."""

    collected_at: str | None
    deadline: str | None
    analysis_start: str | None
    analysis_end: str | None
    hours_to_result: float
    hours_left: float
    units: tuple[UnitTimes, ...]


def timeline_of(release: Release) -> Timeline | None:
    """The lot's timeline, or None when its audit holds none (or one without its hours)."""
    block = as_mapping(release.audit.get("timeline"))
    to_result, left = as_number(block.get("hours_to_result")), as_number(block.get("hours_left"))
    if to_result is None or left is None:
        return None
    units = tuple(
        UnitTimes(
            unit_id=as_text(row.get("unit_id")) or "",
            acquired_start=as_text(row.get("acquired_start")),
            acquired_end=as_text(row.get("acquired_end")),
            acquired_source=as_text(row.get("acquired_source")),
            analysis_start=as_text(row.get("analysis_start")),
            analysis_end=as_text(row.get("analysis_end")),
        )
        for row in as_mappings(block.get("units"))
    )
    return Timeline(
        collected_at=as_text(block.get("collected_at")),
        deadline=as_text(block.get("deadline")),
        analysis_start=as_text(block.get("analysis_start")),
        analysis_end=as_text(block.get("analysis_end")),
        hours_to_result=float(to_result),
        hours_left=float(left),
        units=units,
    )


@dataclass(frozen=True)
class TimelineSection:
    """The window in words and as a table (``timeline``), and drawn (``figure``)."""

    timeline: Timeline
    figure: Markup


def timeline_section(release: Release) -> TimelineSection | None:
    """The lot's 24-hour window as the report shows it, or None when release.json has no timeline."""
    timeline = timeline_of(release)
    if timeline is None:
        return None
    return TimelineSection(timeline, figure_div(timeline_figure(timeline), "timeline"))
