"""Plotly figures of the evidence: controls beside their tubes, the lot's 24-hour window, and
control charts across lots (gates are drawn without plotly, :mod:`.gate_plots`).

Plotly reads tags (``<b>``, ``<a href=…>``) and entities in every label it draws, titles, legends and
category ticks alike; a name from a sheet, a template or a file enters a label through
:func:`_plain`, so that it is drawn as the text it is.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rapidrelease.report.trends import AttributeTrend

if TYPE_CHECKING:  # the timeline section draws its view with this module's figures
    from rapidrelease.report.sections.timeline import Timeline, UnitTimes

__all__ = ["control_comparison_figure", "timeline_figure", "trend_figure"]

_OUTSIDE = "#9aa3ad"
_INSIDE = ["#d1495b", "#2e86ab", "#3b8d4f", "#e09f3e"]
_GATE_LINE = "#111111"


def _plain(text: object) -> str:
    """``text`` as a plotly label that shows it literally."""
    return html.escape(str(text), quote=False)


def control_comparison_figure(
    title: str,
    names: list[str],
    test: list[float],
    control: list[float],
    unit: str,
    labels: tuple[str, str],
    errors: list[tuple[float, float] | None] | None = None,
    line: tuple[float, str] | None = None,
) -> go.Figure:
    """Bars of a tube's values next to its control's, per metric (potency against the unstimulated
    tube, microbes per mL against sterile medium); ``errors`` are the tube's 95 % intervals and
    ``line`` a horizontal mark (value, label), e.g. the limit of detection. Every text is plain."""
    fig = go.Figure()
    names = [_plain(n) for n in names]
    error_y = None
    if errors is not None:
        error_y = {
            "type": "data",
            "symmetric": False,
            "array": [0.0 if e is None else e[1] - v for e, v in zip(errors, test, strict=True)],
            "arrayminus": [0.0 if e is None else v - e[0] for e, v in zip(errors, test, strict=True)],
        }
    fig.add_trace(go.Bar(x=names, y=test, name=_plain(labels[0]), marker_color=_INSIDE[0], error_y=error_y))
    fig.add_trace(go.Bar(x=names, y=control, name=_plain(labels[1]), marker_color=_OUTSIDE))
    if line is not None:
        fig.add_hline(y=line[0], line_dash="dash", line_color=_GATE_LINE, annotation_text=_plain(line[1]))
    fig.update_layout(
        title={"text": _plain(title), "font": {"size": 13}},
        barmode="group",
        width=max(430, 120 * len(names) + 160),
        height=380,
        margin={"l": 60, "r": 10, "t": 50, "b": 60},
        template="simple_white",
        legend={"orientation": "h", "y": -0.18},
    )
    fig.update_yaxes(title_text=_plain(unit), rangemode="tozero")
    return fig


def _utc(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def timeline_figure(timeline: Timeline) -> go.Figure:
    """The lot's 24-hour window (``audit.timeline`` of release.json) drawn on UTC time axes.

    The upper panel holds the whole window: one row per unit, its acquisition (cytometer clock, run
    metadata or file time) and its analysis as bars, the collection and the deadline as vertical
    lines and the evaluation's end as a marker. The analysis takes minutes of a window of a day or
    more, a sliver up there, so a lower panel draws it again on its own axis, from its first job to
    the result.
    """
    rows = timeline.units
    names = [_plain(r.unit_id) for r in rows]
    end = _utc(timeline.analysis_end)
    analysed = [
        (name, _utc(r.analysis_start), _utc(r.analysis_end)) for name, r in zip(names, rows, strict=True)
    ]
    analysed = [(name, a, b) for name, a, b in analysed if a is not None or b is not None]
    zoom = bool(analysed) and end is not None
    fig = make_subplots(
        rows=2 if zoom else 1,
        cols=1,
        row_heights=[0.6, 0.4] if zoom else None,
        vertical_spacing=0.16,
        subplot_titles=("24-hour window (UTC)", "analysis, from its first job to the result (UTC)")
        if zoom
        else ("24-hour window (UTC)",),
    )

    def bars(
        interval: Callable[[UnitTimes], tuple[str | None, str | None]], label: str, colour: str, row: int
    ) -> None:
        xs: list[Any] = []
        ys: list[Any] = []
        for name, unit in zip(names, rows, strict=True):
            start, stop = (_utc(moment) for moment in interval(unit))
            if start is None and stop is None:
                continue
            start = start or stop
            stop = stop or start
            xs += [start, stop, None]
            ys += [name, name, None]
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=row == 1,
                    line={"color": colour, "width": 9},
                    marker={"size": 7, "color": colour},
                ),
                row=row,
                col=1,
            )

    def result(row: int) -> None:
        if end is not None and names:
            fig.add_trace(
                go.Scatter(
                    x=[end] * len(names),
                    y=names,
                    mode="markers",
                    name="result available",
                    legendgroup="result",
                    showlegend=row == 1,
                    marker={"symbol": "diamond", "size": 9, "color": _GATE_LINE},
                ),
                row=row,
                col=1,
            )

    bars(lambda r: (r.acquired_start, r.acquired_end), "acquired", _INSIDE[1], 1)
    bars(lambda r: (r.analysis_start, r.analysis_end), "analysed", _INSIDE[2], 1)
    result(1)
    for text, label, colour in (
        (timeline.collected_at, "collected", _OUTSIDE),
        (timeline.deadline, "deadline", _INSIDE[0]),
    ):
        moment = _utc(text)
        if moment is not None:
            # add_vline's annotation cannot take a datetime on every plotly version; a shape and an
            # annotation on the panel's own axes can
            fig.add_shape(
                type="line",
                x0=moment,
                x1=moment,
                y0=0,
                y1=1,
                xref="x",
                yref="y domain",
                line={"color": colour, "dash": "dash", "width": 2},
            )
            fig.add_annotation(
                x=moment,
                y=1.0,
                xref="x",
                yref="y domain",
                yanchor="bottom",
                text=label,
                showarrow=False,
                font={"color": colour, "size": 12},
            )
    if zoom:
        assert end is not None
        bars(lambda r: (r.analysis_start, r.analysis_end), "analysed", _INSIDE[2], 2)
        result(2)
        first = min(moment for _, a, b in analysed for moment in (a, b) if moment is not None)
        margin = max((end - first) * 0.05, timedelta(seconds=5))
        fig.update_xaxes(range=[first - margin, end + margin], row=2, col=1)
        fig.update_yaxes(type="category", categoryarray=list(reversed(names)), row=2, col=1)
    panel = 34 * len(names) + 60
    fig.update_layout(
        width=1000,
        height=max(220, panel + 140) + (panel + 60 if zoom else 0),
        margin={"l": 110, "r": 20, "t": 60, "b": 50},
        template="simple_white",
        legend={"orientation": "h", "y": -0.12 if zoom else -0.2},
    )
    fig.update_annotations(font_size=13, selector={"text": "24-hour window (UTC)"})
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=list(reversed(names)))
    return fig


_SITE_COLOURS = ["#2e86ab", "#e09f3e", "#3b8d4f", "#8e5ea2", "#d1495b", "#5c6b73"]


def trend_figure(
    trend: AttributeTrend, spec_limits: tuple[float | None, float | None] = (None, None)
) -> go.Figure:
    """An individuals control chart of one attribute across lots in time order, one colour per site.

    Baseline lots are filled markers, others open; a point beyond the ±3σ limits is ringed in red.
    Without limits (too few baseline lots) the subtitle says why. ``spec_limits`` (lower, upper)
    of the specification are drawn dotted where given.
    """
    fig = go.Figure()
    lots = [_plain(p.lot_id) for p in trend.points]
    sites = sorted({p.site for p in trend.points})
    for i, site in enumerate(sites):
        points = [p for p in trend.points if p.site == site]
        colour = _SITE_COLOURS[i % len(_SITE_COLOURS)]
        fig.add_trace(
            go.Scatter(
                x=[_plain(p.lot_id) for p in points],
                y=[p.value for p in points],
                mode="markers",
                name=_plain(site or "no site"),
                text=[_plain(f"{p.lot_id} · {p.status} · {p.collected_at}") for p in points],
                hovertemplate="%{text}<br>%{y}<extra></extra>",
                marker={
                    "size": 10,
                    "color": colour,
                    "symbol": ["circle" if p.baseline else "circle-open" for p in points],
                    "line": {
                        "width": [3 if p.beyond_limits else 1 for p in points],
                        "color": [_INSIDE[0] if p.beyond_limits else colour for p in points],
                    },
                },
            )
        )
    fig.add_trace(
        go.Scatter(
            x=lots,
            y=[p.value for p in trend.points],
            mode="lines",
            line={"color": _OUTSIDE, "width": 1},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    if trend.limits is not None:
        for value, label, dash in (
            (trend.limits.upper, "UCL", "dash"),
            (trend.limits.mean, "mean", "solid"),
            (trend.limits.lower, "LCL", "dash"),
        ):
            fig.add_hline(
                y=value,
                line_dash=dash,
                line_color=_GATE_LINE,
                line_width=1,
                annotation_text=f"{label} {value:.4g}",
                annotation_position="right",
            )
    for value, label in zip(spec_limits, ("spec lower", "spec upper"), strict=True):
        if value is not None:
            fig.add_hline(
                y=value,
                line_dash="dot",
                line_color=_INSIDE[0],
                line_width=1,
                annotation_text=f"{label} {value:.4g}",
                annotation_position="top left",
            )
    title = _plain(trend.name + (f" ({trend.unit})" if trend.unit else ""))
    if trend.limits is None and trend.limits_reason:
        # said on the chart itself, so that a chart without limits is not read as one in control
        title += f"<br><sup>{_plain(trend.limits_reason)}</sup>"
    fig.update_layout(
        title={
            "text": title,
            "font": {"size": 13},
        },
        width=600,
        height=340,
        margin={"l": 60, "r": 90, "t": 50, "b": 70},
        template="simple_white",
        legend={"orientation": "h", "y": -0.3},
    )
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=lots)
    return fig
