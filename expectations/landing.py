"""Landing suites: the column contract of every dataset, checked on each batch before it loads.

One suite per dataset, named after it. ``error`` expectations (GX severity ``critical``)
quarantine the batch; ``warn`` ones (GX ``warning``) load it and report. Derived helper columns
(``_move``, ``_is_session`` …) are computed with Polars before the frame is handed to GX.
"""

from __future__ import annotations

from datetime import date

import great_expectations as gx
import pandas as pd
import polars as pl

from sources.formats.rates import RATES_SERIES
from sources.schemas import KEYS, SCHEMAS

E = gx.expectations
WARN = "warning"

INDEX_CODES = ["SP500", "SP400", "SP600", "SP1500", "R2000", "R1000"]
FACTORS = ["Mkt-RF", "SMB", "HML", "RMW", "CMA", "RF", "MOM"]


def _ts(day: date) -> pd.Timestamp:
    """GX's pandas engine compares dates as pandas Timestamps."""
    return pd.Timestamp(day)


def _contract(dataset: str, as_of: date, derived: tuple[str, ...] = (), key_severity: str = "critical") -> list:
    """Column names in order, key uniqueness and not-null keys: common to every dataset."""
    key = list(KEYS[dataset])
    exps: list = [E.ExpectTableColumnsToMatchOrderedList(column_list=list(SCHEMAS[dataset]) + list(derived))]
    exps.append(E.ExpectCompoundColumnsToBeUnique(column_list=key, severity=key_severity))
    for column in key:
        if column != "realtime_start":
            exps.append(E.ExpectColumnValuesToNotBeNull(column=column, severity=key_severity))
    return exps


def prices(frame: pl.DataFrame, as_of: date, max_daily_move: float = 0.35) -> tuple[gx.ExpectationSuite, pl.DataFrame]:
    """Suite ``prices``: positive closes, high >= low, one row per symbol and date (so dates are
    strictly increasing per symbol once sorted; checked without one expectation per symbol, which
    would grow with the universe), nothing dated after the day the run happens, sessions of XNYS
    and bounded day-over-day moves (warn)."""
    from transforms.calendar import sessions

    lo = frame["trade_date"].min() or as_of
    hi = frame["trade_date"].max() or as_of
    sess = sessions(lo, hi).select("trade_date", _is_session=pl.lit(True))
    derived = (
        frame.sort("symbol", "trade_date")
        .with_columns(_move=(pl.col("close") / pl.col("close").shift(1).over("symbol") - 1).abs())
        .join(sess, on="trade_date", how="left")
        .with_columns(pl.col("_is_session").fill_null(False))
    )
    exps = _contract("prices", as_of, ("_move", "_is_session")) + [
        E.ExpectColumnValuesToNotBeNull(column="close"),
        E.ExpectColumnValuesToBeBetween(column="close", min_value=0, strict_min=True),
        E.ExpectColumnValuesToBeBetween(column="open", min_value=0, strict_min=True),
        E.ExpectColumnValuesToBeBetween(column="volume", min_value=0),
        E.ExpectColumnMaxToBeBetween(column="trade_date", max_value=_ts(as_of)),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="high", column_B="low", or_equal=True, ignore_row_if="either_value_is_missing", severity=WARN
        ),
        E.ExpectColumnValuesToBeBetween(column="_move", max_value=max_daily_move, severity=WARN),
        E.ExpectColumnValuesToBeInSet(column="_is_session", value_set=[True], severity=WARN),
    ]
    return _suite("prices", exps), derived


def short_interest(frame: pl.DataFrame, as_of: date, **_: object) -> tuple[gx.ExpectationSuite, pl.DataFrame]:
    """Suite ``short_interest``: non-negative quantities, days to cover in range (sentinels are
    already NULL), settlement dates not after the as-of date."""
    exps = _contract("short_interest", as_of) + [
        E.ExpectColumnValuesToBeBetween(column="short_interest", min_value=0),
        E.ExpectColumnValuesToBeBetween(column="prior_short_interest", min_value=0),
        E.ExpectColumnValuesToBeBetween(column="avg_daily_volume", min_value=0),
        E.ExpectColumnValuesToBeBetween(column="days_to_cover", min_value=0, max_value=999, strict_max=True),
        E.ExpectColumnMaxToBeBetween(column="settlement_date", max_value=_ts(as_of)),
    ]
    return _suite("short_interest", exps), frame


def cpi(frame: pl.DataFrame, as_of: date, **_: object) -> tuple[gx.ExpectationSuite, pl.DataFrame]:
    """Suite ``cpi``: months are first days, index levels positive, no month after the as-of date."""
    derived = frame.with_columns(_day=pl.col("ref_month").dt.day())
    exps = _contract("cpi", as_of, ("_day",)) + [
        E.ExpectColumnValuesToBeInSet(column="_day", value_set=[1]),
        E.ExpectColumnValuesToBeBetween(column="value", min_value=0, strict_min=True),
        E.ExpectColumnMaxToBeBetween(column="ref_month", max_value=_ts(as_of)),
    ]
    return _suite("cpi", exps), derived


