"""Mart suites: the business rules of every mart, checked before the marts are published.

A broken rule here is a bug in a transform or in its inputs, not a bad vendor file: ``error``
expectations fail the run (nothing is published, exit 1); ``warn`` ones are reported.
"""

from __future__ import annotations

import great_expectations as gx
from great_expectations.expectations.row_conditions import Column
import polars as pl

E = gx.expectations
WARN = "warning"
TOL = 1e-9


def _unique(*columns: str) -> list:
    unique = (E.ExpectCompoundColumnsToBeUnique(column_list=list(columns)) if len(columns) > 1
              else E.ExpectColumnValuesToBeUnique(column=columns[0]))
    return [unique] + [
        E.ExpectColumnValuesToNotBeNull(column=c) for c in columns
    ]


def market_scoreboard(frame: pl.DataFrame, symbols_with_prices: list[str]):
    """One row per symbol per date; up weeks in 0..10; never above the record; every symbol
    that has prices on the latest date is on the latest board; ranks 1..n."""
    latest = frame["as_of_date"].max()
    derived = frame.with_columns(_latest=(pl.col("as_of_date") == latest) if latest is not None else pl.lit(False))
    exps = _unique("as_of_date", "symbol") + [
        E.ExpectColumnValuesToBeBetween(column="up_weeks_last_10", min_value=0, max_value=10),
        E.ExpectColumnValuesToBeBetween(column="pct_from_record_high", max_value=TOL),
        E.ExpectColumnValuesToBeBetween(column="wtd_rank", min_value=1, max_value=max(frame["symbol"].n_unique(), 1)),
        E.ExpectColumnValuesToBeInSet(column="role", value_set=["index", "etf"], severity=WARN),
    ]
    if latest is not None and symbols_with_prices:
        exps.append(E.ExpectColumnDistinctValuesToContainSet(
            column="symbol", value_set=sorted(symbols_with_prices), row_condition=Column("_latest") == True,  # noqa: E712
        ))
    return exps, derived


def index_weekly(frame: pl.DataFrame, **_):
    return _unique("week_end", "symbol") + [
        E.ExpectColumnValuesToBeBetween(column="up_weeks_last_10", min_value=0, max_value=10),
        E.ExpectColumnValuesToBeBetween(column="up_streak", min_value=0),
    ], frame


def _spread_rule(frame: pl.DataFrame):
    derived = frame.with_columns(
        _spread_error=(pl.col("spread") - (pl.col("small_return") - pl.col("large_return"))).abs()
    )
    return [E.ExpectColumnValuesToBeBetween(column="_spread_error", max_value=TOL)], derived


def size_spread_daily(frame: pl.DataFrame, **_):
    """spread = small_return − large_return; relative strength positive."""
    rule, derived = _spread_rule(frame)
    return _unique("trade_date", "pair") + rule + [
        E.ExpectColumnValuesToBeBetween(column="relative_strength", min_value=0, strict_min=True),
    ], derived


def size_spread_monthly(frame: pl.DataFrame, **_):
    """spread = small_return − large_return; SMB a fraction."""
    rule, derived = _spread_rule(frame)
    return _unique("month", "pair") + rule + [
        E.ExpectColumnValuesToBeBetween(column="ff_smb", min_value=-1, max_value=1),
    ], derived


def short_interest_by_bucket(frame: pl.DataFrame, **_):
    return _unique("settlement_date", "bucket") + [
        E.ExpectColumnValuesToBeInSet(column="bucket", value_set=["small", "mid", "large"]),
        E.ExpectColumnValuesToBeBetween(column="pct_symbols_decreasing", min_value=0, max_value=1),
        E.ExpectColumnValuesToBeBetween(column="median_days_to_cover", min_value=0, max_value=999, strict_max=True),
        E.ExpectColumnValuesToBeInSet(column="membership_flag", value_set=["in_force", "later_snapshot"]),
    ], frame


def inflation_monthly(frame: pl.DataFrame, **_):
    """YoY consistent with the levels: headline_yoy = index / index 12 months earlier − 1."""
    prior = frame.select(
        pl.col("ref_month").dt.offset_by("12mo").alias("ref_month"), pl.col("headline_index").alias("_prior")
    )
    derived = frame.join(prior, on="ref_month", how="left").with_columns(
        _yoy_error=(pl.col("headline_yoy") - (pl.col("headline_index") / pl.col("_prior") - 1)).abs()
    ).drop("_prior")
    return _unique("ref_month") + [
        E.ExpectColumnValuesToBeBetween(column="_yoy_error", max_value=TOL),
        E.ExpectColumnValuesToBeInSet(
            column="regime", value_set=["reheating", "disinflation", "elevated", "stable", "below_target"]),
        E.ExpectColumnValuesToBeBetween(column="headline_yoy", min_value=-0.3, max_value=0.3, severity=WARN),
    ], derived


def earnings_outlook(frame: pl.DataFrame, **_):
    return _unique("as_of_date", "index_code") + [
        E.ExpectColumnValuesToBeBetween(column="operating_pe", min_value=0, max_value=200, severity=WARN),
        E.ExpectColumnValuesToBeBetween(column="growth_5y", min_value=-1, max_value=1),
    ], frame


def factor_monthly(frame: pl.DataFrame, **_):
    rule, derived = _spread_rule(frame)
    return _unique("month") + rule, derived


def rate_backdrop(frame: pl.DataFrame, **_):
    """One row per month; rates are fractions (a percent left unconverted breaks the bounds); the
    2-year-minus-fed-funds spread is the difference of the two month-end values."""
    derived = frame.with_columns(
        _spread_error=(pl.col("treasury_2y_minus_fed_funds") - (pl.col("treasury_2y") - pl.col("fed_funds"))).abs())
    return _unique("month") + [
        E.ExpectColumnValuesToBeBetween(column="fed_funds", min_value=-0.05, max_value=0.30),
        E.ExpectColumnValuesToBeBetween(column="treasury_2y", min_value=-0.05, max_value=0.30),
        E.ExpectColumnValuesToBeBetween(column="_spread_error", max_value=TOL),
    ], derived


SUITES = {
    "market_scoreboard": market_scoreboard,
    "index_weekly": index_weekly,
    "size_spread_daily": size_spread_daily,
    "size_spread_monthly": size_spread_monthly,
    "short_interest_by_bucket": short_interest_by_bucket,
    "inflation_monthly": inflation_monthly,
    "earnings_outlook": earnings_outlook,
    "factor_monthly": factor_monthly,
    "rate_backdrop": rate_backdrop,
}


def suite(mart: str, frame: pl.DataFrame, **options):
    """The suite named ``marts.<mart>`` and the frame (with derived columns) it runs on."""
    build = SUITES[mart]
    exps, derived = build(frame, **options)
    s = gx.ExpectationSuite(name=f"marts.{mart}")
    for e in exps:
        s.add_expectation(e)
    return s, derived
