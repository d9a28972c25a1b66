"""Build every mart for an as-of date from the core tables (point in time)."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from capspread.config import Config
from transforms import market
from transforms.calendar import sessions
from warehouse.db import read_core


def universe_frame(config: Config) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "symbol": [s.symbol for s in config.universe],
            "name": [s.name for s in config.universe],
            "role": [s.role for s in config.universe],
        }
    )


def build_marts(con: duckdb.DuckDBPyConnection, config: Config, as_of: date) -> dict[str, pl.DataFrame]:
    """Every mart as of the evening of ``as_of``: only observations public by then are used."""
    prices = read_core(con, "prices", as_of).filter(pl.col("trade_date") <= as_of)
    factors = read_core(con, "factors", as_of)
    first = prices.select(pl.col("trade_date").min()).collect().item() or as_of
    closes = market.session_closes(prices, sessions(first, as_of).lazy()).cache()
    loaded = set(closes.select("symbol").unique().collect()["symbol"].to_list())
    pairs = [(p.small, p.large) for p in config.pairs if p.small in loaded and p.large in loaded]
    spread_daily = market.size_spread_daily(closes, pairs).cache()
    frames = {
        "market_scoreboard": market.market_scoreboard(closes, universe_frame(config)),
        "index_weekly": market.index_weekly(market.weekly_returns(closes)),
        "size_spread_daily": spread_daily,
        "size_spread_monthly": market.size_spread_monthly(spread_daily, factors),
    }
    return dict(zip(frames, pl.collect_all(list(frames.values()))))
