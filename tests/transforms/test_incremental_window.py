"""An incremental build of the per-symbol price marts equals the full build.

The real sample closes (SPY, IWM, QQQ, DIA, MDY since 1993) are built once from all of history
(the reference) and then, for a day in every year, from the window an incremental nightly run
reads (``flows.marts.window_start``) with the record close and the up streak carried from the
reference rows before the window, as the pipeline carries them from the marts it built before.
Every row from that day on must be the same. The carries must matter in some of these cases
(a record high before the window, an up streak running across the window's start), otherwise the
comparison would not test them.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.marts import window_start
from sources.sample import SampleSource
from transforms import market
from transforms.calendar import sessions

LAST = date(2026, 8, 21)


@pytest.fixture(scope="module")
def full():
    prices = pl.concat([b.frame for b in SampleSource().fetch("prices", LAST, None)], how="diagonal_relaxed")
    prices = prices.select("symbol", "trade_date", "close")
    first = prices["trade_date"].min()
    closes = market.session_closes(prices.lazy(), sessions(first, LAST).lazy()).collect()
    universe = pl.LazyFrame({"symbol": ["SPY", "IWM", "QQQ", "DIA", "MDY"], "name": ["s", "i", "q", "d", "m"],
                             "role": ["etf"] * 5})
    weekly = market.index_weekly(market.weekly_returns(closes.lazy())).collect()
    board = market.market_scoreboard(closes.lazy(), universe, weekly=weekly.lazy()).collect()
    return closes, universe, weekly, board


def _carries(weekly: pl.DataFrame, board: pl.DataFrame, start: date):
    highs = board.filter(pl.col("as_of_date") < start).group_by("symbol").agg(carried_high=pl.col("record_high").max())
    streaks = (weekly.filter(pl.col("week_end") >= start).sort("week_start").group_by("symbol")
               .agg(pl.col("week_start").first(), carried_streak=pl.col("up_streak").first()))
    return highs, streaks


def _incremental(full, since: date, carry: bool = True):
    closes, universe, weekly, board = full
    start = window_start(since)
    window = closes.filter(pl.col("trade_date") >= start).lazy()
    highs, streaks = _carries(weekly, board, start)
    w = market.index_weekly(market.weekly_returns(window), streak_carry=streaks.lazy() if carry else None)
    b = market.market_scoreboard(window, universe, weekly=w, record_carry=highs.lazy() if carry else None)
    return (w.filter(pl.col("week_end") >= since).collect(), b.filter(pl.col("as_of_date") >= since).collect())


def _same(a: pl.DataFrame, b: pl.DataFrame, keys: list[str]) -> bool:
    try:
        assert_frame_equal(a.sort(keys), b.sort(keys), check_exact=False, rel_tol=1e-12)
    except AssertionError:
        return False
    return True


def test_window_with_carries_equals_full_history(full):
    closes, universe, weekly, board = full
    carried_high_mattered = 0
    # early January (the window is then the 13 weeks before), March (1 December to 13 weeks
    # before, the shortest), July and December (the window starts on 1 December of the year before)
    days = [date(y, m, d) for y in range(1996, 2027) for m, d in ((1, 2), (1, 9), (3, 2), (7, 2), (12, 28))
            if date(y, m, d) <= LAST]
    for since in days:
        w, b = _incremental(full, since)
        ref_w = weekly.filter(pl.col("week_end") >= since)
        ref_b = board.filter(pl.col("as_of_date") >= since)
        assert ref_b.height and _same(b, ref_b, ["as_of_date", "symbol"]), f"scoreboard from {since}"
        assert _same(w, ref_w, ["week_end", "symbol"]), f"index_weekly from {since}"
        plain_w, plain_b = _incremental(full, since, carry=False)
        carried_high_mattered += not _same(plain_b.select("as_of_date", "symbol", "record_high"),
                                           ref_b.select("as_of_date", "symbol", "record_high"), ["as_of_date", "symbol"])
    # the comparison exercised the record carry (without it the window gives other answers)
    assert carried_high_mattered >= 3


def test_up_streak_carries_across_the_window_start(full):
    """A year of up weeks in a row does not occur in this history, so the streak carry is checked
    on every week of the window but its first (whose return needs the week before)."""
    closes, universe, weekly, board = full
    mattered = 0
    for year in range(1996, 2027):
        start = date(year, 1, 1)
        _, streaks = _carries(weekly, board, start)
        window = closes.filter(pl.col("trade_date") >= start).lazy()
        ref = weekly.filter(pl.col("week_end") >= start).select("week_end", "symbol", "up_streak")
        ref = ref.filter(pl.int_range(pl.len()).over("symbol", order_by="week_end") > 0)

        def streak(carry):
            w = market.index_weekly(market.weekly_returns(window), streak_carry=streaks.lazy() if carry else None)
            return w.select("week_end", "symbol", "up_streak").join(
                ref.lazy().select("week_end", "symbol"), on=["week_end", "symbol"]).collect()

        assert _same(streak(True), ref, ["week_end", "symbol"]), f"window from {start}"
        mattered += not _same(streak(False), ref, ["week_end", "symbol"])
    assert mattered >= 5  # up streaks running across 1 January, continued only with the carry


def test_window_start_covers_the_year_to_date_anchor_and_ten_weeks():
    assert window_start(date(2025, 6, 11)) == date(2024, 12, 1)
    assert window_start(date(2025, 12, 31)) == date(2024, 12, 1)
    # 13 weeks (91 days) before: 2025-01-02 - 91 days = 2024-10-03; 2025-03-02 - 91 days = 2024-12-01
    assert window_start(date(2025, 1, 2)) == date(2024, 10, 3)
    assert window_start(date(2025, 3, 2)) == date(2024, 12, 1)
    assert window_start(date(2025, 3, 3)) == date(2024, 12, 1)
