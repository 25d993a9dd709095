"""Figures draw names from sheets, templates and files as plain text: plotly reads tags in labels."""

from __future__ import annotations

from rapidrelease.report.figures import control_comparison_figure, gate_figure, timeline_figure, trend_figure
from rapidrelease.report.sections.timeline import Timeline, UnitTimes
from rapidrelease.report.trends import AttributeTrend, TrendPoint

HOSTILE = "<b>CAR+ & <i onmouseover='x'>T"  # no slash: a population's name is the last part of its path
SHOWN = "&lt;b&gt;CAR+ &amp; &lt;i onmouseover='x'&gt;T"


def test_a_gate_its_axes_and_populations_are_labelled_with_their_names_as_text() -> None:
    plot = {
        "gate": HOSTILE,
        "parent": HOSTILE,
        "kind": "rectangle",
        "x": [1.0, 2.0, 3.0],
        "y": [1.0, 2.0, 3.0],
        "member": [0, -1, 0],
        "populations": [
            {"population": f"Cells/{HOSTILE}", "count": 2, "parent_count": 3, "percent_parent": 66.7}
        ],
        "geometry": {"type": "rectangle", "bounds": [[0.5, 2.5], [0.5, 2.5]]},
        "axes": [{"label": HOSTILE, "scale": "linear"}, {"label": "SSC-A", "scale": "logicle"}],
    }
    fig = gate_figure(plot)
    assert fig.layout.title.text == f"{SHOWN}<br><sup>parent: {SHOWN}</sup>"
    assert fig.layout.xaxis.title.text == SHOWN
    assert fig.layout.annotations[0].text == f"<b>{SHOWN}</b> 2 / 3 (66.7 %)"
    assert HOSTILE not in fig.to_json()


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
