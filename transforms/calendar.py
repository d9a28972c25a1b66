"""Trading sessions from the XNYS exchange calendar (holidays and early closes come from
exchange-calendars, never from a hand-written list)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import exchange_calendars as xcals
import polars as pl

CALENDAR = "XNYS"


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(CALENDAR, start="1990-01-01")


def bounds() -> tuple[date, date]:
    """The first and last session the calendar knows (1990-01-02 to about a year from today)."""
    cal = _calendar()
    return cal.first_session.date(), cal.last_session.date()


def sessions(start: date, end: date) -> pl.DataFrame:
    """One row per XNYS session between ``start`` and ``end`` (inclusive; a range reaching past the
    calendar's ``bounds`` gets the sessions within them), with the session's calendar week (Monday)
    and whether it is the last session of its week and of its month."""
    cal = _calendar()
    first, last = bounds()
    start = max(start, first)
    # look a week past ``end`` so that the scheduled end of an unfinished week is known
    upto = min(date.fromordinal(end.toordinal() + 7), last)
    days = cal.sessions_in_range(start, upto) if start <= upto else []
    frame = pl.DataFrame({"trade_date": [d.date() for d in days]}, schema={"trade_date": pl.Date})
    return (
        frame.with_columns(week_start=pl.col("trade_date").dt.truncate("1w"))
        .with_columns(week_end=pl.col("trade_date").max().over("week_start"))
        .filter(pl.col("trade_date") <= end)
    )


def is_session(day: date) -> bool:
    """True when XNYS trades on ``day``."""
    return bool(_calendar().is_session(day))


def week_end_session(day: date) -> date | None:
    """The last XNYS session of ``day``'s calendar week (Thursday in a Good Friday week)."""
    first, last = bounds()
    monday = day.toordinal() - day.weekday()
    lo, hi = max(date.fromordinal(monday), first), min(date.fromordinal(monday + 6), last)
    days = _calendar().sessions_in_range(lo, hi) if lo <= hi else []
    return days[-1].date() if len(days) else None


def previous_session(day: date) -> date:
    """The last XNYS session strictly before ``day``."""
    return _calendar().date_to_session(day, direction="previous").date() if not is_session(day) \
        else _calendar().previous_session(day).date()