def estimates(frame: pl.DataFrame, as_of: date, **_: object) -> tuple[gx.ExpectationSuite, pl.DataFrame]:
    """Suite ``estimates``: known index codes (warn), values present, editions not after the as-of date."""
    exps = _contract("estimates", as_of) + [
        E.ExpectColumnValuesToBeInSet(column="index_code", value_set=INDEX_CODES, severity=WARN),
        E.ExpectColumnValuesToNotBeNull(column="value"),
        E.ExpectColumnMaxToBeBetween(column="as_of_date", max_value=_ts(as_of)),
    ]
    return _suite("estimates", exps), frame


def holdings(frame: pl.DataFrame, as_of: date, **_: object) -> tuple[gx.ExpectationSuite, pl.DataFrame]:
    """Suite ``holdings``: weights are fractions, equity weights of a snapshot sum to about one (warn).

    Real iShares files list a ticker twice (share lines of one issuer) and carry untickered
    lines (``-``: rights, cash): the key checks warn, and core sums duplicates and drops them."""
    derived = frame.with_columns(
        _weight_sum=pl.col("weight").filter(pl.col("asset_class") == "Equity").sum().over("fund", "as_of_date")
    )
    exps = _contract("holdings", as_of, ("_weight_sum",), key_severity=WARN) + [
        E.ExpectColumnValuesToNotBeNull(column="fund"),
        E.ExpectColumnValuesToNotBeNull(column="as_of_date"),
    ] + [
        E.ExpectColumnValuesToBeBetween(column="weight", min_value=-1, max_value=1),
        E.ExpectColumnValuesToBeBetween(column="_weight_sum", min_value=0.9, max_value=1.05, severity=WARN),
        E.ExpectColumnMaxToBeBetween(column="as_of_date", max_value=_ts(as_of)),
    ]
    return _suite("holdings", exps), derived


def factors(frame: pl.DataFrame, as_of: date, **_: object) -> tuple[gx.ExpectationSuite, pl.DataFrame]:
    """Suite ``factors``: values are fractions (|x| < 1), known factor names, periods not after the as-of date."""
    exps = _contract("factors", as_of) + [
        E.ExpectColumnValuesToBeBetween(column="value", min_value=-1, max_value=1),
        E.ExpectColumnValuesToBeInSet(column="factor", value_set=FACTORS),
        E.ExpectColumnValuesToBeInSet(column="frequency", value_set=["daily", "monthly"]),
        E.ExpectColumnMaxToBeBetween(column="period_start", max_value=_ts(as_of)),
    ]
    return _suite("factors", exps), frame


def company_estimates(frame: pl.DataFrame, as_of: date, **_: object) -> tuple[gx.ExpectationSuite, pl.DataFrame]:
    """Suite ``company_estimates``: known fiscal periods, analyst counts not negative, the highest
    estimate not below the lowest (warn), observation days not after the as-of date."""
    exps = _contract("company_estimates", as_of) + [
        E.ExpectColumnValuesToBeInSet(column="period", value_set=["0q", "+1q", "0y", "+1y"]),
        E.ExpectColumnValuesToBeBetween(column="analysts", min_value=0),
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="eps_high", column_B="eps_low", or_equal=True,
                                                  ignore_row_if="either_value_is_missing", severity=WARN),
        E.ExpectColumnMaxToBeBetween(column="as_of_date", max_value=_ts(as_of)),
    ]
    return _suite("company_estimates", exps), frame


def rates(frame: pl.DataFrame, as_of: date, **_: object) -> tuple[gx.ExpectationSuite, pl.DataFrame]:
    """Suite ``rates``: values are fractions (a rate between -5 % and 30 %: percent left unconverted,
    5.33 instead of 0.0533, fails), known series (warn), days not after the as-of date. Null values
    (FRED's ``.``) are allowed."""
    exps = _contract("rates", as_of) + [
        E.ExpectColumnValuesToBeBetween(column="value", min_value=-0.05, max_value=0.30),
        E.ExpectColumnValuesToBeInSet(column="series_id", value_set=list(RATES_SERIES), severity=WARN),
        E.ExpectColumnMaxToBeBetween(column="date", max_value=_ts(as_of)),
    ]
    return _suite("rates", exps), frame


SUITES = {
    "prices": prices,
    "short_interest": short_interest,
    "cpi": cpi,
    "estimates": estimates,
    "holdings": holdings,
    "factors": factors,
    "company_estimates": company_estimates,
    "rates": rates,
}


def _suite(name: str, expectations: list) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=name)
    for exp in expectations:
        suite.add_expectation(exp)
    return suite
