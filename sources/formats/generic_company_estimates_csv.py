"""A generic CSV for per-company estimates exported from a licensed vendor → ``company_estimates``.

Format ``generic_company_estimates_csv``, for users who license consensus data (FactSet, LSEG,
Bloomberg and the like export it in this long shape). UTF-8, comma-separated, one header line,
exactly these columns in this order::

    ticker,as_of_date,fiscal_period,period_end,metric,value
    AAPL,2021-04-07,FY1,2021-09-30,eps_mean,4.46
    AAPL,2021-04-07,FY1,2021-09-30,eps_mean_30d_ago,4.45
    AAPL,2021-04-07,FY2,2022-09-30,eps_mean,4.70
    AAPL,2021-04-07,FY2,2022-09-30,analysts,39

* ``ticker`` – the company's ticker **as the holding fund lists it** (``BRKB``), so that it meets
  ``core.holdings``; non-empty, no spaces.
* ``as_of_date`` – the day the vendor's consensus is as of (``YYYY-MM-DD``; ``M/D/YYYY`` accepted).
* ``fiscal_period`` – ``FY1`` (current, unreported fiscal year), ``FY2`` (the next), ``FQ1``,
  ``FQ2`` (current and next quarter); Yahoo's ``0y``, ``+1y``, ``0q``, ``+1q`` are accepted too.
* ``period_end`` – last day of that fiscal period (required: it weighs the fiscal years in the
  forward-twelve-month blend).
* ``metric`` – one of ``eps_mean`` (or ``eps_avg``), ``eps_low``, ``eps_high``, ``eps_year_ago``,
  ``analysts``, ``eps_growth`` (a fraction), ``eps_mean_7d_ago``, ``eps_mean_30d_ago``,
  ``eps_mean_60d_ago``, ``eps_mean_90d_ago`` (or ``eps_7d_ago`` …), ``up_7d``, ``up_30d``,
  ``down_7d``, ``down_30d`` (analysts revising up or down).
* ``value`` – a plain number: EPS per share in the quote currency, counts as whole numbers.

One value per ``(ticker, as_of_date, fiscal_period, metric)`` and one ``period_end`` per
``(ticker, as_of_date, fiscal_period)``; exact duplicate lines are dropped, conflicting ones
refused, naming the line.
"""

from __future__ import annotations

import polars as pl

from sources.errors import BadInput
from sources.formats._common import LINE, lines_of, norm, read_rows, split_csv_line, to_date, to_float
from sources.formats.yahoo_earnings_trend import SCHEMA, finish

FORMAT = "generic_company_estimates_csv"
HEADER = ("ticker", "as_of_date", "fiscal_period", "period_end", "metric", "value")
PERIODS = {"FY1": "0y", "FY2": "+1y", "FQ1": "0q", "FQ2": "+1q", "0Y": "0y", "+1Y": "+1y", "0Q": "0q", "+1Q": "+1q"}
METRICS = {
    "eps_mean": "eps_avg", "eps_avg": "eps_avg", "eps_low": "eps_low", "eps_high": "eps_high",
    "eps_year_ago": "eps_year_ago", "analysts": "analysts", "eps_growth": "eps_growth",
    **{f"eps_mean_{h}d_ago": f"eps_{h}d_ago" for h in (7, 30, 60, 90)},
    **{f"eps_{h}d_ago": f"eps_{h}d_ago" for h in (7, 30, 60, 90)},
    "up_7d": "up_7d", "up_30d": "up_30d", "down_7d": "down_7d", "down_30d": "down_30d",
}
_COUNTS = {c for c, t in SCHEMA.items() if t == pl.Int64()}


def sniff(lines: list[str]) -> str | None:
    if lines and tuple(norm(c) for c in split_csv_line(lines[0])) == HEADER:
        return FORMAT
    return None


def _first_bad(frame: pl.DataFrame, ok: pl.Series, filename: str, field: str, expected: str) -> None:
    if not ok.all():
        row = frame.filter(~ok).row(0, named=True)
        raise BadInput(filename, f"bad {field}", row=row[LINE], field=field, found=row[field], expected=expected)


def parse_generic_company_estimates_csv(data: bytes, filename: str) -> pl.DataFrame:
    """``ticker,as_of_date,fiscal_period,period_end,metric,value`` (see the module docstring)."""
    lines = lines_of(data, filename)
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None or tuple(norm(c) for c in split_csv_line(lines[start])) != HEADER:
        raise BadInput(filename, "not the generic company estimates CSV", row=(start or 0) + 1,
                       found=lines[start][:120] if start is not None else "", expected=",".join(HEADER))
    frame = read_rows(lines, start + 1, list(HEADER), filename)
    frame = frame.with_columns([pl.col(c).str.strip_chars() for c in ("ticker", "fiscal_period", "metric")])
    _first_bad(frame, frame["ticker"].fill_null("").str.contains(r"^\S+$"), filename, "ticker",
               "a ticker as the fund lists it, such as AAPL")
    _first_bad(frame, frame["fiscal_period"].fill_null("").str.to_uppercase().is_in(list(PERIODS)), filename,
               "fiscal_period", "FY1, FY2, FQ1 or FQ2")
    _first_bad(frame, frame["metric"].fill_null("").str.to_lowercase().is_in(list(METRICS)), filename, "metric",
               "one of " + ", ".join(sorted(METRICS)))
    frame = to_date(frame, "as_of_date", filename, formats=("iso", "mdy"))
    frame = to_date(frame, "period_end", filename, formats=("iso", "mdy"))
    frame = to_float(frame, "value", filename, required=True)
    frame = frame.with_columns(
        symbol=pl.col("ticker"),
        period=pl.col("fiscal_period").str.to_uppercase().replace_strict(PERIODS),
        column=pl.col("metric").str.to_lowercase().replace_strict(METRICS),
    ).unique(subset=["symbol", "as_of_date", "period", "period_end", "column", "value"], keep="first",
             maintain_order=True)
    key = ["symbol", "as_of_date", "period"]
    dup = frame.filter(~pl.struct(key + ["column"]).is_first_distinct())  # the later of two lines
    if dup.height:
        row = dup.row(0, named=True)
        raise BadInput(filename, "two different values for one metric", row=row[LINE], field="value",
                       found=f"{row['metric']} = {row['value']}",
                       expected="one value per ticker, day, fiscal period and metric")
    ends = frame.unique(subset=key + ["period_end"], keep="first", maintain_order=True)
    dup = ends.filter(~pl.struct(key).is_first_distinct())
    if dup.height:
        row = dup.row(0, named=True)
        raise BadInput(filename, "two period ends for one fiscal period", row=row[LINE], field="period_end",
                       found=str(row["period_end"]), expected="one period_end per ticker, day and fiscal period")
    counts = frame.filter(pl.col("column").is_in(list(_COUNTS)) & (pl.col("value") != pl.col("value").round(0)))
    if counts.height:
        row = counts.row(0, named=True)
        raise BadInput(filename, "a count that is not a whole number", row=row[LINE], field="value",
                       found=row["value"], expected="a whole number of analysts")
    wide = frame.pivot(on="column", index=key + ["period_end"], values="value", aggregate_function="first")
    for column in SCHEMA:
        if column not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
    return finish(wide.select(list(SCHEMA)), filename)


PARSERS = {FORMAT: parse_generic_company_estimates_csv}

__all__ = ["FORMAT", "HEADER", "PARSERS", "parse_generic_company_estimates_csv", "sniff"]
