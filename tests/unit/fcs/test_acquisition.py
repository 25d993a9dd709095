"""Acquisition date and time keywords, parsed leniently ($DATE, $BTIM, $ETIM, FCS 3.2 date-times)."""

from __future__ import annotations

import datetime as dt

import pytest

from rapidrelease.fcs.acquisition import (
    acquisition_interval,
    parse_fcs_date,
    parse_fcs_datetime,
    parse_fcs_time,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24-NOV-2026", dt.date(2026, 11, 24)),  # FCS 3.1
        ("24-Nov-2026", dt.date(2026, 11, 24)),
        ("2026-Nov-24", dt.date(2026, 11, 24)),
        ("11/24/2026", dt.date(2026, 11, 24)),
        ("24/11/2026", dt.date(2026, 11, 24)),  # 24 cannot be a month
        ("2026-11-24", dt.date(2026, 11, 24)),
        ("24.11.2026", dt.date(2026, 11, 24)),
        ("11-Nov-09", dt.date(2009, 11, 11)),  # FCS 2.0, Beckman Coulter FC 500
        ("19-May-15", dt.date(2015, 5, 19)),  # FCS 2.0, CellQuest Pro
        (" 03-Feb-06 ", dt.date(2006, 2, 3)),
        ("24-November-2026", dt.date(2026, 11, 24)),
    ],
)
def test_dates_in_the_forms_instruments_write(text, expected):
    assert parse_fcs_date(text) == expected


@pytest.mark.parametrize("text", [None, "", "31-FEB-2026", "24-Foo-2026", "yesterday", "13/13/2026"])
def test_unparseable_dates_are_none(text):
    assert parse_fcs_date(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("19:57:40", dt.time(19, 57, 40)),
        ("20:15:43.27", dt.time(20, 15, 43, 270000)),  # FCS 3.1 hundredths
        ("20:15:43:20", dt.time(20, 15, 43, 333333)),  # FCS 2.0/3.0 sixtieths (FlowCal's expected value)
        ("14:29:01:34", dt.time(14, 29, 1, 566667)),  # BD Accuri C6
        ("10:00", dt.time(10, 0)),
        ("9:05:01", dt.time(9, 5, 1)),
    ],
)
def test_times_with_hundredths_or_sixtieths(text, expected):
    assert parse_fcs_time(text) == expected


@pytest.mark.parametrize("text", [None, "", "25:00:00", "12:61:00", "12:00:00:75", "noon"])
def test_unparseable_times_are_none(text):
    assert parse_fcs_time(text) is None


def test_fcs32_date_times_with_and_without_offset():
    assert parse_fcs_datetime("2026-11-24T10:15:00") == dt.datetime(2026, 11, 24, 10, 15)
    with_offset = parse_fcs_datetime("2026-11-24T10:15:00+01:00")
    assert with_offset.utcoffset() == dt.timedelta(hours=1)
    assert parse_fcs_datetime("24-NOV-2026 10:15") is None


def test_acquisition_from_date_and_times():
    start, end = acquisition_interval({"$DATE": "27-JUL-2015", "$BTIM": "19:57:40", "$ETIM": "20:00:16"})
    assert (start, end) == (dt.datetime(2015, 7, 27, 19, 57, 40), dt.datetime(2015, 7, 27, 20, 0, 16))


def test_acquisition_past_midnight_ends_the_next_day():
    start, end = acquisition_interval({"$DATE": "31-DEC-2026", "$BTIM": "23:59:30", "$ETIM": "00:01:10"})
    assert end - start == dt.timedelta(seconds=100)
    assert end.date() == dt.date(2027, 1, 1)


def test_fcs32_date_times_win_and_missing_parts_give_none():
    keywords = {
        "$DATE": "24-NOV-2026",
        "$BTIM": "10:00:00",
        "$BEGINDATETIME": "2026-11-24T09:59:59.5",
        "$ENDDATETIME": "garbled",
        "$ETIM": "10:05:00",
    }
    assert acquisition_interval(keywords) == (
        dt.datetime(2026, 11, 24, 9, 59, 59, 500000),
        dt.datetime(2026, 11, 24, 10, 5),
    )
    assert acquisition_interval({"$BTIM": "10:00:00"}) == (None, None)
    assert acquisition_interval({"$DATE": "24-NOV-2026", "$ETIM": "x"}) == (None, None)


def test_past_midnight_of_the_last_representable_day_is_none_not_an_overflow():
    # Found by fuzzing: $DATE 31-Dec-9999 with $ETIM before $BTIM raised OverflowError out of
    # describe_fcs (rapidrelease fcs-info, flow measure) instead of leaving the end unknown.
    start, end = acquisition_interval({"$DATE": "31-DEC-9999", "$BTIM": "23:59:30", "$ETIM": "00:01:10"})
    assert start == dt.datetime(9999, 12, 31, 23, 59, 30)
    assert end is None
