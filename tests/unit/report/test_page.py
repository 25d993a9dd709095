"""What every page shares: numbers as people read them, and templates that refuse what they do not know."""

from __future__ import annotations

import jinja2
import pytest
from markupsafe import Markup
from plotly import graph_objects as go

from rapidrelease.report.page import amount, count, dom_id, duration, figure_div, num, render_page


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
