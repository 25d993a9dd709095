"""What every page shares: the Jinja2 templates they are rendered from, figures, and how numbers read.

Every page is one self-contained HTML file: the style sheet inline and plotly.js embedded once in
the head (``templates/base.html.j2``), so that it makes no network request and opens from a USB
stick. The templates are rendered with autoescape on, so every text that comes from a sheet, a file
or a keyword is shown as text, never read as markup; the only markup a page takes from Python is
plotly.js and the figures, serialised by plotly, whose JSON escapes ``<``, ``>`` and ``/`` so that
no text can close the script it sits in. A name a template does not know is an error
(``StrictUndefined``), not an empty cell; None is shown as nothing.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeGuard

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup
from plotly.offline import get_plotlyjs

__all__ = [
    "STATUS_TEXT",
    "amount",
    "count",
    "dom_id",
    "duration",
    "figure_div",
    "is_number",
    "num",
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


def figure_div(fig: go.Figure, div_id: str) -> Markup:
    """A plotly figure as a ``<div class='plot'>`` that uses the page's one copy of plotly.js."""
    div = pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": False},
    )
    return Markup("<div class='plot'>{}</div>").format(Markup(div))


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
    num=num, count=count, amount=amount, duration=duration, status_text=lambda s: STATUS_TEXT.get(s, s)
)


def render_page(template: str, **context: Any) -> str:
    """The page ``templates/<template>`` renders from ``context``, with plotly.js for its figures."""
    return _TEMPLATES.get_template(template).render(plotly_js=Markup(get_plotlyjs()), **context)
