"""The normalised shape of every dataset as a source hands it over.

Every source (sample, inbox file, live API) returns a ``polars.DataFrame`` with exactly these
columns and dtypes for its dataset; the landing suites in ``expectations/`` check them and the
``raw`` tables in the warehouse store them (plus ``_landing_file``, ``_loaded_at``, ``_run_id``).

Units follow the contract: prices in the quote currency, returns and weights as fractions,
CPI as index levels, Fama-French values and interest rates as fractions (the files publish percent).
"""

from __future__ import annotations

import polars as pl

DATASETS = ("prices", "short_interest", "cpi", "estimates", "holdings", "factors", "company_estimates", "rates")

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    # one row per symbol per trading day
    "prices": {
        "symbol": pl.String(),
        "trade_date": pl.Date(),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "adj_close": pl.Float64(),  # null where the vendor sends none
        "volume": pl.Float64(),  # some vendors (Stooq) send fractional volumes
    },
    # one row per symbol per settlement date
    "short_interest": {
        "symbol": pl.String(),
        "settlement_date": pl.Date(),
        "issue_name": pl.String(),
        "market": pl.String(),
        "short_interest": pl.Int64(),
        "prior_short_interest": pl.Int64(),
        "avg_daily_volume": pl.Int64(),
        "days_to_cover": pl.Float64(),  # null where FINRA sent its 999.99 sentinel
    },
    # one row per series per month per vintage (realtime_start null = vintage unknown)
    "cpi": {
        "series_id": pl.String(),
        "ref_month": pl.Date(),  # first day of the month
        "value": pl.Float64(),  # null = not published (e.g. October 2025)
        "realtime_start": pl.Date(),
    },
    # long format, one row per index, snapshot, metric and period
    "estimates": {
        "index_code": pl.String(),  # SP500, SP400, SP600
        "as_of_date": pl.Date(),  # the edition's date
        "metric": pl.String(),  # operating_eps, reported_eps, operating_pe, growth_5y, peg, ...
        "period": pl.String(),  # '2025', 'Q4 2025', 'current'
        "value": pl.Float64(),
    },
    # one row per fund, snapshot date and holding
    "holdings": {
        "fund": pl.String(),
        "as_of_date": pl.Date(),
        "symbol": pl.String(),
        "name": pl.String(),
        "sector": pl.String(),
        "asset_class": pl.String(),
        "market_value": pl.Float64(),
        "weight": pl.Float64(),  # fraction of the fund
        "shares": pl.Float64(),
    },
    # one row per model, frequency, period and factor
    "factors": {
        "model": pl.String(),  # 'ff3'
        "frequency": pl.String(),  # 'daily' | 'monthly'
        "period_start": pl.Date(),  # the day, or the first day of the month
        "factor": pl.String(),  # 'Mkt-RF', 'SMB', 'HML', 'RF'
        "value": pl.Float64(),  # fraction
    },
}

SCHEMAS["company_estimates"] = {  # one row per company, observation day and fiscal period (Yahoo earningsTrend)
    "symbol": pl.String(), "as_of_date": pl.Date(), "period": pl.String(), "period_end": pl.Date(),
    "eps_avg": pl.Float64(), "eps_low": pl.Float64(), "eps_high": pl.Float64(), "eps_year_ago": pl.Float64(),
    "analysts": pl.Int64(), "eps_growth": pl.Float64(), "eps_7d_ago": pl.Float64(), "eps_30d_ago": pl.Float64(),
    "eps_60d_ago": pl.Float64(), "eps_90d_ago": pl.Float64(), "up_7d": pl.Int64(), "up_30d": pl.Int64(),
    "down_7d": pl.Int64(), "down_30d": pl.Int64(),
}

SCHEMAS["rates"] = {  # one row per FRED rate series per day per vintage (realtime_start null = vintage unknown)
    "series_id": pl.String(),  # DFF (effective federal funds rate), DGS2 (2-year Treasury constant maturity)
    "date": pl.Date(),
    "value": pl.Float64(),  # a fraction (FRED publishes percent: 5.33 -> 0.0533); null where FRED sends "."
    "realtime_start": pl.Date(),
}

# the columns that identify a row (the landing suites check their uniqueness)
KEYS: dict[str, tuple[str, ...]] = {
    "prices": ("symbol", "trade_date"),
    "short_interest": ("symbol", "settlement_date"),
    "cpi": ("series_id", "ref_month", "realtime_start"),
    "estimates": ("index_code", "as_of_date", "metric", "period"),
    "holdings": ("fund", "as_of_date", "symbol"),
    "factors": ("model", "frequency", "period_start", "factor"),
    "company_estimates": ("symbol", "as_of_date", "period"),
    "rates": ("series_id", "date", "realtime_start"),
}

# the date column that the as-of cut applies to
DATE_COLUMN: dict[str, str] = {
    "prices": "trade_date",
    "short_interest": "settlement_date",
    "cpi": "ref_month",
    "estimates": "as_of_date",
    "holdings": "as_of_date",
    "factors": "period_start",
    "company_estimates": "as_of_date",
    "rates": "date",
}


def empty(dataset: str) -> pl.DataFrame:
    """An empty frame of the dataset's schema."""
    return pl.DataFrame(schema=SCHEMAS[dataset])


def conform(dataset: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast ``frame`` to the dataset's schema (columns in schema order)."""
    schema = SCHEMAS[dataset]
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"{dataset}: missing columns {missing}; expected {list(schema)}")
    return frame.select([pl.col(c).cast(t, strict=True) for c, t in schema.items()])
