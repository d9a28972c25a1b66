"""Bottom-up consensus outlook: per-company forward EPS aggregated by holdings weight.

Pure Polars: ``core.company_estimates`` and ``core.holdings`` in (as ``LazyFrame``, already cut to
the run's as-of date), ``LazyFrame`` out; no I/O. Rates and yields are fractions.

The rules
---------
* **Forward EPS of a company** (``forward_eps``): the next-twelve-months blend of its current
  (``0y``) and next (``+1y``) fiscal-year consensus, weighted by the part of the current fiscal year
  still ahead of the observation day: ``w = clip((end of 0y − day) / 365, 0, 1)``,
  ``fwd = w · EPS(0y) + (1 − w) · EPS(+1y)``. The same ``w`` blends the values of 7, 30, 60 and 90
  days before, so a revision measures analysts' changes only, not the passing of time.
* **Members** of an index (a bucket fund): the equity holdings with a ticker of the fund's latest
  snapshot on or before the day; a member's weight is its share of the members' market value (the
  file's ``Weight (%)`` is rounded to 0.01 %, which is zero for hundreds of small caps), or of
  their weights where the file has no market values; its price is ``market_value / shares``.
* **Fresh estimate**: the company's latest observation at most ``max_age_days`` (default 10)
  days before the day. The budgeted rotation of the consensus source asks for every company about
  once a week, so a company's revision windows end on its own observation day, within that age.
* **Coverage** = weight of the members with a fresh forward EPS / weight of all members.
* **Forward earnings yield** = Σ w·fwd/price / Σ w over covered members (for market-cap weights
  this is Σ forward earnings / Σ market value, so losses count as losses, never dropped);
  **forward P/E** = 1 / yield (null when the yield is not positive).
* **EPS revision over h days** (h = 7, 30, 60, 90), members with a value h days before:
  Σ w·(fwd − fwd_h)/price / |Σ w·fwd_h/price| (prices held fixed: the change of the aggregate
  forward earnings). **Revision breadth**: ``up_share_hd`` / ``down_share_hd`` = share of those
  members (by count) whose forward EPS is above / below its value h days before.
* **Suppression**: below ``min_coverage`` (default 0.8) of index weight, every aggregate of the row
  is null and ``suppressed`` is true; coverage and counts stay, so the gap shows.

Defaults: ``DEFAULT_MAX_AGE_DAYS`` = 10, ``DEFAULT_MIN_COVERAGE`` = 0.8, horizons 7/30/60/90.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import polars as pl

EQUITY = "Equity"
HORIZONS = (7, 30, 60, 90)
DEFAULT_MAX_AGE_DAYS = 10
DEFAULT_MIN_COVERAGE = 0.8
YEAR_DAYS = 365.0

_TREND = {h: f"eps_{h}d_ago" for h in HORIZONS}
METRICS = (
    ["forward_earnings_yield", "forward_pe"]
    + [f"eps_revision_{h}d" for h in HORIZONS]
    + [f"{side}_share_{h}d" for h in HORIZONS for side in ("up", "down")]
)


def _latest(frame: pl.LazyFrame, key: list[str]) -> pl.LazyFrame:
    """One row per ``key``: the one known last (where ``known_at`` is there)."""
    names = frame.collect_schema().names()
    order = [c for c in ("available_on", "known_at") if c in names]
    if not order:
        return frame.unique(subset=key, keep="last", maintain_order=True)
    return frame.sort(order, nulls_last=False).unique(subset=key, keep="last", maintain_order=True)


def forward_eps(company_estimates: pl.LazyFrame) -> pl.LazyFrame:
    """One row per company per observation day: ``forward_eps`` and ``forward_eps_{h}d_ago``
    (h = 7, 30, 60, 90), the next-twelve-months blend of the ``0y`` and ``+1y`` estimates, with
    ``fy0_weight`` (the part of the current fiscal year still ahead) and ``fy0_end``."""
    years = _latest(
        company_estimates.filter(pl.col("period").is_in(["0y", "+1y"])),
        ["symbol", "as_of_date", "period"],
    )
    values = ["eps_avg", *_TREND.values()]
    fy0 = years.filter(pl.col("period") == "0y").select(
        "symbol", "as_of_date", pl.col("period_end").alias("fy0_end"), *[pl.col(c).alias(f"{c}_0") for c in values]
    )
    fy1 = years.filter(pl.col("period") == "+1y").select(
        "symbol", "as_of_date", *[pl.col(c).alias(f"{c}_1") for c in values]
    )
    weight = (
        ((pl.col("fy0_end") - pl.col("as_of_date")).dt.total_days() / YEAR_DAYS).clip(0.0, 1.0).alias("fy0_weight")
    )

    def blend(column: str) -> pl.Expr:
        return pl.col("fy0_weight") * pl.col(f"{column}_0") + (1 - pl.col("fy0_weight")) * pl.col(f"{column}_1")

    return (
        fy0.join(fy1, on=["symbol", "as_of_date"], how="full", coalesce=True)
        .with_columns(weight)
        .select(
            "symbol",
            "as_of_date",
            "fy0_end",
            "fy0_weight",
            blend("eps_avg").alias("forward_eps"),
            *[blend(c).alias(f"forward_eps_{h}d_ago") for h, c in _TREND.items()],
        )
    )


def _members(holdings: pl.LazyFrame, dates: pl.LazyFrame, bucket_funds: Mapping[str, str]) -> pl.LazyFrame:
    """Per day and fund, the equity members of the fund's latest snapshot on or before the day."""
    funds = pl.LazyFrame({"index_code": list(bucket_funds), "bucket": list(bucket_funds.values())},
                         schema={"index_code": pl.String, "bucket": pl.String})
    value = pl.when(pl.col("market_value") > 0).then(pl.col("market_value"))
    snapshot = ["fund", "as_of_date"]
    equity = (
        holdings.filter(
            pl.col("fund").is_in(list(bucket_funds)),
            pl.col("asset_class") == EQUITY,
            pl.col("symbol").is_not_null(),
            (pl.col("market_value") > 0) | (pl.col("weight") > 0),
        )
        .group_by("fund", "as_of_date", "symbol")
        .agg(pl.col("weight", "market_value", "shares").sum())
        .select(
            pl.col("fund").alias("index_code"),
            pl.col("as_of_date").alias("holdings_as_of"),
            "symbol",
            # market value share where the file has values (its 'Weight (%)' is rounded to 0.01 %)
            weight=pl.when(value.sum().over(snapshot) > 0)
            .then(value.fill_null(0.0) / value.sum().over(snapshot))
            .otherwise(pl.col("weight") / pl.col("weight").sum().over(snapshot)),
            price=pl.when(pl.col("shares") > 0).then(pl.col("market_value") / pl.col("shares")),
        )
    )
    snapshots = equity.select("index_code", "holdings_as_of").unique().sort("holdings_as_of")
    grid = dates.join(funds, how="cross").sort("as_of_date")
    in_force = grid.join_asof(
        snapshots, left_on="as_of_date", right_on="holdings_as_of", by="index_code", strategy="backward",
        check_sortedness=False, coalesce=False,
    ).filter(pl.col("holdings_as_of").is_not_null())
    return in_force.join(equity, on=["index_code", "holdings_as_of"])


