"""Market marts: the scoreboard, weekly returns and the small-minus-large size spread.

Pure functions: LazyFrames in, LazyFrames out; no I/O. Returns are price returns computed from
``close`` (split-adjusted, dividends excluded), as fractions. Week and month boundaries come from
the XNYS sessions frame (``transforms.calendar.sessions``) that the caller passes in.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

_UP = (pl.col("weekly_return") > 0).cast(pl.Int32)


def session_closes(prices: pl.LazyFrame, sessions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per symbol per XNYS session with a close, with its week and month."""
    periods = sessions.with_columns(  # per session, not per row
        month=pl.col("trade_date").dt.truncate("1mo"),
        year=pl.col("trade_date").dt.year(),
    )
    return (
        prices.select("symbol", "trade_date", "close")
        .filter(pl.col("close").is_not_null())
        .sort("symbol", "trade_date")
        .join(periods, on="trade_date", how="inner", maintain_order="left")
    )


def weekly_returns(closes: pl.LazyFrame) -> pl.LazyFrame:
    """One row per symbol per calendar week: the last close of the week against the last close
    of the previous week (the current, unfinished week counts up to its latest close)."""
    return (
        closes.group_by("symbol", "week_start")
        .agg(
            week_end=pl.col("week_end").first(),
            last_trade_date=pl.col("trade_date").max(),
            close=pl.col("close").sort_by("trade_date").last(),
        )
        .sort("symbol", "week_start")
        .with_columns(prev_week_close=pl.col("close").shift(1).over("symbol"))
        .with_columns(weekly_return=pl.col("close") / pl.col("prev_week_close") - 1)
    )


