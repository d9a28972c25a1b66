"""Build every mart for an as-of date from the core tables (point in time).

Two ways, the same rows:

* **full** (``since=None``): every mart from all of history;
* **incremental** (``since=D``): the per-symbol price marts (``market_scoreboard``,
  ``index_weekly``) only from ``D`` on, computed from a window of history that starts on 1 December
  of the year before ``D`` or 13 weeks before it, whichever is earlier (``window_start``: enough for
  the year-to-date anchor, the month anchor and ten weeks of up weeks), with the two quantities that
  reach back further carried from the marts already built: each symbol's record close before the
  window (``market_scoreboard.record_high``) and the up streak of the window's first week
  (``index_weekly.up_streak``). The size pairs' symbols are read in full (a handful of series:
  relative strength rebases at the pair's first common date and the SMB correlation needs 36
  months), the short interest by bucket is rebuilt from the first settlement date that changed
  (``short_interest_buckets``, when ``flows.load.short_interest_since`` allows), and every other
  mart is small and rebuilt in full. The caller replaces only the rows from ``D`` on
  (``flows.load.finish_run``).
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl

from capspread.config import Config
from transforms import consensus as cx
from transforms import factors as fx
from transforms import market
from transforms.calendar import sessions
from transforms.rates import rate_backdrop
from warehouse.db import read_core


def universe_frame(config: Config) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "symbol": [s.symbol for s in config.universe],
            "name": [s.name for s in config.universe],
            "role": [s.role for s in config.universe],
        }
    )


# marts built only from ``since`` on in an incremental build, and the date column that says so
INCREMENTAL = {"market_scoreboard": "as_of_date", "index_weekly": "week_end"}


WINDOW_WEEKS = 13


def window_start(since: date) -> date:
    """First day of history an incremental build from ``since`` reads: 1 December of the year
    before, or ``WINDOW_WEEKS`` weeks before ``since`` when that is earlier. That holds the
    previous year's last close (the year-to-date anchor of every row from ``since`` on, in either
    year when the rows cross a new year), the previous month's last close, and the ten weeks
    before ``since``'s week with a return each (up weeks among the last ten)."""
    return min(date(since.year - 1, 12, 1), since - timedelta(weeks=WINDOW_WEEKS))


def _closes(con: duckdb.DuckDBPyConnection, as_of: date, symbols: list[str] | None,
            start: date | None) -> pl.LazyFrame:
    """Session closes public by ``as_of`` of ``symbols`` (all when None) from ``start`` on."""
    where, params = "available_on <= $as_of AND trade_date <= $as_of", {"as_of": as_of}
    if symbols is not None:
        where += " AND symbol IN (SELECT unnest($symbols::VARCHAR[]))"
        params["symbols"] = list(symbols)
    if start is not None:
        where += " AND trade_date >= $start"
        params["start"] = start
    rel = con.sql(f"SELECT symbol, trade_date, close FROM core.prices_daily WHERE {where}", params=params)
    prices = pl.from_arrow(rel.to_arrow_table())
    first = prices["trade_date"].min() or as_of
    return market.session_closes(prices.lazy(), sessions(first, as_of).lazy())


def carries(con: duckdb.DuckDBPyConnection, since: date | None) -> tuple[pl.LazyFrame, pl.LazyFrame] | None:
    """What an incremental build from ``since`` carries over from the marts already built (None for
    a full build): each symbol's record close before the window, and the up streak of its week that
    contains the window's first day (or its first week after it)."""
    if since is None:
        return None
    start = window_start(since)
    highs = pl.from_arrow(con.sql(
        "SELECT symbol, max(record_high) AS carried_high FROM marts.market_scoreboard "
        "WHERE as_of_date < $start GROUP BY symbol", params={"start": start}).to_arrow_table())
    streaks = pl.from_arrow(con.sql(
        "SELECT symbol, arg_min(week_start, week_start) AS week_start, arg_min(up_streak, week_start) AS carried_streak "
        "FROM marts.index_weekly WHERE week_end >= $start GROUP BY symbol", params={"start": start}).to_arrow_table())
    return highs.lazy(), streaks.lazy()


def symbol_marts(con: duckdb.DuckDBPyConnection, config: Config, as_of: date, since: date | None = None,
                 symbols: list[str] | None = None, carried=None) -> dict[str, pl.DataFrame]:
    """``market_scoreboard`` and ``index_weekly`` for ``symbols`` (all when None): from all of
    history, or with ``since`` only their rows from ``since`` on, computed from a window with the
    ``carried`` record highs and up streaks (``carries``). Every row depends on its own symbol's
    closes only, except the week-to-date rank, which ranks the configured universe's indexes
    (ETFs) among themselves: a caller that splits the symbols keeps the universe in one part."""
    start = window_start(since) if since is not None else None
    closes = _closes(con, as_of, symbols, start).cache()
    universe = universe_frame(config)
    # a part without the configured indexes and ETFs has no week-to-date rank to compute
    rank = symbols is None or not {s.symbol for s in config.universe}.isdisjoint(symbols)
    if start is None:
        weekly = market.index_weekly(market.weekly_returns(closes)).cache()
        board = market.market_scoreboard(closes, universe, weekly=weekly, rank=rank)
    else:
        highs, streaks = carried if carried is not None else carries(con, since)
        weekly = market.index_weekly(market.weekly_returns(closes), streak_carry=streaks).cache()
        board = market.market_scoreboard(closes, universe, weekly=weekly, record_carry=highs, rank=rank)
        board = board.filter(pl.col("as_of_date") >= since)
        weekly = weekly.filter(pl.col("week_end") >= since)
    frames = {"market_scoreboard": board, "index_weekly": weekly}
    return dict(zip(frames, pl.collect_all(list(frames.values()))))


