"""Factor marts: short interest by size bucket, the inflation regime, the earnings outlook and the
monthly factor table that joins them (contract §3, ``marts``).

Pure Polars: every function takes ``core`` (or mart) tables as ``LazyFrame`` and returns a
``LazyFrame``; no I/O, no DuckDB, no Prefect. Rates and returns are fractions. Inputs are assumed to
be already cut to the run's as-of date (point in time); where a table keeps several vintages of a
fact, the functions below use the latest ``known_at`` among the rows they are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

EQUITY = "Equity"
DTC_SENTINEL = 999.99  # FINRA's "days to cover" cap; never a value

# CPI series (FRED ids; the NSA ones are the BLS ids FRED also uses)
HEADLINE_SA = "CPIAUCSL"
CORE_SA = "CPILFESL"
HEADLINE_NSA = "CUUR0000SA0"
CORE_NSA = "CUUR0000SA0L1E"
_CPI_LEVELS = {
    "headline_index": HEADLINE_SA,
    "core_index": CORE_SA,
    "headline_nsa_index": HEADLINE_NSA,
    "core_nsa_index": CORE_NSA,
}

DEFAULT_REGIME_THRESHOLDS: dict[str, float] = {"target": 0.02, "band": 0.005, "reheating_gap": 0.0}
REGIMES = ("reheating", "disinflation", "elevated", "stable", "below_target")

ETF_SYMBOLS = ("IWM", "SPY", "QQQ", "DIA")
_POINT_METRICS = ("operating_pe", "growth_5y", "peg")


# --------------------------------------------------------------------------------------------
# short interest


def _bucket_funds_frame(bucket_funds: Mapping[str, str]) -> pl.LazyFrame:
    if not bucket_funds:
        raise ValueError("bucket_funds is empty: name at least one fund and its bucket")
    return pl.LazyFrame(
        {
            "fund": list(bucket_funds),
            "bucket": list(bucket_funds.values()),
            "fund_rank": list(range(len(bucket_funds))),
        },
        schema={"fund": pl.String, "bucket": pl.String, "fund_rank": pl.Int64},
    )


def bucket_membership(
    short_interest: pl.LazyFrame, holdings: pl.LazyFrame, bucket_funds: Mapping[str, str]
) -> pl.LazyFrame:
    """One row per settlement date per symbol held by a bucket fund (the fund's snapshot in force).

    Per settlement date and fund the snapshot used is the latest equity holdings ``as_of_date`` on
    or before the settlement date (``membership_flag = 'in_force'``); when the fund has none that
    early, the earliest later one (``'later_snapshot'``). A symbol held by several funds belongs to
    the bucket of the fund listed first in ``bucket_funds``.
    """
    funds = _bucket_funds_frame(bucket_funds)
    equity = holdings.filter(
        pl.col("asset_class") == EQUITY,
        pl.col("fund").is_in(list(bucket_funds)),
        pl.col("symbol").is_not_null(),
    ).select("fund", "as_of_date", "symbol")
    snapshots = equity.select("fund", "as_of_date").unique().sort("as_of_date")
    dates = (
        short_interest.select("settlement_date")
        .unique()
        .join(funds.select("fund"), how="cross")
        .sort("settlement_date")
    )
    asof = dict(left_on="settlement_date", right_on="as_of_date", by="fund", coalesce=False)
    in_force = dates.join_asof(snapshots, strategy="backward", check_sortedness=False, **asof)
    later = dates.join_asof(
        snapshots, strategy="forward", allow_exact_matches=False, check_sortedness=False, **asof
    ).rename({"as_of_date": "later_as_of"})
    chosen = (
        in_force.join(later, on=["settlement_date", "fund"])
        .select("settlement_date", "fund", holdings_as_of=pl.coalesce("as_of_date", "later_as_of"))
        .filter(pl.col("holdings_as_of").is_not_null())
    )
    # settlement dates that use the same snapshots have the same members: resolve each such
    # combination once (first-listed fund wins a symbol), then give every date its combination's
    # members. A snapshot dated after the settlement date is a 'later_snapshot'.
    keyed = chosen.with_columns(_snap=pl.concat_str("fund", pl.col("holdings_as_of").cast(pl.String), separator="@"))
    combo_of_date = keyed.group_by("settlement_date").agg(_combo=pl.col("_snap").sort().str.join("|"))
    combos = (
        keyed.join(combo_of_date, on="settlement_date")
        .select("_combo", "fund", "holdings_as_of")
        .unique()
        .join(equity, left_on=["fund", "holdings_as_of"], right_on=["fund", "as_of_date"])
        .join(funds, on="fund")
        .filter(pl.col("fund_rank") == pl.col("fund_rank").min().over("_combo", "symbol"))
        .unique(["_combo", "symbol"], keep="any")  # a ticker listed twice in one file
        .select("_combo", "symbol", "bucket", "fund", "holdings_as_of")
    )
    return (
        combo_of_date.join(combos, on="_combo")
        .with_columns(
            membership_flag=pl.when(pl.col("holdings_as_of") > pl.col("settlement_date"))
            .then(pl.lit("later_snapshot"))
            .otherwise(pl.lit("in_force"))
        )
        .select("settlement_date", "symbol", "bucket", "fund", "holdings_as_of", "membership_flag")
    )


def short_interest_by_bucket(
    short_interest: pl.LazyFrame, holdings: pl.LazyFrame, bucket_funds: Mapping[str, str]
) -> pl.LazyFrame:
    """One row per settlement date per size bucket (``bucket_funds`` maps fund -> bucket).

    Membership: see ``bucket_membership`` (equity rows only; first-listed fund wins). A bucket
    gets a row for every settlement date on which it has members (from any snapshot, earlier or
    later); ``symbols`` = 0 and null measures when none of them has short-interest data that day.

    - ``symbols``: members with a short-interest row; ``short_interest`` /
      ``prior_short_interest``: their sums.
    - ``short_interest_change``: sum / prior sum - 1 over members with both values (null when the
      prior sum is 0).
    - ``median_days_to_cover``: median of FINRA's days to cover, nulls (and any 999.99 sentinel)
      left out.
    - ``vw_days_to_cover``: sum short interest / sum average daily volume over members with ADV > 0.
    - ``pct_symbols_decreasing``: fraction of members (with both values) whose short interest fell.
    - ``holdings_as_of``: the snapshot date used (the latest one when several funds feed the
      bucket); ``membership_flag``: ``'later_snapshot'`` when any of the bucket's funds had to use
      a snapshot dated after the settlement date, else ``'in_force'``.
    """
    members = bucket_membership(short_interest, holdings, bucket_funds)
    si = short_interest.select(
        "settlement_date",
        "symbol",
        "short_interest",
        "prior_short_interest",
        "avg_daily_volume",
        days_to_cover=pl.when(pl.col("days_to_cover") < DTC_SENTINEL).then(pl.col("days_to_cover")),
    ).unique(["settlement_date", "symbol"], keep="any")

    buckets = members.group_by("settlement_date", "bucket").agg(
        holdings_as_of=pl.col("holdings_as_of").max(),
        membership_flag=pl.when((pl.col("membership_flag") == "later_snapshot").any())
        .then(pl.lit("later_snapshot"))
        .otherwise(pl.lit("in_force")),
    )
    si_col, prior_col, adv_col = (
        pl.col("short_interest"),
        pl.col("prior_short_interest"),
        pl.col("avg_daily_volume"),
    )
    paired = si_col.is_not_null() & prior_col.is_not_null()
    with_adv = si_col.is_not_null() & (adv_col > 0)
    measures = (
        members.join(si, on=["settlement_date", "symbol"])
        .group_by("settlement_date", "bucket")
        .agg(
            symbols=si_col.is_not_null().sum().cast(pl.Int64),
            short_interest=si_col.sum(),
            prior_short_interest=prior_col.sum(),
            _si_paired=si_col.filter(paired).sum(),
            _prior_paired=prior_col.filter(paired).sum(),
            median_days_to_cover=pl.col("days_to_cover").median(),
            _si_adv=si_col.filter(with_adv).sum(),
            _adv=adv_col.filter(with_adv).sum(),
            pct_symbols_decreasing=(si_col < prior_col).filter(paired).mean(),
        )
    )
    has_data = pl.col("symbols") > 0
    return (
        buckets.join(measures, on=["settlement_date", "bucket"], how="left")
        .with_columns(
            symbols=pl.col("symbols").fill_null(0),
            short_interest=pl.when(has_data).then(pl.col("short_interest")),
            prior_short_interest=pl.when(has_data).then(pl.col("prior_short_interest")),
            short_interest_change=pl.when(pl.col("_prior_paired") > 0).then(
                pl.col("_si_paired") / pl.col("_prior_paired") - 1
            ),
            vw_days_to_cover=pl.when(pl.col("_adv") > 0).then(pl.col("_si_adv") / pl.col("_adv")),
        )
        .select(
            "settlement_date",
            "bucket",
            "symbols",
            "short_interest",
            "prior_short_interest",
            "short_interest_change",
            "median_days_to_cover",
            "vw_days_to_cover",
            "pct_symbols_decreasing",
            "holdings_as_of",
            "membership_flag",
        )
        .sort("settlement_date", "bucket")
    )


def etf_short_interest(
    short_interest: pl.LazyFrame, symbols: Sequence[str] = ETF_SYMBOLS
) -> pl.LazyFrame:
    """One row per ETF per settlement date, for the listed ETFs that the short-interest data has.

    Keeps the input columns and adds ``short_interest_change`` (short interest / prior - 1, null
    when the prior is 0 or missing); a 999.99 days-to-cover sentinel is nulled.
    """
    return (
        short_interest.filter(pl.col("symbol").is_in(list(symbols)))
        .with_columns(
            days_to_cover=pl.when(pl.col("days_to_cover") < DTC_SENTINEL).then(
                pl.col("days_to_cover")
            ),
            short_interest_change=pl.when(pl.col("prior_short_interest") > 0).then(
                pl.col("short_interest") / pl.col("prior_short_interest") - 1
            ),
        )
        .sort("symbol", "settlement_date")
    )


# --------------------------------------------------------------------------------------------
# inflation


def regime_thresholds(thresholds: Mapping[str, float] | None = None) -> dict[str, float]:
    """The regime thresholds: ``DEFAULT_REGIME_THRESHOLDS`` overridden by ``thresholds``."""
    given = dict(thresholds or {})
    unknown = sorted(set(given) - set(DEFAULT_REGIME_THRESHOLDS))
    if unknown:
        raise ValueError(
            f"unknown inflation regime threshold(s) {unknown}; "
            f"expected {sorted(DEFAULT_REGIME_THRESHOLDS)}"
        )
    merged = {k: float(v) for k, v in {**DEFAULT_REGIME_THRESHOLDS, **given}.items()}
    for key in ("band", "reheating_gap"):
        if merged[key] < 0:
            raise ValueError(f"inflation regime threshold {key!r} must be >= 0, got {merged[key]}")
    return merged


def inflation_regime(
    core_yoy: pl.Expr, core_3m_annualized: pl.Expr, thresholds: Mapping[str, float] | None = None
) -> pl.Expr:
    """The inflation regime label of a month (an expression over one row).

    With y = core YoY, m = core 3-month annualised, T = target, B = band, G = reheating_gap:

    - null           if y or m is null;
    - ``reheating``    if y > T + B and m > y + G   (above the band and accelerating);
    - ``disinflation`` if y > T + B and m < y       (above the band and slowing);
    - ``elevated``     if y > T + B and y <= m <= y + G (above the band, momentum flat);
    - ``stable``       if T - B <= y <= T + B      (inside the band, whatever m; edges included);
    - ``below_target`` if y < T - B.

    The labels are exhaustive and mutually exclusive for non-null inputs.
    """
    t = regime_thresholds(thresholds)
    upper, lower, gap = t["target"] + t["band"], t["target"] - t["band"], t["reheating_gap"]
    above = core_yoy > upper
    return (
        pl.when(core_yoy.is_null() | core_3m_annualized.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(above & (core_3m_annualized > core_yoy + gap))
        .then(pl.lit("reheating"))
        .when(above & (core_3m_annualized < core_yoy))
        .then(pl.lit("disinflation"))
        .when(above)
        .then(pl.lit("elevated"))
        .when(core_yoy >= lower)
        .then(pl.lit("stable"))
        .otherwise(pl.lit("below_target"))
    )


def _vintage_order(frame: pl.LazyFrame) -> list[str]:
    """Columns that order the vintages of a fact: the date it became public (``available_on``,
    then the vendor ``vintage``) where the table has them, then ``known_at`` — so a backfill that
    loads an older vintage after a newer one still picks the newer value."""
    names = frame.collect_schema().names()
    return [c for c in ("available_on", "vintage") if c in names] + ["known_at"] + (["_seq"] if "_seq" in names else [])


def _latest_vintage(cpi: pl.LazyFrame) -> pl.LazyFrame:
    """One row per series per reference month: the value of the latest known vintage."""
    return (
        cpi.filter(pl.col("series_id").is_in(list(_CPI_LEVELS.values())))
        .with_columns(pl.col("ref_month").dt.truncate("1mo"))
        .group_by("series_id", "ref_month")
        .agg(pl.col("value").sort_by(_vintage_order(cpi), nulls_last=False).last())
    )


def _months_back(levels: pl.LazyFrame, months: int, suffix: str) -> pl.LazyFrame:
    """``levels`` re-keyed so that the row of month M sits at M + ``months`` (calendar lag)."""
    return levels.select(
        pl.col("ref_month").dt.offset_by(f"{months}mo"),
        *[pl.col(c).alias(f"{c}_{suffix}") for c in _CPI_LEVELS],
    )


def inflation_monthly(
    cpi: pl.LazyFrame, thresholds: Mapping[str, float] | None = None
) -> pl.LazyFrame:
    """One row per calendar month (ref_month) from the first to the last CPI month given.

    Uses, per series and month, the vintage with the latest ``known_at`` (ties broken by
    ``available_on``, then ``vintage``, where present). Levels: headline SA
    ``CPIAUCSL``, core SA ``CPILFESL``, headline NSA ``CUUR0000SA0``, core NSA
    ``CUUR0000SA0L1E`` (a missing series gives null columns).

    Every comparison is with the same series' value for the calendar month 1, 3 or 12 months
    earlier (a join on the month, never a row shift), so a month that was never published
    (October 2025: null value or no row) is a gap and every measure that needs it is null:
    ``*_yoy`` = v / v[M-12] - 1; ``*_mom_annualized`` = (v / v[M-1])^12 - 1 and
    ``*_3m_annualized`` = (v / v[M-3])^4 - 1 on the SA series; ``*_nsa_yoy`` on the NSA series.
    ``regime``: see ``inflation_regime`` (core YoY vs core 3-month annualised, ``thresholds``
    default ``DEFAULT_REGIME_THRESHOLDS``).
    """
    regime = inflation_regime(pl.col("core_yoy"), pl.col("core_3m_annualized"), thresholds)
    latest = _latest_vintage(cpi)
    levels = latest.group_by("ref_month").agg(
        **{
            name: pl.col("value").filter(pl.col("series_id") == series).first()
            for name, series in _CPI_LEVELS.items()
        }
    )
    months = (
        latest.select(
            pl.date_ranges(pl.col("ref_month").min(), pl.col("ref_month").max(), "1mo").alias(
                "ref_month"
            )
        )
        .explode("ref_month")
        .drop_nulls()
    )
    joined = months.join(levels, on="ref_month", how="left")
    for n, suffix in ((1, "1m"), (3, "3m"), (12, "12m")):
        joined = joined.join(_months_back(levels, n, suffix), on="ref_month", how="left")

    def ratio(level: str, suffix: str) -> pl.Expr:
        return pl.col(level) / pl.col(f"{level}_{suffix}")

    return (
        joined.with_columns(
            headline_yoy=ratio("headline_index", "12m") - 1,
            core_yoy=ratio("core_index", "12m") - 1,
            headline_mom_annualized=ratio("headline_index", "1m").pow(12) - 1,
            core_mom_annualized=ratio("core_index", "1m").pow(12) - 1,
            headline_3m_annualized=ratio("headline_index", "3m").pow(4) - 1,
            core_3m_annualized=ratio("core_index", "3m").pow(4) - 1,
            headline_nsa_yoy=ratio("headline_nsa_index", "12m") - 1,
            core_nsa_yoy=ratio("core_nsa_index", "12m") - 1,
        )
        .with_columns(regime=regime)
        .select(
            "ref_month",
            "headline_index",
            "core_index",
            "headline_yoy",
            "core_yoy",
            "headline_mom_annualized",
            "core_mom_annualized",
            "headline_3m_annualized",
            "core_3m_annualized",
            "headline_nsa_yoy",
            "core_nsa_yoy",
            "regime",
        )
        .sort("ref_month")
    )


# --------------------------------------------------------------------------------------------
# earnings outlook


def earnings_outlook(index_estimates: pl.LazyFrame) -> pl.LazyFrame:
    """One row per as_of_date (estimate snapshot) per index_code.

    - ``operating_pe``, ``growth_5y``, ``peg``: the metric's value in the snapshot; when it comes
      for several periods, the period equal to the snapshot's calendar year wins, then
      ``'current'``, then a null period, then the smallest other period.
    - ``operating_eps_current_year`` / ``operating_eps_next_year``: ``operating_eps`` for period
      = the calendar year of ``as_of_date`` / the year after (as a string); null when absent.
    - ``revision_since_prior``: ``operating_eps_next_year`` / the same index's previous snapshot's
      ``operating_eps`` for that same period - 1; null when there is no previous snapshot, it has
      no value for the period, or that value is not positive.

    Duplicate rows of a fact keep the one with the latest ``known_at``.
    """
    est = index_estimates.group_by("index_code", "as_of_date", "metric", "period").agg(
        pl.col("value").sort_by(_vintage_order(index_estimates), nulls_last=False).last()
    )
    snapshots = (
        est.select("index_code", "as_of_date")
        .unique()
        .with_columns(
            prior_as_of=pl.col("as_of_date").shift(1).over("index_code", order_by="as_of_date"),
            current_year=pl.col("as_of_date").dt.year().cast(pl.String),
            next_year=(pl.col("as_of_date").dt.year() + 1).cast(pl.String),
        )
    )
    preference = (
        pl.when(pl.col("period") == pl.col("current_year"))
        .then(0)
        .when(pl.col("period") == "current")
        .then(1)
        .when(pl.col("period").is_null())
        .then(2)
        .otherwise(3)
    )
    points = (
        est.filter(pl.col("metric").is_in(_POINT_METRICS))
        .join(
            snapshots.select("index_code", "as_of_date", "current_year"),
            on=["index_code", "as_of_date"],
        )
        .with_columns(_preference=preference.cast(pl.Int8))
        .group_by("index_code", "as_of_date", "metric")
        .agg(pl.col("value").sort_by("_preference", "period", nulls_last=True).first())
        .group_by("index_code", "as_of_date")
        .agg(
            **{
                metric: pl.col("value").filter(pl.col("metric") == metric).first()
                for metric in _POINT_METRICS
            }
        )
    )
    eps = est.filter(pl.col("metric") == "operating_eps").select(
        "index_code", "as_of_date", "period", "value"
    )
    return (
        snapshots.join(points, on=["index_code", "as_of_date"], how="left")
        .join(
            eps.rename({"period": "current_year", "value": "operating_eps_current_year"}),
            on=["index_code", "as_of_date", "current_year"],
            how="left",
        )
        .join(
            eps.rename({"period": "next_year", "value": "operating_eps_next_year"}),
            on=["index_code", "as_of_date", "next_year"],
            how="left",
        )
        .join(
            eps.rename(
                {"as_of_date": "prior_as_of", "period": "next_year", "value": "_prior_next_year"}
            ),
            on=["index_code", "prior_as_of", "next_year"],
            how="left",
        )
        .join(
            eps.rename(
                {"as_of_date": "prior_as_of", "period": "current_year", "value": "_prior_current_year"}
            ),
            on=["index_code", "prior_as_of", "current_year"],
            how="left",
        )
        .with_columns(
            revision_since_prior=pl.when(pl.col("_prior_next_year") > 0).then(
                pl.col("operating_eps_next_year") / pl.col("_prior_next_year") - 1
            ),
            revision_current_year_since_prior=pl.when(pl.col("_prior_current_year") > 0).then(
                pl.col("operating_eps_current_year") / pl.col("_prior_current_year") - 1
            ),
            operating_eps_forward_12m=forward_12m_eps(
                pl.col("as_of_date"), pl.col("operating_eps_current_year"), pl.col("operating_eps_next_year")
            ),
        )
        .with_columns(
            pe_gap_vs_sp500=pl.col("operating_pe")
            - pl.col("operating_pe").filter(pl.col("index_code") == "SP500").first().over("as_of_date"),
        )
        .select(
            "as_of_date",
            "index_code",
            "operating_pe",
            "growth_5y",
            "peg",
            "operating_eps_current_year",
            "operating_eps_next_year",
            "revision_since_prior",
            "revision_current_year_since_prior",
            "operating_eps_forward_12m",
            "pe_gap_vs_sp500",
        )
        .sort("index_code", "as_of_date")
    )


def forward_12m_eps(as_of: pl.Expr, current_year: pl.Expr, next_year: pl.Expr) -> pl.Expr:
    """The rolling forward-12-month EPS a strategist quotes: the current- and next-year estimates
    blended by the months of the current year still ahead of the snapshot, counting the snapshot's
    own month as elapsed when the snapshot is dated on its last day (a 30 September edition weighs
    the current year 3/12 and the next 9/12)."""
    elapsed = as_of.dt.month() - pl.when(as_of.dt.month_end() == as_of).then(0).otherwise(1)
    weight = (12 - elapsed) / 12
    return weight * current_year + (1 - weight) * next_year


# --------------------------------------------------------------------------------------------
# the monthly factor table


def _outlook_asof(
    months: pl.LazyFrame, outlook: pl.LazyFrame, index_code: str, size: str
) -> pl.LazyFrame:
    """Per month, the index's latest outlook snapshot dated on or before the month's last day."""
    snaps = (
        outlook.filter(pl.col("index_code") == index_code)
        .select(
            pl.col("as_of_date").alias(f"outlook_{size}_as_of"),
            pl.col("operating_pe").alias(f"pe_{size}"),
            pl.col("revision_since_prior").alias(f"eps_rev_{size}"),
        )
        .sort(f"outlook_{size}_as_of")
    )
    return (
        months.with_columns(_month_end=pl.col("month").dt.month_end())
        .sort("_month_end")
        .join_asof(
            snaps,
            left_on="_month_end",
            right_on=f"outlook_{size}_as_of",
            strategy="backward",
            coalesce=False,
        )
        .drop("_month_end")
    )


def factor_monthly(
    size_spread_monthly: pl.LazyFrame,
    inflation: pl.LazyFrame,
    si_buckets: pl.LazyFrame,
    outlook: pl.LazyFrame,
    *,
    pair: str = "IWM/SPY",
    small_index: str = "SP600",
    large_index: str = "SP500",
) -> pl.LazyFrame:
    """One row per month (first day) that any of the four inputs covers.

    - ``small_return``, ``large_return``, ``spread``, ``ff_smb``: ``size_spread_monthly`` for
      ``pair``.
    - ``headline_yoy``, ``core_yoy``, ``regime``: ``inflation_monthly`` for ref_month = month (the
      reference month, published the month after).
    - ``si_small_change``, ``si_large_change``, ``si_small_dtc``, ``si_large_dtc``: the
      ``short_interest_by_bucket`` rows (change and median days to cover) of the latest
      settlement date in the month (``si_settlement_date``).
    - ``pe_small`` / ``pe_large`` (operating P/E) and ``eps_rev_small`` / ``eps_rev_large``
      (``revision_since_prior``) of ``small_index`` / ``large_index``: the latest outlook snapshot
      dated on or before the month's last day (``outlook_small_as_of`` / ``outlook_large_as_of``).
    """
    month = pl.col("month").dt.truncate("1mo")
    spread = size_spread_monthly.filter(pl.col("pair") == pair).select(
        month, "small_return", "large_return", "spread", "ff_smb"
    )
    infl = inflation.select(
        pl.col("ref_month").dt.truncate("1mo").alias("month"), "headline_yoy", "core_yoy", "regime"
    )
    buckets = si_buckets.filter(pl.col("bucket").is_in(["small", "large"])).with_columns(
        month=pl.col("settlement_date").dt.truncate("1mo")
    )
    latest = buckets.filter(
        pl.col("settlement_date") == pl.col("settlement_date").max().over("month")
    )

    def bucket_value(column: str, bucket: str) -> pl.Expr:
        return pl.col(column).filter(pl.col("bucket") == bucket).first()

    si = latest.group_by("month").agg(
        si_settlement_date=pl.col("settlement_date").max(),
        si_small_change=bucket_value("short_interest_change", "small"),
        si_large_change=bucket_value("short_interest_change", "large"),
        si_small_dtc=bucket_value("median_days_to_cover", "small"),
        si_large_dtc=bucket_value("median_days_to_cover", "large"),
    )
    indices = outlook.filter(pl.col("index_code").is_in([small_index, large_index]))
    months = pl.concat(
        [
            spread.select("month"),
            infl.select("month"),
            si.select("month"),
            indices.select(pl.col("as_of_date").dt.truncate("1mo").alias("month")),
        ]
    ).unique()
    small_pe = _outlook_asof(months, outlook, small_index, "small")
    large_pe = _outlook_asof(months, outlook, large_index, "large")
    return (
        months.join(spread, on="month", how="left")
        .join(infl, on="month", how="left")
        .join(si, on="month", how="left")
        .join(small_pe, on="month", how="left")
        .join(large_pe, on="month", how="left")
        .select(
            "month",
            "small_return",
            "large_return",
            "spread",
            "ff_smb",
            "headline_yoy",
            "core_yoy",
            "regime",
            "si_small_change",
            "si_large_change",
            "si_small_dtc",
            "si_large_dtc",
            "pe_small",
            "pe_large",
            "eps_rev_small",
            "eps_rev_large",
            "si_settlement_date",
            "outlook_small_as_of",
            "outlook_large_as_of",
        )
        .sort("month")
    )
