"""The network benchmark page: one self-contained HTML file in the report's look.

Rendered from ``report/templates/benchmark.html.j2`` by the report's own page machinery
(:func:`rapidrelease.report.page.render_page`: the report's style sheet, plotly.js's basic bundle
embedded once, autoescape), so it opens offline and prints like a lot report. Its figures use only
scatter and bar traces, which that bundle draws.
"""

from __future__ import annotations

from collections import defaultdict

import plotly.graph_objects as go
from markupsafe import Markup

from rapidrelease.report.page import dom_id, figure_div, num, render_page
from rapidrelease.share.combine import Benchmark, PooledGroup

__all__ = ["position_figure", "pass_rate_figure", "contaminants_figure", "render_benchmark"]

_PROGRAM = "#1f5fa8"
_POOLED = "#56606b"


def position_figure(group: PooledGroup) -> go.Figure:
    """Each program of a platform's attribute against the pooled distribution: its median with its
    5–95 % range (whiskers) and its mean (diamond), or, from a private package without quantiles,
    its mean ± SD; the pooled mean as a line and mean ± 2 SD as a band."""
    fig = go.Figure()
    labels = [p.program for p in group.programs]
    with_quantiles = [p for p in group.programs if p.quantiles.get("q50") is not None]
    if with_quantiles:
        fig.add_trace(
            go.Scatter(
                x=[p.program for p in with_quantiles],
                y=[p.quantiles["q50"] for p in with_quantiles],
                mode="markers",
                name="median, 5–95 %",
                marker={"color": _PROGRAM, "size": 10, "symbol": "line-ew-open", "line": {"width": 3}},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [p.quantiles["q95"] - p.quantiles["q50"] for p in with_quantiles],  # type: ignore[operator]
                    "arrayminus": [p.quantiles["q50"] - p.quantiles["q05"] for p in with_quantiles],  # type: ignore[operator]
                    "color": _PROGRAM,
                },
            )
        )
    means = [p for p in group.programs if p.mean is not None]
    fig.add_trace(
        go.Scatter(
            x=[p.program for p in means],
            y=[p.mean for p in means],
            mode="markers",
            name="mean (± SD without quantiles)",
            marker={"color": "#b3261e", "size": 9, "symbol": "diamond"},
            # a program without quantiles (a private package) shows its spread as ± SD
            error_y={
                "type": "data",
                "array": [0.0 if p.quantiles.get("q50") is not None else p.sd or 0.0 for p in means],
                "color": "#b3261e",
            },
            text=[f"n = {p.n_values}, z = {num(p.z)}" for p in means],
        )
    )
    shapes = []
    if group.mean is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": group.mean,
                "y1": group.mean,
                "line": {"color": _POOLED, "dash": "dash"},
            }
        )
        if group.sd:
            shapes.append(
                {
                    "type": "rect",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": group.mean - 2 * group.sd,
                    "y1": group.mean + 2 * group.sd,
                    "fillcolor": _POOLED,
                    "opacity": 0.08,
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
    fig.update_layout(
        title={"text": f"{group.attribute} ({group.unit or 'ratio'})", "font": {"size": 13}},
        width=420,
        height=300,
        margin={"l": 60, "r": 10, "t": 36, "b": 40},
        shapes=shapes,
        showlegend=False,
        xaxis={"categoryorder": "array", "categoryarray": labels},
        plot_bgcolor="white",
    )
    return fig


def pass_rate_figure(platform: str, groups: list[PooledGroup]) -> go.Figure:
    """A platform's pooled pass rate per attribute (%) with its Wilson 95 % interval."""
    rated = [g for g in groups if g.pass_rate is not None and g.pass_interval is not None]
    fig = go.Figure(
        go.Bar(
            x=[g.attribute for g in rated],
            y=[100 * g.pass_rate for g in rated],  # type: ignore[operator]
            marker={"color": "#2f7d46"},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [100 * (g.pass_interval[1] - g.pass_rate) for g in rated],  # type: ignore[index,operator]
                "arrayminus": [100 * (g.pass_rate - g.pass_interval[0]) for g in rated],  # type: ignore[index,operator]
                "color": "#1d232a",
            },
            text=[f"{g.n_pass}/{g.n_judged}" for g in rated],
        )
    )
    fig.update_layout(
        title={"text": f"Pass rate, {platform}", "font": {"size": 13}},
        width=860,
        height=320,
        margin={"l": 60, "r": 10, "t": 36, "b": 90},
        yaxis={"range": [0, 105], "title": "% of judged lots"},
        plot_bgcolor="white",
    )
    return fig


def contaminants_figure(benchmark: Benchmark) -> go.Figure:
    """Lots in which each organism was detected, by platform (stacked)."""
    fig = go.Figure()
    by_platform: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for c in benchmark.contaminants:
        by_platform[c.platform].append((c.organism, c.lots))
    for platform, rows in sorted(by_platform.items()):
        fig.add_trace(go.Bar(x=[o for o, _ in rows], y=[n for _, n in rows], name=platform))
    fig.update_layout(
        title={"text": "Organisms detected by the sterility assays", "font": {"size": 13}},
        barmode="stack",
        width=860,
        height=340,
        margin={"l": 60, "r": 10, "t": 36, "b": 110},
        yaxis={"title": "lots"},
        plot_bgcolor="white",
    )
    return fig


def render_benchmark(benchmark: Benchmark) -> str:
    """The benchmark page's HTML."""
    platforms: dict[str, list[PooledGroup]] = defaultdict(list)
    for group in benchmark.groups:
        platforms[group.platform].append(group)
    sections = []
    for index, (platform, groups) in enumerate(sorted(platforms.items())):
        positions: list[Markup] = [
            figure_div(position_figure(g), f"position-{index}-{dom_id(g.attribute)}")
            for g in groups
            if g.kind != "category" and g.mean is not None
        ]
        rates = [g for g in groups if g.pass_rate is not None]
        sections.append(
            {
                "platform": platform,
                "groups": groups,
                "pass_rates": figure_div(pass_rate_figure(platform, groups), f"pass-{index}")
                if rates
                else None,
                "positions": positions,
            }
        )
    contaminants = (
        figure_div(contaminants_figure(benchmark), "contaminants") if benchmark.contaminants else None
    )
    return render_page(
        "benchmark.html.j2",
        benchmark=benchmark,
        sections=sections,
        contaminants_plot=contaminants,
    )