def consensus_outlook(
    company_estimates: pl.LazyFrame,
    holdings: pl.LazyFrame,
    bucket_funds: Mapping[str, str],
    *,
    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> pl.LazyFrame:
    """One row per observation day (a day with company estimates) per bucket fund
    (``index_code``, e.g. IWM, IVV) that has a holdings snapshot by then (rules in the module
    docstring)."""
    if not bucket_funds:
        raise ValueError("bucket_funds is empty: name at least one fund and its bucket")
    fwd = forward_eps(company_estimates).rename({"as_of_date": "estimate_as_of"}).sort("estimate_as_of")
    dates = company_estimates.select("as_of_date").unique()
    members = _members(holdings, dates, bucket_funds).sort("as_of_date")
    joined = members.join_asof(
        fwd, left_on="as_of_date", right_on="estimate_as_of", by="symbol", strategy="backward",
        tolerance=timedelta(days=max_age_days), check_sortedness=False, coalesce=False,
    )
    covered = pl.col("forward_eps").is_not_null() & (pl.col("price") > 0)
    w = pl.col("weight")

    def weighted_yield(eps: pl.Expr, mask: pl.Expr) -> pl.Expr:
        return (w * eps / pl.col("price")).filter(mask).sum() / w.filter(mask).sum()

    aggs = [
        pl.col("bucket").first(),
        pl.col("holdings_as_of").first(),
        pl.len().cast(pl.Int64).alias("names"),
        covered.sum().cast(pl.Int64).alias("names_covered"),
        (w.filter(covered).sum() / w.sum()).alias("coverage"),
        weighted_yield(pl.col("forward_eps"), covered).alias("forward_earnings_yield"),
        pl.col("estimate_as_of").filter(covered).min().alias("oldest_estimate"),
    ]
    for h in HORIZONS:
        before = pl.col(f"forward_eps_{h}d_ago")
        mask = covered & before.is_not_null()
        change = (w * (pl.col("forward_eps") - before) / pl.col("price")).filter(mask).sum()
        base = (w * before / pl.col("price")).filter(mask).sum().abs()
        n = mask.sum()
        aggs += [
            pl.when(base > 0).then(change / base).alias(f"eps_revision_{h}d"),
            pl.when(n > 0).then((pl.col("forward_eps") > before).filter(mask).sum() / n).alias(f"up_share_{h}d"),
            pl.when(n > 0).then((pl.col("forward_eps") < before).filter(mask).sum() / n).alias(f"down_share_{h}d"),
        ]
    out = (
        joined.group_by("as_of_date", "index_code")
        .agg(aggs)
        .with_columns(
            forward_pe=pl.when(pl.col("forward_earnings_yield") > 0).then(1 / pl.col("forward_earnings_yield")),
            suppressed=pl.col("coverage").fill_null(0.0) < min_coverage,
        )
    )
    shown = [pl.when(~pl.col("suppressed")).then(pl.col(m)).alias(m) for m in METRICS]
    return (
        out.with_columns(shown)
        .with_columns(
            forward_pe_gap_vs_large=pl.col("forward_pe")
            - pl.col("forward_pe").filter(pl.col("bucket") == "large").first().over("as_of_date"),
        )
        .select(
            "as_of_date", "index_code", "bucket", "holdings_as_of", "names", "names_covered", "coverage",
            "suppressed", *METRICS, "forward_pe_gap_vs_large", "oldest_estimate",
        )
        .sort("index_code", "as_of_date")
    )


# the bottom-up columns that marts.earnings_outlook carries beside the S&P DJI edition rows
OUTLOOK_COLUMNS = ("method", "bucket", "coverage", "names_covered", "forward_earnings_yield", "forward_pe",
                   *[f"eps_revision_{h}d" for h in HORIZONS],
                   *[f"{side}_share_{h}d" for h in HORIZONS for side in ("up", "down")])


def with_bottom_up(earnings_outlook: pl.LazyFrame, outlook: pl.LazyFrame) -> pl.LazyFrame:
    """``marts.earnings_outlook`` with the bottom-up rows added: the edition rows keep their values
    (``method = 'edition'``), each ``consensus_outlook`` row becomes a row with ``index_code`` = the
    fund (IWM, IVV, …) and ``method = 'bottom_up'``; columns one kind of row lacks are null."""
    edition = earnings_outlook.with_columns(method=pl.lit("edition"))
    bottom_up = outlook.select(
        "as_of_date", "index_code", pl.lit("bottom_up").alias("method"),
        *[c for c in OUTLOOK_COLUMNS if c != "method"],
    )
    return pl.concat([edition, bottom_up], how="diagonal_relaxed").sort("index_code", "as_of_date")


__all__ = ["DEFAULT_MAX_AGE_DAYS", "DEFAULT_MIN_COVERAGE", "HORIZONS", "METRICS", "OUTLOOK_COLUMNS",
           "consensus_outlook", "forward_eps", "with_bottom_up"]
