"""When a sample was acquired: $DATE, $BTIM, $ETIM and FCS 3.2 $BEGINDATETIME/$ENDDATETIME, leniently.

FCS 3.1 §3.2.19 writes $DATE as ``dd-mmm-yyyy`` and $BTIM/$ETIM as ``hh:mm:ss[.cc]`` (hundredths);
FCS 2.0/3.0 wrote ``hh:mm:ss[:tt]`` where ``tt`` counts 1/60 s, and FCS 2.0 ``dd-mmm-yy``.
Instruments also write ``yyyy-mmm-dd``, ``mm/dd/yyyy`` and ISO dates. FCS 3.2 adds
$BEGINDATETIME/$ENDDATETIME as ISO 8601 date-times. Anything unparseable gives None, never an error:
the acquisition time documents a sample, it does not change its events.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["parse_fcs_date", "parse_fcs_time", "parse_fcs_datetime", "acquisition_interval"]

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})[-\s]([A-Za-z]{3,9})[-\s](\d{4}|\d{2})")
_YEAR_MONTH_DAY_NAMED = re.compile(r"(\d{4})[-\s]([A-Za-z]{3,9})[-\s](\d{1,2})")
_YEAR_MONTH_DAY = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_SLASHED = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})")
_DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:([.:])(\d{1,6}))?")


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        # The same pivot as strptime's %y: 69-99 are 1900s, 00-68 are 2000s.
        year += 1900 if year >= 69 else 2000
    return year


def _month(text: str) -> int | None:
    return _MONTHS.get(text[:3].lower())


def _date(year: int, month: int | None, day: int) -> dt.date | None:
    if month is None:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_fcs_date(text: str | None) -> dt.date | None:
    """Parse a $DATE value; None when absent or unparseable.

    Accepts ``24-NOV-2026``/``24-Nov-26`` (FCS 3.1/2.0), ``2026-Nov-24``, ``2026-11-24``,
    ``11/24/2026`` (month first, unless the first number cannot be a month) and ``24.11.2026``.
    """
    if text is None:
        return None
    text = text.strip()
    if m := _DAY_MONTH_YEAR.fullmatch(text):
        return _date(_year(m[3]), _month(m[2]), int(m[1]))
    if m := _YEAR_MONTH_DAY_NAMED.fullmatch(text):
        return _date(int(m[1]), _month(m[2]), int(m[3]))
    if m := _YEAR_MONTH_DAY.fullmatch(text):
        return _date(int(m[1]), int(m[2]), int(m[3]))
    if m := _SLASHED.fullmatch(text):
        first, second = int(m[1]), int(m[2])
        month, day = (second, first) if first > 12 else (first, second)
        return _date(_year(m[3]), month, day)
    if m := _DOTTED.fullmatch(text):
        return _date(int(m[3]), int(m[2]), int(m[1]))
    return None


def parse_fcs_time(text: str | None) -> dt.time | None:
    """Parse a $BTIM/$ETIM value; None when absent or unparseable.

    ``hh:mm``, ``hh:mm:ss``, ``hh:mm:ss.cc`` (decimal fraction, FCS 3.1) and ``hh:mm:ss:tt`` (``tt``
    in 1/60 s, FCS 2.0/3.0; a ``tt`` of 60 or more is not a valid sixtieth and gives None).
    """
    if text is None:
        return None
    m = _TIME.fullmatch(text.strip())
    if m is None:
        return None
    hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
    microsecond = 0
    if m[4] == ".":
        microsecond = round(int(m[5]) * 10 ** (6 - len(m[5])))
    elif m[4] == ":":
        sixtieths = int(m[5])
        if sixtieths >= 60:
            return None
        microsecond = round(sixtieths * 1_000_000 / 60)
    if hour > 23 or minute > 59 or second > 59 or microsecond > 999_999:
        return None
    return dt.time(hour, minute, second, microsecond)


def parse_fcs_datetime(text: str | None) -> dt.datetime | None:
    """Parse an FCS 3.2 $BEGINDATETIME/$ENDDATETIME (ISO 8601, optional offset); None if unparseable."""
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def acquisition_interval(keywords: dict[str, str]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Start and end of acquisition from a data set's keywords, as date-times of the instrument's clock.

    $BEGINDATETIME/$ENDDATETIME (FCS 3.2) win when parseable; otherwise $DATE with $BTIM/$ETIM.
    An $ETIM earlier than $BTIM means acquisition ran past midnight, so the end is on the next day.
    """
    start = parse_fcs_datetime(keywords.get("$BEGINDATETIME"))
    end = parse_fcs_datetime(keywords.get("$ENDDATETIME"))
    date = parse_fcs_date(keywords.get("$DATE"))
    if date is not None:
        btim = parse_fcs_time(keywords.get("$BTIM"))
        etim = parse_fcs_time(keywords.get("$ETIM"))
        start_from_date = dt.datetime.combine(date, btim) if btim is not None else None
        end_from_date = dt.datetime.combine(date, etim) if etim is not None else None
        if start_from_date is not None and end_from_date is not None and end_from_date < start_from_date:
            try:
                end_from_date += dt.timedelta(days=1)
            except OverflowError:
                # past midnight of 31-Dec-9999 is beyond datetime's range: a garbled $DATE, unparseable
                end_from_date = None
        start = start if start is not None else start_from_date
        end = end if end is not None else end_from_date
    return start, end