def index_weekly(weekly: pl.LazyFrame, streak_carry: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """One row per symbol per week: weekly return, whether it rose, up weeks among the last ten
    and the length of the current run of up weeks.

    ``streak_carry`` (``symbol``, ``week_start``, ``carried_streak``) serves an incremental build
    that starts from a window of history: for each symbol, the up streak already known for the
    window's first week (whose own return the window cannot compute). A run of up weeks that
    reaches back to the window's start continues that streak instead of starting from one.
    """
    is_up = pl.col("weekly_return") > 0
    run = (is_up != is_up.shift(1)).fill_null(True).cum_sum().over("symbol")
    out = (
        weekly.sort("symbol", "week_start")
        .with_columns(is_up_week=pl.when(pl.col("weekly_return").is_not_null()).then(is_up))
        .with_columns(
            up_weeks_last_10=_UP.rolling_sum(10).over("symbol"),
            _run=run,
        )
        .with_columns(
            up_streak=pl.when(pl.col("is_up_week").is_null())
            .then(None)
            .when(pl.col("is_up_week"))
            .then(pl.int_range(pl.len()).over("symbol", "_run") + 1)
            .otherwise(0)
            .cast(pl.Int32),
            is_complete=pl.col("last_trade_date") == pl.col("week_end"),
        )
    )
    if streak_carry is not None:
        first = pl.col("week_start").min().over("symbol")
        out = (
            out.with_columns(_k=pl.int_range(pl.len()).over("symbol"), _first=first)
            .join(streak_carry.select("symbol", pl.col("week_start").alias("_first"), "carried_streak"),
                  on=["symbol", "_first"], how="left")
            .with_columns(
                up_streak=pl.when((pl.col("_k") > 0) & (pl.col("up_streak") == pl.col("_k")))
                .then(pl.col("up_streak") + pl.col("carried_streak").fill_null(0))
                .otherwise(pl.col("up_streak"))
                .cast(pl.Int32)
            )
            .sort("symbol", "week_start")
        )
    return out.select(
        "week_end", "symbol", "week_start", "close", "weekly_return", "is_up_week",
        "up_weeks_last_10", "up_streak", "is_complete",
    )


def _previous_period_close(period: str) -> pl.Expr:
    """On closes sorted by symbol and date: the symbol's last close before the row's ``period``
    (a column: week, month, year) began, i.e. the last close of its previous period with a close.
    Taken from the row before each period's first row and spread over the period by position,
    with no grouping or join."""
    new_symbol = (pl.col("symbol") != pl.col("symbol").shift(1)).fill_null(True)
    first = new_symbol | (pl.col(period) != pl.col(period).shift(1)).fill_null(True)
    before = pl.when(new_symbol).then(None).otherwise(pl.col("close").shift(1))
    return before.gather(pl.when(first).then(pl.int_range(pl.len())).forward_fill())


def market_scoreboard(
    closes: pl.LazyFrame,
    universe: pl.LazyFrame,
    *,
    weekly: pl.LazyFrame | None = None,
    record_carry: pl.LazyFrame | None = None,
    rank: bool = True,
) -> pl.LazyFrame:
    """One row per symbol per as-of date (every session): close, week-, month- and year-to-date
    returns, up weeks among the last ten (the current week by its sign so far), distance from the
    record closing high and the week-to-date rank among indexes (ETFs where no index is loaded).

    ``weekly`` is ``index_weekly`` of the same closes when the caller has it already. For an
    incremental build from a window of history, ``record_carry`` (``symbol``, ``carried_high``)
    holds each symbol's record close before the window. ``rank=False`` says the closes hold none
    of the universe's indexes and ETFs: every week-to-date rank is then null, and the ranking by
    day over every row is skipped."""
    weekly = (
        (weekly if weekly is not None else index_weekly(weekly_returns(closes)))
        .sort("symbol", "week_start")
        .with_columns(
            prior_9_up=pl.col("is_up_week").cast(pl.Int32).shift(1).rolling_sum(9).over("symbol"),
            prior_streak=pl.col("up_streak").shift(1).over("symbol"),
        )
        .select("symbol", "week_start", "prior_9_up", "prior_streak")
    )
    # the previous-period closes are taken by position: rows sorted by symbol and date (as
    # ``session_closes`` gives them; sorted again for any other caller), which the joins keep
    board = (
        closes.sort("symbol", "trade_date")
        .with_columns(
            prev_week_close=_previous_period_close("week_start"),
            prev_month_close=_previous_period_close("month"),
            prev_year_close=_previous_period_close("year"),
        )
        .join(weekly, on=["symbol", "week_start"], how="left", maintain_order="left")
        .join(universe.select("symbol", "name", "role"), on="symbol", how="left", maintain_order="left")
        .with_columns(
            wtd_return=pl.col("close") / pl.col("prev_week_close") - 1,
            mtd_return=pl.col("close") / pl.col("prev_month_close") - 1,
            ytd_return=pl.col("close") / pl.col("prev_year_close") - 1,
            record_high=pl.col("close").cum_max().over("symbol"),
        )
    )
    if record_carry is not None:
        board = board.join(record_carry.select("symbol", "carried_high"), on="symbol", how="left",
                           maintain_order="left").with_columns(
            record_high=pl.max_horizontal("record_high", "carried_high")
        )
    board = (
        board
        .with_columns(
            up_weeks_last_10=(pl.col("prior_9_up") + (pl.col("wtd_return") > 0).cast(pl.Int32)),
            up_streak=pl.when(pl.col("wtd_return").is_null())
            .then(None)
            .when(pl.col("wtd_return") > 0)
            .then(pl.col("prior_streak").fill_null(0) + 1)
            .otherwise(0)
            .cast(pl.Int32),
            pct_from_record_high=pl.col("close") / pl.col("record_high") - 1,
            is_record_high=pl.col("close") >= pl.col("record_high"),
        )
    )
    if not rank:
        board = board.with_columns(wtd_rank=pl.lit(None, dtype=pl.Int32))
    else:
        board = board.with_columns(
            _eligible=pl.when((pl.col("role") == "index").any().over("trade_date"))
            .then(pl.col("role") == "index")
            .otherwise(pl.col("role") == "etf"),
        ).with_columns(
            wtd_rank=pl.when(pl.col("_eligible") & pl.col("wtd_return").is_not_null()).then(
                pl.col("wtd_return")
                .rank("min", descending=True)
                .over("trade_date", "_eligible")
                .cast(pl.Int32)
            )
        )
    return board.select(
        pl.col("trade_date").alias("as_of_date"),
        "symbol",
        "name",
        "role",
        "close",
        "wtd_return",
        "mtd_return",
        "ytd_return",
        pl.col("up_weeks_last_10").cast(pl.Int32),
        "pct_from_record_high",
        "wtd_rank",
        "is_record_high",
        "up_streak",
        "record_high",
        "prev_week_close",
        "prev_year_close",
    ).sort("as_of_date", maintain_order=True)  # rows were in symbol order: now by date, then symbol


def size_spread_daily(closes: pl.LazyFrame, pairs: Sequence[tuple[str, str]]) -> pl.LazyFrame:
    """One row per pair per common session: daily small and large returns, their difference
    and the small/large price ratio rebased to 1 at the pair's first common date."""
    frames = []
    for small, large in pairs:
        s = closes.filter(pl.col("symbol") == small).select("trade_date", small_close="close")
        lg = closes.filter(pl.col("symbol") == large).select("trade_date", large_close="close")
        frames.append(
            s.join(lg, on="trade_date", how="inner")
            .sort("trade_date")
            .with_columns(
                pair=pl.lit(f"{small}/{large}"),
                small_symbol=pl.lit(small),
                large_symbol=pl.lit(large),
                small_return=pl.col("small_close") / pl.col("small_close").shift(1) - 1,
                large_return=pl.col("large_close") / pl.col("large_close").shift(1) - 1,
                _ratio=pl.col("small_close") / pl.col("large_close"),
            )
            .with_columns(
                spread=pl.col("small_return") - pl.col("large_return"),
                relative_strength=pl.col("_ratio") / pl.col("_ratio").first(),
            )
        )
    columns = [
        "trade_date", "pair", "small_symbol", "large_symbol", "small_return", "large_return",
        "spread", "relative_strength", "small_close", "large_close",
    ]
    if not frames:
        return pl.LazyFrame(
            schema={c: (pl.Date if c == "trade_date" else pl.String if "symbol" in c or c == "pair"
                        else pl.Float64) for c in columns}
        )
    return pl.concat([f.select(columns) for f in frames]).sort("pair", "trade_date")


def size_spread_monthly(spread_daily: pl.LazyFrame, factors: pl.LazyFrame) -> pl.LazyFrame:
    """One row per pair per month: month-end to month-end small and large returns on the pair's
    common sessions, the spread, and Fama-French SMB for the month where loaded."""
    smb = factors.filter(
        (pl.col("frequency") == "monthly") & (pl.col("factor") == "SMB") & (pl.col("model") == "ff3")
    ).select(pl.col("period_start").alias("month"), pl.col("value").alias("ff_smb"))
    return (
        spread_daily.with_columns(month=pl.col("trade_date").dt.truncate("1mo"))
        .group_by("pair", "month")
        .agg(
            small_symbol=pl.col("small_symbol").first(),
            large_symbol=pl.col("large_symbol").first(),
            last_trade_date=pl.col("trade_date").max(),
            small_close=pl.col("small_close").sort_by("trade_date").last(),
            large_close=pl.col("large_close").sort_by("trade_date").last(),
        )
        .sort("pair", "month")
        .with_columns(
            small_return=pl.col("small_close") / pl.col("small_close").shift(1).over("pair") - 1,
            large_return=pl.col("large_close") / pl.col("large_close").shift(1).over("pair") - 1,
        )
        .with_columns(spread=pl.col("small_return") - pl.col("large_return"))
        .join(smb, on="month", how="left")
        .sort("pair", "month")
        .with_columns(
            spread_smb_corr_36m=pl.rolling_corr("spread", "ff_smb", window_size=36).over("pair"),
        )
        .select(
            "month", "pair", "small_symbol", "large_symbol", "small_return", "large_return",
            "spread", "ff_smb", "spread_smb_corr_36m", "last_trade_date",
        )
        .sort("pair", "month")
    )
