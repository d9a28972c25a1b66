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


def sessions(start: date, end: date) -> pl.DataFrame:
    """One row per XNYS session between ``start`` and ``end`` (inclusive), with the session's
    calendar week (Monday) and whether it is the last session of its week and of its month."""
    cal = _calendar()
    # look a week past ``end`` so that the scheduled end of an unfinished week is known
    upto = min(date.fromordinal(end.toordinal() + 7), cal.last_session.date())
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
    monday = date.fromordinal(day.toordinal() - day.weekday())
    sunday = date.fromordinal(monday.toordinal() + 6)
    days = _calendar().sessions_in_range(monday, sunday)
    return days[-1].date() if len(days) else None


def previous_session(day: date) -> date:
    """The last XNYS session strictly before ``day``."""
    return _calendar().date_to_session(day, direction="previous").date() if not is_session(day) \
        else _calendar().previous_session(day).date()
