"""Inbox file formats: recognise a file by its content and parse it into a dataset's schema.

``detect(data, filename)`` looks at the bytes only (zip/xlsx magic and sheet names, JSON keys, the
header line and delimiter); the file name is used by some parsers for what the content does not say
(a symbol, a FRED series id, a fund code), never to choose the format.

``parse(data, filename, dataset=None)`` detects the format and returns a ``polars.DataFrame``
conformed to ``sources.schemas.SCHEMAS[dataset]``, sorted by the dataset's key, exact duplicate
rows dropped. Bad input raises ``sources.errors.BadInput`` naming the file, the 1-based line (or
the record / cell for JSON and xlsx), the field, what was found and what was expected.

One module per format family: ``prices``, ``cpi``, ``rates`` (FRED DFF/DGS2), ``short_interest``, ``holdings``, ``factors``,
``estimates`` (S&P DJI workbook), ``generic_estimates_csv`` and ``yahoo_chart`` (the Yahoo chart API
v8 JSON that the live Yahoo source lands).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable

import polars as pl

from sources.errors import BadInput
from sources.formats import (
    cpi,
    estimates,
    factors,
    generic_company_estimates_csv,
    generic_estimates_csv,
    holdings,
    prices,
    rates,
    short_interest,
    yahoo_chart,
    yahoo_earnings_trend,
)
from sources.formats._common import lines_of
from sources.formats.estimates import edition_notice

Parser = Callable[[bytes, str], pl.DataFrame]

# (dataset, format) → parser
PARSERS: dict[tuple[str, str], Parser] = {
    **{("prices", f): p for f, p in prices.PARSERS.items()},
    **{("prices", f): p for f, p in yahoo_chart.PARSERS.items()},
    **{("cpi", f): p for f, p in cpi.PARSERS.items()},
    **{("rates", f): p for f, p in rates.PARSERS.items()},
    **{("short_interest", f): p for f, p in short_interest.PARSERS.items()},
    **{("holdings", f): p for f, p in holdings.PARSERS.items()},
    **{("factors", f): p for f, p in factors.PARSERS.items()},
    **{("estimates", f): p for f, p in estimates.PARSERS.items()},
    **{("estimates", f): p for f, p in generic_estimates_csv.PARSERS.items()},
    **{("company_estimates", f): p for f, p in yahoo_earnings_trend.PARSERS.items()},
    **{("company_estimates", f): p for f, p in generic_company_estimates_csv.PARSERS.items()},
}

ACCEPTED = {
    "prices": "Yahoo CSV (Date,Open,High,Low,Close,Adj Close,Volume); yfinance flattened (Date,Close,High,Low,"
    "Open,Volume); yfinance multi-row header (Price/Ticker/Date rows); wide closes (Date,<SYM>,…); Stooq "
    "(Date,Open,High,Low,Close,Volume or <TICKER>,<PER>,<DATE>,…); FRED (observation_date,SP500); "
    "Alpha Vantage (timestamp,open,high,low,close,volume); Yahoo chart API v8 JSON (chart.result[])",
    "cpi": "FRED CSV (date,value or observation_date,<SERIES>); FRED series/observations JSON; "
    "Date,Index,Inflation (BLS CUUR0000SA0); BLS API v2 JSON",
    "rates": "FRED CSV (observation_date,DFF or observation_date,DGS2; date,value named DFF.csv); "
    "FRED series/observations JSON of DFF or DGS2",
    "short_interest": "FINRA pipe-delimited (accountingYearMonthNumber|symbolCode|…|settlementDate); "
    "FINRA Query API JSON",
    "holdings": "iShares holdings CSV (Weight (%) or Market Weight layout)",
    "factors": "Kenneth French CSV (,Mkt-RF,SMB,HML,RF …) or a zip holding one",
    "estimates": "S&P DJI sp-500-eps-est.xlsx; generic CSV index_code,as_of_date,metric,period,value",
    "company_estimates": "Yahoo quoteSummary earningsTrend JSON named <TICKER>_<YYYY-MM-DD>.json or a zip of them; "
    "generic CSV ticker,as_of_date,fiscal_period,period_end,metric,value",
}

# FRED CSV columns that are index levels (prices), not CPI series
_FRED_PRICE_SERIES = set(prices.FRED_SYMBOLS)


def _accepted(dataset: str | None = None) -> str:
    items = [ACCEPTED[dataset]] if dataset in ACCEPTED else [f"{d}: {t}" for d, t in ACCEPTED.items()]
    return "; ".join(items)


def _xlsx_sheets(zf: zipfile.ZipFile) -> list[str]:
    try:
        xml = zf.read("xl/workbook.xml").decode("utf-8", "replace")
    except KeyError:
        return []
    return [re.sub(r"&amp;", "&", m) for m in re.findall(r'<(?:\w+:)?sheet\b[^>]*\bname="([^"]*)"', xml)]


def _detect_zip(data: bytes, filename: str, dataset: str | None) -> tuple[str, str]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BadInput(filename, f"unreadable zip/xlsx ({exc})", expected=_accepted(dataset)) from exc
    with zf:
        names = zf.namelist()
        if "xl/workbook.xml" in names:
            sheets = _xlsx_sheets(zf)
            if any(s.strip().upper().startswith("ESTIMATES") for s in sheets):
                return "estimates", "spdji_eps_xlsx"
            raise BadInput(filename, "unknown workbook", found=f"sheets {sheets}",
                           expected="the S&P DJI sp-500-eps-est.xlsx workbook (sheet 'ESTIMATES&PEs')")
        fmt = yahoo_earnings_trend.sniff_zip(zf)
        if fmt:
            return "company_estimates", fmt
        members = [n for n in names if n.lower().endswith((".csv", ".txt"))]
        if len(members) == 1:
            inner = zf.read(members[0])
            if factors.sniff(lines_of(inner[:65536], filename)[:60]):
                return "factors", "french_zip"
        raise BadInput(filename, "unknown zip content", found=f"members {names[:10]}",
                       expected="a Kenneth French zip holding one CSV, or an .xlsx workbook")


def _detect_json(data: bytes, filename: str, dataset: str | None) -> tuple[str, str]:
    try:
        obj = json.loads(bytes(data).decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(filename, f"not valid JSON ({exc})", expected=_accepted(dataset)) from exc
    fmt = yahoo_chart.sniff_json(obj)
    if fmt:
        return "prices", fmt
    fmt = yahoo_earnings_trend.sniff_json(obj)
    if fmt:
        return "company_estimates", fmt
    fmt = cpi.sniff_json(obj)
    if fmt == "fred_json" and (dataset == "rates" or rates.is_rates_series(rates.json_series(obj, filename))):
        return "rates", fmt
    if fmt:
        return "cpi", fmt
    fmt = short_interest.sniff_json(obj)
    if fmt:
        return "short_interest", fmt
    keys = sorted(obj)[:12] if isinstance(obj, dict) else (
        sorted(obj[0])[:12] if isinstance(obj, list) and obj and isinstance(obj[0], dict) else type(obj).__name__
    )
    raise BadInput(filename, "unrecognised JSON", found=f"keys {keys}", expected=_accepted(dataset))


def detect(data: bytes, filename: str, dataset: str | None = None) -> tuple[str, str]:
    """(dataset, format) of a file, judged by its content.

    ``dataset`` only settles the ambiguous FRED files: a two-column FRED CSV
    (``observation_date,<SERIES>``) is a rates series for DFF/DGS2 (``rates.RATES_SERIES``), a price
    series for SP500/DJIA/NASDAQCOM/NASDAQ100 and a CPI series otherwise, unless ``dataset`` says
    which; a FRED JSON body is rates for those series (from ``series_id`` or the file name) or
    when ``dataset`` is ``rates``, else CPI.
    """
    data = bytes(data)
    if not data.strip():
        raise BadInput(filename, "empty file", expected=_accepted(dataset))
    if data[:4] == b"PK\x03\x04":
        return _detect_zip(data, filename, dataset)
    head = data[:65536].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"{", b"["):
        return _detect_json(data, filename, dataset)
    all_lines = lines_of(data[:65536], filename)
    lines = [line for line in all_lines if line.strip()]
    found = lines[0][:160] if lines else ""
    if not lines:
        raise BadInput(filename, "no text lines", expected=_accepted(dataset))
    if (fmt := short_interest.sniff(lines)) is not None:
        return "short_interest", fmt
    if (fmt := holdings.sniff(lines)) is not None:
        return "holdings", fmt
    if (fmt := factors.sniff(lines)) is not None:
        return "factors", fmt
    if (fmt := generic_estimates_csv.sniff(lines)) is not None:
        return "estimates", fmt
    if (fmt := generic_company_estimates_csv.sniff(lines)) is not None:
        return "company_estimates", fmt
    cpi_fmt = cpi.sniff(lines)
    price_fmt = prices.sniff(lines)
    if cpi_fmt == "fred_csv" and (dataset == "rates" or rates.is_rates_series(rates.csv_series(lines, filename))):
        return "rates", "fred_csv"
    if cpi_fmt == "fred_csv" and price_fmt == "fred_csv":
        series = lines[0].split(",")[1].strip()
        if dataset in ("prices", "cpi"):
            return dataset, "fred_csv"
        return ("prices" if series in _FRED_PRICE_SERIES else "cpi"), "fred_csv"
    if cpi_fmt:
        return "cpi", cpi_fmt
    if price_fmt:
        return "prices", price_fmt
    raise BadInput(filename, "unrecognised file format", row=all_lines.index(lines[0]) + 1, found=found,
                   expected=f"one of the accepted formats: {_accepted(dataset)}")


def parse(data: bytes, filename: str, dataset: str | None = None) -> pl.DataFrame:
    """Parse a file into its dataset's schema (see the module docstring).

    With ``dataset`` given, a file of another dataset raises ``BadInput``.
    """
    found_dataset, fmt = detect(data, filename, dataset)
    if dataset is not None and found_dataset != dataset:
        raise BadInput(filename, f"this is a {found_dataset} file ({fmt}), not {dataset}",
                       expected=f"for {dataset}: {_accepted(dataset)}")
    return PARSERS[(found_dataset, fmt)](bytes(data), filename)


__all__ = ["ACCEPTED", "PARSERS", "detect", "edition_notice", "parse"]
