"""What every page shares: the Jinja2 templates they are rendered from, figures, and how numbers read.

Every page is one self-contained HTML file: the style sheet inline and plotly.js embedded once in
the head (``templates/base.html.j2``), so that it makes no network request and opens from a USB
stick. The plotly.js is its basic bundle (``vendor/plotly-basic.min.js``: scatter, bar and pie
traces, a quarter of the full one's size); :func:`figure_div` refuses a figure with another trace
type, which that bundle could not draw. The templates are rendered with autoescape on, so every
text that comes from a sheet, a file or a keyword is shown as text, never read as markup; the only
markup a page takes from Python is plotly.js, the plotly figures, serialised by plotly, whose JSON
escapes ``<``, ``>`` and ``/`` so that no text can close the script it sits in, the gate plots'
SVG, whose every text is escaped (:mod:`.gate_plots`), and the print header, a CSS string of hex
escapes (:func:`css_string`). A name a template does not know is an error
(``StrictUndefined``), not an empty cell; None is shown as nothing.
"""

from __future__ import annotations

import math
import re
from functools import cache
from importlib.resources import files
from typing import Any, TypeGuard

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

__all__ = [
    "BUNDLED_TRACES",
    "STATUS_TEXT",
    "amount",
    "count",
    "css_string",
    "dom_id",
    "duration",
    "figure_div",
    "is_number",
    "num",
    "plotly_js",
    "render_page",
]

STATUS_TEXT = {
    "RELEASE_CANDIDATE": "Release candidate",
    "NOT_RELEASABLE": "Not releasable",
    "INCONCLUSIVE": "Inconclusive",
}


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is an int or a float (true and false are not numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def num(value: object, none: str = "—") -> str:
    """A measured number to 3 significant digits (no exponent from 1,000 up); ``none`` for null;
    anything else as its text."""
    if value is None:
        return none
    if not is_number(value):
        return str(value)
    if not math.isfinite(value):
        return "∞" if value > 0 else "−∞" if value < 0 else none
    text = f"{value:.3g}"
    if "e" in text and abs(value) >= 1:
        text = f"{float(text):.0f}"
    return text


def count(value: object, none: str = "—") -> str:
    """A count with thousands separators; ``none`` for null."""
    if value is None:
        return none
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return num(value, none)


def amount(value: object, unit: object) -> str:
    """A number with its unit, or "unknown" for null."""
    if value is None:
        return "unknown"
    return f"{num(value)} {'' if unit is None else unit}".rstrip()


def duration(hours: float) -> str:
    """The magnitude of ``hours`` as ``17 h 05 min`` or ``6 d 12 h 00 min``."""
    minutes = round(abs(hours) * 60)
    days, minutes = divmod(minutes, 24 * 60)
    text = f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{days} d {text}" if days else text


def dom_id(text: str) -> str:
    """``text`` as part of an element id: every character but letters, digits, ``_`` and ``-`` an ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


# the trace types of plotly.js's basic bundle (its README: "Contains trace modules bar, pie and scatter")
BUNDLED_TRACES = frozenset({"scatter", "bar", "pie"})


@cache
def plotly_js() -> str:
    """The plotly.js every page embeds once: the basic bundle shipped in ``report/vendor``."""
    return (files("rapidrelease.report") / "vendor" / "plotly-basic.min.js").read_text(encoding="utf-8")


def figure_div(fig: go.Figure, div_id: str) -> Markup:
    """A plotly figure as a ``<div class='plot'>`` that uses the page's one copy of plotly.js.

    Raises ValueError for a trace type the embedded bundle does not hold (a blank plot otherwise).
    """
    foreign = {trace.type for trace in fig.data} - BUNDLED_TRACES
    if foreign:
        raise ValueError(f"plotly's basic bundle cannot draw {sorted(foreign)} traces (figure {div_id})")
    div = pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": False},
    )
    return Markup("<div class='plot'>{}</div>").format(Markup(div))


def css_string(text: object) -> Markup:
    """``text`` as a quoted CSS string (for ``content:`` in the page's style sheet): every character
    but letters, digits and spaces as a CSS hex escape (CSS Syntax 3, §4.3.7), so that no name can end
    the string, the rule or the ``<style>`` element it is in."""
    escaped = "".join(c if c.isascii() and (c.isalnum() or c == " ") else f"\\{ord(c):x} " for c in str(text))
    return Markup(f'"{escaped}"')


def _shown(value: object) -> object:
    # a missing value is an empty cell, as a person expects, not the word None
    return "" if value is None else value


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("rapidrelease.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    finalize=_shown,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_TEMPLATES.filters.update(
    css_string=css_string,
    num=num,
    count=count,
    amount=amount,
    duration=duration,
    status_text=lambda s: STATUS_TEXT.get(s, s),
)


def render_page(template: str, **context: Any) -> str:
    """The page ``templates/<template>`` renders from ``context``, with plotly.js for its figures."""
    return _TEMPLATES.get_template(template).render(plotly_js=Markup(plotly_js()), **context)
