"""Market marts pinned to numbers computed independently from the real closes."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from real_closes import closes, last_close_before, week_closes

from transforms import market
from transforms.calendar import sessions

AS_OF = date(2025, 6, 11)


@pytest.fixture(scope="module")
def price_frame() -> pl.LazyFrame:
    rows = [
        {"symbol": s, "trade_date": d, "close": c}
        for s in ("IWM", "SPY")
        for d, c in closes(s).items()
    ]
    return pl.LazyFrame(rows, schema={"symbol": pl.String, "trade_date": pl.Date, "close": pl.Float64})


def _closes(frame: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    return market.session_closes(frame.filter(pl.col("trade_date") <= as_of), sessions(date(2024, 1, 1), as_of).lazy())


def _universe() -> pl.LazyFrame:
    return pl.LazyFrame({"symbol": ["IWM", "SPY"], "name": ["Russell 2000 ETF", "S&P 500 ETF"], "role": ["etf", "etf"]})


def test_iwm_scoreboard_row_as_of_2025_06_11(price_frame):
    iwm = closes("IWM")
    board = market.market_scoreboard(_closes(price_frame, AS_OF), _universe()).collect()
    row = board.filter((pl.col("as_of_date") == AS_OF) & (pl.col("symbol") == "IWM")).row(0, named=True)

    close = iwm[AS_OF]
    # the previous week ended on Friday 2025-06-06; the previous month on 2025-05-30; the year on 2024-12-31
    assert row["close"] == close
    assert row["wtd_return"] == pytest.approx(close / iwm[date(2025, 6, 6)] - 1, abs=1e-12)
    assert row["mtd_return"] == pytest.approx(close / iwm[date(2025, 5, 30)] - 1, abs=1e-12)
    assert row["ytd_return"] == pytest.approx(close / iwm[date(2024, 12, 31)] - 1, abs=1e-12)
    assert row["ytd_return"] == pytest.approx(close / last_close_before(iwm, date(2025, 1, 1)) - 1, abs=1e-12)

    # up weeks among the 10 ISO weeks ending with the as-of week, the current week by its sign so far
    weeks = week_closes({d: c for d, c in iwm.items() if d <= AS_OF})
    keys = sorted(weeks)
    last10 = keys[-10:]
    ups = sum(weeks[k][1] > weeks[keys[keys.index(k) - 1]][1] for k in last10)
    assert row["up_weeks_last_10"] == ups
    # record high: IWM's all-time closing high (November 2024) lies inside this slice
    record = max(c for d, c in iwm.items() if d <= AS_OF)
    assert row["pct_from_record_high"] == pytest.approx(close / record - 1, abs=1e-12)


def test_wtd_rank_orders_week_to_date_returns(price_frame):
    iwm, spy = closes("IWM"), closes("SPY")
    board = market.market_scoreboard(_closes(price_frame, AS_OF), _universe()).collect()
    today = board.filter(pl.col("as_of_date") == AS_OF).sort("wtd_rank")
    expected = sorted(
        [("IWM", iwm[AS_OF] / iwm[date(2025, 6, 6)] - 1), ("SPY", spy[AS_OF] / spy[date(2025, 6, 6)] - 1)],
        key=lambda kv: -kv[1],
    )
    assert today["symbol"].to_list() == [s for s, _ in expected]
    assert today["wtd_rank"].to_list() == [1, 2]


def test_a_part_without_the_universe_skips_the_ranking_and_gives_the_same_frame(price_frame):
    # the same real closes under symbols the universe does not list: no row is ranked either way
    others = price_frame.with_columns(symbol=pl.lit("X-") + pl.col("symbol"))
    ranked = market.market_scoreboard(_closes(others, AS_OF), _universe()).collect()
    skipped = market.market_scoreboard(_closes(others, AS_OF), _universe(), rank=False).collect()
    assert ranked["wtd_rank"].null_count() == ranked.height > 300
    assert skipped.equals(ranked)
    # and the universe's own closes are ranked only when asked
    assert market.market_scoreboard(_closes(price_frame, AS_OF), _universe())\
        .collect()["wtd_rank"].null_count() < ranked.height


@pytest.mark.parametrize(
    ("week_start", "week_end", "prev_end"),
    [
        (date(2025, 4, 14), date(2025, 4, 17), date(2025, 4, 11)),  # Good Friday 2025-04-18 closed
        (date(2025, 6, 30), date(2025, 7, 3), date(2025, 6, 27)),  # Independence Day 2025-07-04 closed
        (date(2025, 1, 20), date(2025, 1, 24), date(2025, 1, 17)),  # MLK Monday closed, week ends Friday
    ],
)
def test_weekly_return_across_holiday_weeks(price_frame, week_start, week_end, prev_end):
    iwm = closes("IWM")
    weekly = market.index_weekly(market.weekly_returns(_closes(price_frame, date(2025, 8, 1)))).collect()
    row = weekly.filter((pl.col("symbol") == "IWM") & (pl.col("week_start") == week_start)).row(0, named=True)
    assert week_end in iwm and prev_end in iwm
    assert row["week_end"] == week_end
    assert row["weekly_return"] == pytest.approx(iwm[week_end] / iwm[prev_end] - 1, abs=1e-12)
    assert row["is_complete"] is True


def test_unfinished_week_is_flagged_and_counted_by_its_sign(price_frame):
    weekly = market.index_weekly(market.weekly_returns(_closes(price_frame, AS_OF))).collect()
    last = weekly.filter(pl.col("symbol") == "IWM").sort("week_start").row(-1, named=True)
    assert last["week_start"] == date(2025, 6, 9)
    assert last["week_end"] == date(2025, 6, 13)  # the scheduled end, from the XNYS calendar
    assert last["is_complete"] is False


def test_up_streak_counts_consecutive_up_weeks():
    frame = pl.LazyFrame(
        {
            "symbol": ["X"] * 6,
            "week_start": [date(2025, 1, 6) + (date(2025, 1, 13) - date(2025, 1, 6)) * i for i in range(6)],
            "week_end": [date(2025, 1, 10) + (date(2025, 1, 17) - date(2025, 1, 10)) * i for i in range(6)],
            "last_trade_date": [date(2025, 1, 10) + (date(2025, 1, 17) - date(2025, 1, 10)) * i for i in range(6)],
            "close": [100.0, 101.0, 102.0, 99.0, 100.0, 101.0],
        }
    ).with_columns(prev_week_close=pl.col("close").shift(1)).with_columns(
        weekly_return=pl.col("close") / pl.col("prev_week_close") - 1
    )
    out = market.index_weekly(frame).collect()
    assert out["up_streak"].to_list() == [None, 1, 2, 0, 1, 2]
    assert out["is_up_week"].to_list() == [None, True, True, False, True, True]


def test_size_spread_daily_and_monthly_from_real_closes(price_frame):
    iwm, spy = closes("IWM"), closes("SPY")
    c = _closes(price_frame, AS_OF)
    daily = market.size_spread_daily(c, [("IWM", "SPY")]).collect()
    row = daily.filter(pl.col("trade_date") == AS_OF).row(0, named=True)
    prev = date(2025, 6, 10)
    assert row["spread"] == pytest.approx((iwm[AS_OF] / iwm[prev] - 1) - (spy[AS_OF] / spy[prev] - 1), abs=1e-12)
    first = min(set(iwm) & set(spy))
    assert row["relative_strength"] == pytest.approx((iwm[AS_OF] / spy[AS_OF]) / (iwm[first] / spy[first]), abs=1e-12)

    empty_ff = pl.LazyFrame(schema={"model": pl.String, "frequency": pl.String, "period_start": pl.Date,
                                    "factor": pl.String, "value": pl.Float64})
    monthly = market.size_spread_monthly(daily.lazy(), empty_ff).collect()
    may = monthly.filter(pl.col("month") == date(2025, 5, 1)).row(0, named=True)
    small = iwm[date(2025, 5, 30)] / iwm[date(2025, 4, 30)] - 1
    large = spy[date(2025, 5, 30)] / spy[date(2025, 4, 30)] - 1
    assert may["small_return"] == pytest.approx(small, abs=1e-12)
    assert may["spread"] == pytest.approx(small - large, abs=1e-12)


def test_record_high_flag_and_up_streak_from_real_closes(price_frame):
    iwm = closes("IWM")
    board = market.market_scoreboard(_closes(price_frame, AS_OF), _universe()).collect().filter(
        pl.col("symbol") == "IWM")
    record_day = max((d for d in iwm if d <= AS_OF), key=lambda d: iwm[d])
    flagged = board.filter(pl.col("is_record_high"))["as_of_date"].to_list()
    assert record_day in flagged
    assert all(iwm[d] >= max(c for e, c in iwm.items() if e <= d) for d in flagged)

    # streak: consecutive up ISO weeks ending with the as-of week (its sign so far)
    weeks = week_closes({d: c for d, c in iwm.items() if d <= AS_OF})
    keys = sorted(weeks)
    streak = 0
    for i in range(len(keys) - 1, 0, -1):
        if weeks[keys[i]][1] > weeks[keys[i - 1]][1]:
            streak += 1
        else:
            break
    row = board.filter(pl.col("as_of_date") == AS_OF).row(0, named=True)
    assert row["up_streak"] == streak
