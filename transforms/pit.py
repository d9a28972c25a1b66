"""Point in time: the date each observation became public (``available_on``).

A run as of D uses an observation only when ``available_on <= D``. Where a vendor stamps its
own vintage (FRED/ALFRED ``realtime_start``) that stamp is used; otherwise the observation date
plus the publication lag of the configuration (``[publication_lag]``).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

DEFAULT_LAGS: dict[str, int] = {
    "prices_days": 0,
    "short_interest_days": 9,
    "cpi_months": 1,
    "cpi_day": 15,
    "factors_monthly_months": 2,
    "factors_daily_days": 30,
    "holdings_days": 1,
    "estimates_days": 0,
    "rates_days": 1,
}


def available_on(dataset: str, lags: Mapping[str, int] | None = None) -> pl.Expr:
    """Expression giving the date a row of ``dataset`` (in its source schema) became public."""
    lag = {**DEFAULT_LAGS, **(lags or {})}
    days = pl.duration(days=1)
    if dataset == "prices":
        return pl.col("trade_date") + days * lag["prices_days"]
    if dataset == "short_interest":
        return pl.col("settlement_date") + days * lag["short_interest_days"]
    if dataset == "cpi":
        released = pl.col("ref_month").dt.offset_by(f"{lag['cpi_months']}mo") + days * (lag["cpi_day"] - 1)
        return pl.coalesce(pl.col("realtime_start"), released)
    if dataset == "estimates":
        return pl.col("as_of_date") + days * lag["estimates_days"]
    if dataset == "company_estimates":
        return pl.col("as_of_date") + days * lag["estimates_days"]
    if dataset == "rates":
        return pl.coalesce(pl.col("realtime_start"), pl.col("date") + days * lag["rates_days"])
    if dataset == "holdings":
        return pl.col("as_of_date") + days * lag["holdings_days"]
    if dataset == "factors":
        return (
            pl.when(pl.col("frequency") == "monthly")
            .then(pl.col("period_start").dt.offset_by(f"{lag['factors_monthly_months']}mo"))
            .otherwise(pl.col("period_start") + days * lag["factors_daily_days"])
        )
    raise ValueError(f"unknown dataset {dataset!r}")
