"""Dates at the edge of the XNYS calendar (its first session is 1990-01-02): a range that starts
before it gets the sessions within it, as a first live run from the default start of 1990-01-01
asks (FINRA's settlement dates), instead of the calendar's DateOutOfBounds."""

from __future__ import annotations

from datetime import date

from sources.finra import settlement_dates
from transforms.calendar import bounds, sessions, week_end_session


def test_a_range_from_before_the_first_session():
    assert bounds()[0] == date(1990, 1, 2)
    # January 1990 began on a Monday, New Year's Day: 23 weekdays, 22 sessions
    january = sessions(date(1990, 1, 1), date(1990, 1, 31))["trade_date"].to_list()
    assert len(january) == 22 and january[0] == date(1990, 1, 2) and january[-1] == date(1990, 1, 31)
    assert week_end_session(date(1990, 1, 1)) == date(1990, 1, 5)  # that week's Friday
    # FINRA settles mid-month on the last session on or before the 15th (Monday 15 January 1990,
    # Thursday 15 February) and on the month's last session (Wednesday 31 January, Wednesday 28 February)
    assert settlement_dates(date(1990, 1, 1), date(1990, 2, 28)) == \
        [date(1990, 1, 15), date(1990, 1, 31), date(1990, 2, 15), date(1990, 2, 28)]
