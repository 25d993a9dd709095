"""What every page shares: numbers as people read them, and templates that refuse what they do not know."""

from __future__ import annotations

import jinja2
import pytest
from markupsafe import Markup
from plotly import graph_objects as go

from rapidrelease.report.page import (
    BUNDLED_TRACES,
    amount,
    count,
    css_string,
    dom_id,
    duration,
    figure_div,
    num,
    plotly_js,
    render_page,
)


def test_numbers_read_as_measured_values_counts_and_amounts() -> None:
    assert (num(0.123456), num(1234567.0), num(16000.0), num(None), num(float("inf"))) == (
        "0.123",
        "1230000",  # 3 significant digits, without an exponent
        "16000",
        "—",
        "∞",
    )
    assert num("NOT_DETECTED") == "NOT_DETECTED"
    assert (count(20262), count(None, ""), count(2.5)) == ("20,262", "", "2.5")
    assert (amount(4.507, "CFU/mL"), amount(None, "CFU/mL"), amount(3, None)) == (
        "4.51 CFU/mL",
        "unknown",
        "3",
    )


def test_durations_and_element_ids() -> None:
    assert duration(27.5) == "1 d 3 h 30 min" and duration(-3.5) == "3 h 30 min"
    assert dom_id("STER NC/1 <b>") == "STER_NC_1__b_"


def test_a_figure_is_markup_with_its_id() -> None:
    div = figure_div(go.Figure(), "unit-PHENO-gate-0")
    assert (
        isinstance(div, Markup) and div.startswith("<div class='plot'>") and 'id="unit-PHENO-gate-0"' in div
    )


def test_a_template_given_too_little_fails_instead_of_showing_an_empty_cell() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render_page("lot_report.html.j2")


def test_a_figure_with_a_trace_the_embedded_plotly_bundle_lacks_is_refused() -> None:
    # plotly's basic bundle draws scatter, bar and pie: a histogram would be a blank box
    with pytest.raises(ValueError, match="histogram"):
        figure_div(go.Figure(go.Histogram(x=[1.0, 2.0])), "h")
    assert "scatter" in BUNDLED_TRACES and "bar" in BUNDLED_TRACES
    assert plotly_js().startswith("/**\n* plotly.js (basic - minified) v")


def test_a_print_header_is_a_css_string_no_name_can_end() -> None:
    hostile = 'Lot A · </style><script>x</script> "q" \\ ü'
    text = css_string(hostile)
    assert text.startswith('"') and text.endswith('"') and text.count('"') == 2
    assert "<" not in text and "\\3c " in text and "\\fc " in text and "Lot A " in text