def symbol_chunks(con: duckdb.DuckDBPyConnection, config: Config, as_of: date, since: date | None,
                  size: int) -> list[list[str]]:
    """The symbols with closes to build, in parts of at most ``size`` (the configured universe,
    which the week-to-date rank compares, stays in the first part)."""
    start = window_start(since) if since is not None else date.min
    found = [r[0] for r in con.execute(
        "SELECT DISTINCT symbol FROM core.prices_daily WHERE available_on <= ? AND trade_date <= ? AND trade_date >= ? "
        "ORDER BY symbol", [as_of, as_of, start]).fetchall()]
    configured = {s.symbol for s in config.universe}
    ordered = [s for s in found if s in configured] + [s for s in found if s not in configured]
    size = max(size, sum(s in configured for s in found), 1)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def short_interest_buckets(con: duckdb.DuckDBPyConnection, config: Config, as_of: date, holdings: pl.LazyFrame,
                           since: date | None = None) -> pl.LazyFrame:
    """``marts.short_interest_by_bucket`` as of ``as_of``: from all of history, or with ``since``
    its rows before ``since`` as the mart holds them and the rows from ``since`` on computed from
    the short interest of those settlement dates (``flows.load.short_interest_since`` says when
    that gives the same rows: the holdings and the bucket funds unchanged since the mart was
    built, and no short-interest row before ``since`` changed). ``holdings``: as of ``as_of``."""
    if since is None:
        return fx.short_interest_by_bucket(read_core(con, "short_interest", as_of), holdings, config.bucket_funds)
    recent = read_core(con, "short_interest", as_of, "settlement_date >= $since", {"since": since})
    fresh = fx.short_interest_by_bucket(recent, holdings, config.bucket_funds)
    schema = fresh.collect_schema()
    kept = pl.from_arrow(con.sql("SELECT * FROM marts.short_interest_by_bucket WHERE settlement_date < $since",
                                 params={"since": since}).to_arrow_table())
    kept = kept.lazy().select(list(schema)).cast(dict(schema))
    return pl.concat([kept, fresh]).sort("settlement_date", "bucket")


def other_marts(con: duckdb.DuckDBPyConnection, config: Config, as_of: date,
                short_interest_since: date | None = None) -> dict[str, pl.DataFrame]:
    """Every mart but the per-symbol ones, from all of history (each is small: pairs, buckets,
    months); the short interest by bucket from ``short_interest_since`` on when given
    (``short_interest_buckets``: 1.75M short-interest rows at 3,000 symbols x 25 years)."""
    pair_symbols = sorted({x for p in config.pairs for x in (p.small, p.large)})
    closes = _closes(con, as_of, pair_symbols, None).cache()
    factors = read_core(con, "factors", as_of)
    loaded = set(closes.select("symbol").unique().collect()["symbol"].to_list())
    pairs = [(p.small, p.large) for p in config.pairs if p.small in loaded and p.large in loaded]
    spread_daily = market.size_spread_daily(closes, pairs).cache()
    spread_monthly = market.size_spread_monthly(spread_daily, factors).cache()
    # the ETFs' own short interest, all of history (a few symbols)
    short_interest = read_core(con, "short_interest", as_of, "symbol IN (SELECT unnest($etfs))",
                               {"etfs": list(fx.ETF_SYMBOLS)})
    holdings = read_core(con, "holdings", as_of)
    si_buckets = short_interest_buckets(con, config, as_of, holdings, short_interest_since).cache()
    inflation = fx.inflation_monthly(read_core(con, "cpi", as_of), config.inflation_regime).cache()
    outlook = fx.earnings_outlook(read_core(con, "estimates", as_of)).cache()
    bottom_up = cx.consensus_outlook(
        read_core(con, "company_estimates", as_of), holdings, config.bucket_funds,
        max_age_days=int(config.consensus.get("max_age_days", cx.DEFAULT_MAX_AGE_DAYS)),
        min_coverage=float(config.consensus.get("min_coverage", cx.DEFAULT_MIN_COVERAGE)),
    ).cache()
    frames = {
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
        "rate_backdrop": rate_backdrop(read_core(con, "rates", as_of), inflation, as_of),
    }
    return dict(zip(frames, pl.collect_all(list(frames.values()))))


def build_marts(con: duckdb.DuckDBPyConnection, config: Config, as_of: date,
                since: date | None = None) -> dict[str, pl.DataFrame]:
    """Every mart as of the evening of ``as_of``, all symbols at once: only observations public by
    then are used. With ``since``, ``market_scoreboard`` and ``index_weekly`` hold only their rows
    from ``since`` on (see the module docstring)."""
    return {**symbol_marts(con, config, as_of, since), **other_marts(con, config, as_of)}
