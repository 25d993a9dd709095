"""Figures draw names from sheets, templates and files as plain text: plotly reads tags in labels."""

from __future__ import annotations

from datetime import UTC, datetime

from rapidrelease.report.figures import control_comparison_figure, timeline_figure, trend_figure
from rapidrelease.report.sections.timeline import Timeline, UnitTimes
from rapidrelease.report.trends import AttributeTrend, TrendPoint

HOSTILE = "<b>CAR+ & <i onmouseover='x'>T"  # no slash: a population's name is the last part of its path
SHOWN = "&lt;b&gt;CAR+ &amp; &lt;i onmouseover='x'&gt;T"


def test_bars_timelines_and_trends_show_names_as_text() -> None:
    bars = control_comparison_figure("t", [HOSTILE], [1.0], [0.5], "RPM", ("test", "control"))
    assert list(bars.data[0].x) == [SHOWN]
    window = timeline_figure(
        Timeline(None, None, None, None, 1.0, 23.0, (UnitTimes(HOSTILE, None, None, None, None, None),))
    )
    assert list(window.layout.yaxis.categoryarray) == [SHOWN]
    point = TrendPoint(
        HOSTILE, HOSTILE, "2026-11-24T08:00:00+01:00", 1.0, "PASS", "INCONCLUSIVE", False, False
    )
    trend = trend_figure(AttributeTrend(HOSTILE, "", "%", (point,), None, "", ()))
    assert trend.data[0].name == SHOWN and HOSTILE not in trend.to_json()


def test_a_trend_chart_without_limits_says_why_under_its_title() -> None:
    point = TrendPoint(
        "L1", "SITE-A", "2026-11-24T08:00:00+01:00", 88.0, "PASS", "RELEASE_CANDIDATE", True, False
    )
    reason = "no control limits: Phase I limits need at least 20 baseline lots, and 1 has a value"
    chart = trend_figure(AttributeTrend("viability", "", "%", (point,), None, reason, ()))
    assert chart.layout.title.text == f"viability (%)<br><sup>{reason}</sup>"
    # no UCL/LCL lines are drawn
    assert not [s for s in chart.layout.shapes if s.line.dash == "dash"]


def test_the_timeline_draws_the_analysis_again_on_its_own_axis() -> None:
    unit = UnitTimes(
        "STER",
        "2026-11-25T12:20:03.000Z",
        "2026-11-25T21:05:41.000Z",
        "Illumina RunInfo.xml and RTAComplete.txt",
        "2026-12-07T09:00:00.000Z",
        "2026-12-07T09:01:00.000Z",
    )
    window = timeline_figure(
        Timeline(
            "2026-11-25T07:30:00.000Z",
            "2026-11-26T07:30:00.000Z",
            "2026-12-07T09:00:00.000Z",
            "2026-12-07T09:02:00.000Z",
            289.5,
            -265.5,
            (unit,),
        )
    )
    # the lower panel spans the two minutes from the first job to the result (5 % either side),
    # where the upper one spans twelve days
    low, high = (datetime.fromisoformat(str(x)) for x in window.layout.xaxis2.range)
    assert (low, high) == (
        datetime(2026, 12, 7, 8, 59, 54, tzinfo=UTC),
        datetime(2026, 12, 7, 9, 2, 6, tzinfo=UTC),
    )
    assert {trace.name for trace in window.data if trace.xaxis == "x2"} == {"analysed", "result available"}
