"""iShares fund-holdings CSV → the ``holdings`` schema.

The download has a preamble (fund name on the first line, ``Fund Holdings as of,"May 05, 2026"``,
inception date, shares outstanding, …), a blank line, the column header, one quoted row per holding
(numbers with thousands separators, ``-`` for nothing) and, after a blank line, a legal footer.

Two column layouts are accepted (columns are found by name, in any order):

* ``ishares_csv`` older: ``Ticker,Name,Sector,Asset Class,Market Value,Weight (%),Notional Value,
  Quantity|Shares,Price,…`` → weight = ``Weight (%)`` / 100;
* ``ishares_csv`` newer: ``Ticker,Name,Type,Sector,Asset Class,Market Value,Notional Value,Quantity,
  …,Market Weight,Notional Weight`` → weight = ``Market Weight`` / 100.

Every row is kept, cash, futures and swaps included (``asset_class`` tells them apart); ``-`` is null
(so a holding without a ticker has a null symbol). The fund code comes from the fund name on the first
line (``iShares Russell 2000 ETF`` → ``IWM``, ``iShares Core S&P 500 ETF`` → ``IVV``, …) or else from
the file name (``iShares_IWM_holdings_2026-05-05.csv`` → ``IWM``); if both are known they must agree.

iShares lists some tickers more than once (a stock and an equity swap on it, a share and its CVR) and
several unlisted holdings carry no ticker at all, so ``(fund, as_of_date, symbol)`` is not unique in
real files: exact duplicate rows are dropped, other rows are all kept.
"""

from __future__ import annotations

import re
from datetime import datetime

import polars as pl

from sources.errors import BadInput
from sources.formats._common import (
    LINE,
    finish,
    future_date_error,
    lines_of,
    norm,
    not_after,
    read_rows,
    split_csv_line,
    stem_of,
    to_float,
)

FUND_NAMES = {
    "ishares russell 2000 etf": "IWM",
    "ishares russell 1000 etf": "IWB",
    "ishares russell 3000 etf": "IWV",
    "ishares russell mid-cap etf": "IWR",
    "ishares core s&p 500 etf": "IVV",
    "ishares core s&p small-cap etf": "IJR",
    "ishares core s&p mid-cap etf": "IJH",
    "ishares core s&p total u.s. stock market etf": "ITOT",
}
_DASH = ("-", "--")


def sniff(lines: list[str]) -> str | None:
    head = lines[:20]
    has_as_of = any(line.startswith("Fund Holdings as of") for line in head)
    has_header = any(norm(split_csv_line(line)[0]) == "ticker" and "name" in line.lower() for line in head if line)
    return "ishares_csv" if has_as_of and has_header else None


def _fund_code(lines: list[str], filename: str) -> str:
    title = lines[0].strip().strip('"').strip() if lines else ""
    from_title = FUND_NAMES.get(norm(title))
    from_name = None
    for token in re.split(r"[_\s\-]+", stem_of(filename)):
        if re.fullmatch(r"[A-Z]{2,5}", token) and token not in {"ETF", "CSV"}:
            from_name = token
            break
    if from_title and from_name and from_title != from_name:
        raise BadInput(filename, f"the file name says fund {from_name} but the file is {title!r}", row=1,
                       found=title, expected=f"a file of fund {from_name}")
    code = from_title or from_name
    if code is None:
        raise BadInput(filename, "cannot tell the fund", row=1, found=title,
                       expected=f"one of {sorted(set(FUND_NAMES.values()))} named on the first line or in the file name")
    return code


def _as_of(lines: list[str], filename: str):
    for i, line in enumerate(lines[:20]):
        if line.startswith("Fund Holdings as of"):
            fields = split_csv_line(line)
            text = fields[1].strip() if len(fields) > 1 else ""
            for fmt in ("%b %d, %Y", "%B %d, %Y", "%d/%b/%Y", "%m/%d/%Y", "%Y-%m-%d"):
                try:
                    day = datetime.strptime(text, fmt).date()
                except ValueError:
                    continue
                limit = not_after()
                if limit is not None and day > limit:
                    raise future_date_error(filename, day, row=i + 1, field="Fund Holdings as of")
                return day
            raise BadInput(filename, "unreadable holdings date", row=i + 1, field="Fund Holdings as of",
                           found=text, expected='a date like "May 05, 2026"')
    raise BadInput(filename, "no 'Fund Holdings as of' line", expected='Fund Holdings as of,"May 05, 2026"')


def parse_ishares_csv(data: bytes, filename: str) -> pl.DataFrame:
    """iShares holdings CSV (older ``Weight (%)`` or newer ``Market Weight`` layout)."""
    lines = lines_of(data, filename)
    fund = _fund_code(lines, filename)
    as_of = _as_of(lines, filename)
    header_index = next(
        (i for i, line in enumerate(lines[:40]) if line and norm(split_csv_line(line)[0]) == "ticker"), None
    )
    if header_index is None:
        raise BadInput(filename, "no column header line", expected="Ticker,Name,…")
    header = [c.strip() for c in split_csv_line(lines[header_index])]
    labels = [norm(h) for h in header]

    def find(*names: str) -> str | None:
        for name in names:
            if name in labels:
                return header[labels.index(name)]
        return None

    want = {
        "symbol": find("ticker"),
        "name": find("name"),
        "sector": find("sector"),
        "asset_class": find("asset class"),
        "market_value": find("market value"),
        "weight": find("weight (%)", "market weight"),
        "shares": find("quantity", "shares"),
    }
    missing = [k for k, v in want.items() if v is None]
    if missing:
        raise BadInput(filename, f"holdings header lacks columns for {missing}", row=header_index + 1,
                       found=lines[header_index][:200],
                       expected="Ticker,Name,Sector,Asset Class,Market Value,Weight (%)|Market Weight,Quantity,…")
    names = [f"c{j}" for j in range(len(header))]
    frame = read_rows(lines, header_index + 1, names, filename, stop_at_blank=True, labels=header)
    frame = frame.select(
        [pl.col(f"c{header.index(src)}").alias(dst) for dst, src in want.items()] + [pl.col(LINE)]
    )
    for col in ("market_value", "weight", "shares"):
        frame = to_float(frame, col, filename, field=want[col], thousands=True, null_tokens=_DASH)
    frame = frame.with_columns(
        [
            pl.when(pl.col(c).str.strip_chars().is_in(["", *_DASH])).then(None).otherwise(pl.col(c).str.strip_chars()).alias(c)
            for c in ("symbol", "name", "sector", "asset_class")
        ]
    ).with_columns(
        (pl.col("weight") / 100.0).alias("weight"),
        pl.lit(fund).alias("fund"),
        pl.lit(as_of).alias("as_of_date"),
    )
    if frame.is_empty():
        raise BadInput(filename, "no holdings rows after the header", row=header_index + 1,
                       expected="one row per holding")
    return finish("holdings", frame, filename, check_conflicts=False)


PARSERS = {"ishares_csv": parse_ishares_csv}
