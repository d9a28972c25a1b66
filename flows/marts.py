"""Build every mart for an as-of date from the core tables (point in time)."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from capspread.config import Config
from transforms import consensus as cx
from transforms import factors as fx
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
    spread_monthly = market.size_spread_monthly(spread_daily, factors).cache()
    short_interest = read_core(con, "short_interest", as_of)
    si_buckets = fx.short_interest_by_bucket(
        short_interest, read_core(con, "holdings", as_of), config.bucket_funds
    ).cache()
    inflation = fx.inflation_monthly(read_core(con, "cpi", as_of), config.inflation_regime).cache()
    outlook = fx.earnings_outlook(read_core(con, "estimates", as_of)).cache()
    bottom_up = cx.consensus_outlook(
        read_core(con, "company_estimates", as_of), read_core(con, "holdings", as_of), config.bucket_funds,
        max_age_days=int(config.consensus.get("max_age_days", cx.DEFAULT_MAX_AGE_DAYS)),
        min_coverage=float(config.consensus.get("min_coverage", cx.DEFAULT_MIN_COVERAGE)),
    ).cache()
    frames = {
        "market_scoreboard": market.market_scoreboard(closes, universe_frame(config)),
        "index_weekly": market.index_weekly(market.weekly_returns(closes)),
        "size_spread_daily": spread_daily,
        "size_spread_monthly": spread_monthly,
        "short_interest_by_bucket": si_buckets,
        "etf_short_interest": fx.etf_short_interest(short_interest).select(
            "settlement_date", "symbol", "short_interest", "prior_short_interest", "short_interest_change",
            "avg_daily_volume", "days_to_cover",
        ),
        "inflation_monthly": inflation,
        "earnings_outlook": cx.with_bottom_up(outlook, bottom_up),
        "consensus_outlook": bottom_up,
        "factor_monthly": fx.factor_monthly(spread_monthly, inflation, si_buckets, outlook),
    }
    return dict(zip(frames, pl.collect_all(list(frames.values()))))
