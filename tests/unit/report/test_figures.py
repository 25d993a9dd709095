"""Figures draw names from sheets, templates and files as plain text: plotly reads tags in labels."""

from __future__ import annotations

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
