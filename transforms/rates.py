"""The rates backdrop: month-end fed funds and 2-year Treasury yield beside the inflation regime.

Pure Polars (LazyFrame in, LazyFrame out). Input ``rates`` is ``core.rates_daily`` as seen on the
as-of date (one vintage per series and day, ``warehouse.db.read_core``); values are fractions.
"""

from __future__ import annotations

from datetime import date

import polars as pl

FED_FUNDS = "DFF"
TREASURY_2Y = "DGS2"

COLUMNS = ("month", "fed_funds", "fed_funds_date", "fed_funds_avg", "treasury_2y", "treasury_2y_date",
           "treasury_2y_minus_fed_funds", "headline_yoy", "core_yoy", "real_fed_funds", "regime", "is_complete")

_INFLATION = {"ref_month": pl.Date, "headline_yoy": pl.Float64, "core_yoy": pl.Float64, "regime": pl.String}


def _month_end(series: pl.LazyFrame, series_id: str, name: str) -> pl.LazyFrame:
    """Per month: the last value of the month (and its date) and the month's average."""
    return (
        series.filter(pl.col("series_id") == series_id)
        .group_by("month")
        .agg(
            pl.col("value").sort_by("date").last().alias(name),
            pl.col("date").sort_by("date").last().alias(f"{name}_date"),
            pl.col("value").mean().alias(f"{name}_avg"),
        )
    )


def rate_backdrop(rates: pl.LazyFrame, inflation: pl.LazyFrame | None, as_of: date) -> pl.LazyFrame:
    """One row per calendar month with a DFF or DGS2 value up to ``as_of``.

    - ``fed_funds`` / ``treasury_2y``: the value on the month's last day with a value (FRED's ``.``
      days are skipped), with its date; for the current month, the latest so far.
    - ``fed_funds_avg``: mean of the month's DFF values.
    - ``treasury_2y_minus_fed_funds``: 2-year yield less fed funds (both month-end).
    - ``headline_yoy``, ``core_yoy``, ``regime``: ``marts.inflation_monthly`` of the same month
      (null when that month's CPI is not public yet); ``real_fed_funds`` = fed funds - headline YoY.
    - ``is_complete``: the month ended on or before ``as_of``.
    """
    obs = (
        rates.filter(pl.col("value").is_not_null(), pl.col("date") <= as_of)
        .select("series_id", "date", "value")
        .with_columns(month=pl.col("date").dt.truncate("1mo"))
    )
    ff = _month_end(obs, FED_FUNDS, "fed_funds")
    t2 = _month_end(obs, TREASURY_2Y, "treasury_2y").drop("treasury_2y_avg")
    if inflation is None:
        inflation = pl.LazyFrame(schema=_INFLATION)
    infl = inflation.select(month=pl.col("ref_month"), headline_yoy="headline_yoy", core_yoy="core_yoy",
                            regime="regime")
    months = pl.concat([ff.select("month"), t2.select("month")]).unique()
    return (
        months.join(ff, on="month", how="left")
        .join(t2, on="month", how="left")
        .join(infl, on="month", how="left")
        .with_columns(
            treasury_2y_minus_fed_funds=pl.col("treasury_2y") - pl.col("fed_funds"),
            real_fed_funds=pl.col("fed_funds") - pl.col("headline_yoy"),
            is_complete=pl.col("month").dt.month_end() <= as_of,
        )
        .select(COLUMNS)
        .sort("month")
    )
