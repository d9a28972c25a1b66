"""Daily price files → the ``prices`` schema (symbol, trade_date, open, high, low, close, adj_close, volume).

Accepted layouts (recognised by ``sources.formats.detect`` from the header, never the file name):

* ``yahoo_csv`` – Yahoo Finance download ``Date,Open,High,Low,Close,Adj Close,Volume``; ``null``
  cells (Yahoo's placeholder for a day without data) are empty, a row that is all ``null`` is dropped.
* ``yfinance_flat`` – ``yfinance.download(...).to_csv()`` of one ticker with the column level
  flattened: ``Date,Close,High,Low,Open,Volume`` (Close is split-adjusted, not dividend-adjusted;
  without an ``Adj Close`` column ``adj_close`` is null) or with ``Adj Close`` added.
* ``yfinance_multiindex`` – the same download written with its two-level columns: a ``Price`` row of
  field names, one or more ``Ticker`` rows, a ``Date,,,…`` row, then ``YYYY-MM-DD 00:00:00`` rows.
  A column whose field label is ``Price`` (the level name written over the first field) is Adj Close.
  Several tickers in one file are supported; the symbol comes from the (first) ``Ticker`` row.
* ``wide_closes`` – ``Date,<SYM>,<SYM>,…``: closes only; open/high/low/adj_close/volume are null and
  empty cells (before a listing, holidays) are dropped.
* ``stooq_csv`` – Stooq ``Date,Open,High,Low,Close,Volume``.
* ``stooq_bulk`` – Stooq bulk download ``<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,…`` with YYYYMMDD dates;
  only daily rows (``<PER>`` = ``D``); the market suffix ``.US`` is removed (``SPY.US`` → ``SPY``).
* ``fred_csv`` – FRED graph CSV ``observation_date,SP500`` (or the older ``DATE,SP500``): a close
  only; blank and ``.`` values (holidays) are dropped. FRED index series map to vendor symbols
  (``SP500`` → ``^GSPC``, ``DJIA`` → ``^DJI``, ``NASDAQCOM`` → ``^IXIC``, ``NASDAQ100`` → ``^NDX``).
* ``alphavantage_csv`` – Alpha Vantage ``timestamp,open,high,low,close,volume`` (newest first), also
  the adjusted variant with ``adjusted_close``.

Dates may also be ``M/D/YYYY`` (a file re-saved by Excel). Where the file has no symbol column the
symbol comes from the file name: ``IWM.csv`` → ``IWM``, ``^RUT.csv`` → ``^RUT``,
``yf_SPY_daily_full.csv`` → ``SPY``.
"""

from __future__ import annotations

import polars as pl

from sources.errors import BadInput
from sources.formats._common import (
    LINE,
    finish,
    lines_of,
    norm,
    read_rows,
    split_csv_line,
    symbol_from_filename,
    to_date,
    to_float,
)

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")

FRED_SYMBOLS = {"SP500": "^GSPC", "DJIA": "^DJI", "NASDAQCOM": "^IXIC", "NASDAQ100": "^NDX"}

# header label (normalised) → schema column
_ALIASES = {
    "date": "trade_date",
    "timestamp": "trade_date",
    "datetime": "trade_date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "adjusted_close": "adj_close",
    "adjusted close": "adj_close",
    "volume": "volume",
    "symbol": "symbol",
    "ticker": "symbol",
}
_NULL_TOKENS = ("null", "NaN", "nan", "N/A")

OHLC_HEADERS = {
    "yahoo_csv": ("date", "open", "high", "low", "close", "adj close", "volume"),
    "yfinance_flat": ("date", "close", "high", "low", "open", "volume"),
    "stooq_csv": ("date", "open", "high", "low", "close", "volume"),
    "alphavantage_csv": ("timestamp", "open", "high", "low", "close", "volume"),
}


def sniff(lines: list[str]) -> str | None:
    """The price format of a file whose non-empty lines start with ``lines`` (or None)."""
    if not lines:
        return None
    header = [norm(c) for c in split_csv_line(lines[0])]
    raw_header = [c.strip() for c in split_csv_line(lines[0])]
    if lines[0].upper().startswith("<TICKER>,<PER>,<DATE>"):
        return "stooq_bulk"
    if header and header[0] == "price" and len(lines) > 1 and norm(split_csv_line(lines[1])[0]) == "ticker":
        return "yfinance_multiindex"
    if header[:1] == ["timestamp"] and {"open", "high", "low", "close"} <= set(header):
        return "alphavantage_csv"
    known = set(_ALIASES) | {"dividends", "stock splits", "capital gains"}
    if header[:1] in (["date"], ["datetime"]) and "close" in header and set(header) <= known:
        if "open" not in header or header.index("close") < header.index("open"):
            return "yfinance_flat"  # yfinance orders the fields alphabetically
        if "adj close" in header:
            return "yahoo_csv"
        return "stooq_csv"
    if len(raw_header) == 2 and (raw_header[0] == "observation_date" or raw_header[0] == "DATE"):
        return "fred_csv"
    if raw_header and norm(raw_header[0]) == "date" and len(raw_header) >= 2:
        rest = raw_header[1:]
        if all(c and norm(c) not in _ALIASES for c in rest):
            return "wide_closes"
    return None


def _symbol_or_fail(filename: str) -> str:
    symbol = symbol_from_filename(filename)
    if symbol is None:
        raise BadInput(
            filename,
            "the file has no symbol column and its name names no symbol",
            expected="a file named after the symbol, e.g. IWM.csv or ^RUT.csv",
        )
    return symbol


# price columns that must be > 0 (as the landing suite requires) and those that must be >= 0
_POSITIVE = ("open", "close")
_NOT_NEGATIVE = ("high", "low", "adj_close", "volume")


def _typed(frame: pl.DataFrame, filename: str, labels: dict[str, str]) -> pl.DataFrame:
    """Cast the price columns present in ``frame`` (strings) and add null ones for the rest.

    A price that is not positive (open, close) or negative (high, low, adj close) and a negative
    volume raise ``BadInput`` naming the line: no traded price or volume is below zero."""
    for col in PRICE_COLUMNS:
        if col in frame.columns:
            frame = to_float(frame, col, filename, field=labels.get(col, col), null_tokens=_NULL_TOKENS)
            strict = col in _POSITIVE
            bad = (pl.col(col) <= 0) if strict else (pl.col(col) < 0)
            wrong = frame.filter(bad.fill_null(False))
            if wrong.height:
                row = wrong.sort(LINE).row(0, named=True) if LINE in wrong.columns else wrong.row(0, named=True)
                what = "volume" if col == "volume" else "price"
                raise BadInput(
                    filename,
                    f"{'zero or negative' if strict else 'negative'} {what}",
                    row=row.get(LINE),
                    field=labels.get(col, col),
                    found=row[col],
                    expected=f"a {'positive' if strict else 'non-negative'} {what}",
                )
        else:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    return frame


def _drop_empty_and_require_close(frame: pl.DataFrame, filename: str, labels: dict[str, str]) -> pl.DataFrame:
    values = [c for c in PRICE_COLUMNS if c in frame.columns]
    all_empty = pl.all_horizontal([pl.col(c).is_null() for c in values])
    frame = frame.filter(~all_empty)
    missing = frame.filter(pl.col("close").is_null())
    if missing.height:
        row = missing.row(0, named=True)
        raise BadInput(
            filename,
            "close is empty on a row that has other prices",
            row=row[LINE],
            field=labels.get("close", "close"),
            found="",
            expected="a number",
        )
    return frame


def _parse_ohlc(data: bytes, filename: str) -> pl.DataFrame:
    lines = lines_of(data, filename)
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        raise BadInput(filename, "empty file", expected="a header line and price rows")
    header = [c.strip() for c in split_csv_line(lines[start])]
    targets: dict[str, str] = {}
    names: list[str] = []
    for i, label in enumerate(header):
        target = _ALIASES.get(norm(label))
        if target and target not in targets:
            targets[target] = label
            names.append(target)
        else:
            names.append(f"_ignored_{i}")
    if "trade_date" not in targets or "close" not in targets:
        raise BadInput(filename, "no date or close column", found=lines[start][:120],
                       expected="a header with Date and Close")
    frame = read_rows(lines, start + 1, names, filename, labels=header)
    frame = to_date(frame, "trade_date", filename, field=targets["trade_date"])
    frame = _typed(frame.select([c for c in frame.columns if not c.startswith("_ignored_")]), filename, targets)
    frame = _drop_empty_and_require_close(frame, filename, targets)
    if "symbol" in targets:
        frame = frame.with_columns(pl.col("symbol").str.strip_chars())
        empty = frame.filter(pl.col("symbol").is_null() | (pl.col("symbol") == ""))
        if empty.height:
            raise BadInput(filename, "empty symbol", row=empty[LINE][0], field=targets["symbol"],
                           found="", expected="a ticker")
    else:
        frame = frame.with_columns(pl.lit(_symbol_or_fail(filename)).alias("symbol"))
    return finish("prices", frame, filename)


def parse_yahoo_csv(data: bytes, filename: str) -> pl.DataFrame:
    """Yahoo ``Date,Open,High,Low,Close,Adj Close,Volume``."""
    return _parse_ohlc(data, filename)


def parse_yfinance_flat(data: bytes, filename: str) -> pl.DataFrame:
    """yfinance flattened ``Date,Close,High,Low,Open,Volume`` (adj_close null without Adj Close)."""
    return _parse_ohlc(data, filename)


def parse_stooq_csv(data: bytes, filename: str) -> pl.DataFrame:
    """Stooq ``Date,Open,High,Low,Close,Volume``."""
    return _parse_ohlc(data, filename)


def parse_alphavantage_csv(data: bytes, filename: str) -> pl.DataFrame:
    """Alpha Vantage ``timestamp,open,high,low,close,volume`` (newest first; order is irrelevant)."""
    return _parse_ohlc(data, filename)


def parse_yfinance_multiindex(data: bytes, filename: str) -> pl.DataFrame:
    """yfinance multi-row header CSV (``Price`` / ``Ticker`` / ``Date`` rows)."""
    lines = lines_of(data, filename)
    rows = [split_csv_line(line) for line in lines[:8]]
    if not rows or norm(rows[0][0]) != "price":
        raise BadInput(filename, "not a yfinance multi-row header", found=lines[0][:120] if lines else "",
                       expected="a first line starting with 'Price,'")
    fields_row = [c.strip() for c in rows[0]]
    ticker_row: list[str] | None = None
    date_index = None
    for i in range(1, len(rows)):
        head = norm(rows[i][0]) if rows[i] else ""
        if head == "ticker" and ticker_row is None:
            ticker_row = [c.strip() for c in rows[i]]
        elif head in ("date", "datetime"):
            date_index = i
            break
        elif head != "ticker":
            break
    if ticker_row is None or date_index is None:
        raise BadInput(filename, "multi-row header without Ticker and Date rows", row=2,
                       found=lines[1][:120] if len(lines) > 1 else "", expected="'Ticker,…' rows then 'Date,,,…'")
    ncol = len(fields_row)
    names = ["trade_date_raw"] + [f"c{j}" for j in range(1, ncol)]
    frame = read_rows(lines, date_index + 1, names, filename, labels=fields_row)
    frame = to_date(frame, "trade_date_raw", filename, field="Date", target="trade_date")
    by_ticker: dict[str, dict[str, tuple[str, str]]] = {}
    for j in range(1, ncol):
        label = fields_row[j]
        target = "adj_close" if norm(label) == "price" else _ALIASES.get(norm(label))
        ticker = ticker_row[j] if j < len(ticker_row) else ""
        if not ticker:
            raise BadInput(filename, "column without a ticker", row=2, field=label, found="",
                           expected="a ticker in the Ticker row")
        if target is None or target in ("trade_date", "symbol"):
            continue  # Dividends, Stock Splits, …
        by_ticker.setdefault(ticker, {})[target] = (f"c{j}", f"{label} ({ticker})")
    parts = []
    for ticker, cols in by_ticker.items():
        if "close" not in cols:
            raise BadInput(filename, f"no Close column for {ticker}", row=1, found=lines[0][:120],
                           expected="a Close column per ticker")
        part = frame.select(
            [LINE, "trade_date", *[pl.col(src).alias(t) for t, (src, _) in cols.items()]]
        )
        labels = {t: lbl for t, (_, lbl) in cols.items()}
        part = _typed(part, filename, labels)
        part = _drop_empty_and_require_close(part, filename, labels)
        parts.append(part.with_columns(pl.lit(ticker).alias("symbol")))
    return finish("prices", pl.concat(parts, how="diagonal_relaxed"), filename)


def parse_wide_closes(data: bytes, filename: str) -> pl.DataFrame:
    """``Date,<SYM>,<SYM>,…`` closes; empty cells are dropped."""
    lines = lines_of(data, filename)
    start = next(i for i, line in enumerate(lines) if line.strip())
    header = [c.strip() for c in split_csv_line(lines[start])]
    symbols = header[1:]
    if len(set(symbols)) != len(symbols):
        raise BadInput(filename, "a symbol appears twice in the header", row=start + 1, found=lines[start][:120],
                       expected="distinct symbols")
    names = ["trade_date_raw"] + [f"c{j}" for j in range(1, len(header))]
    frame = read_rows(lines, start + 1, names, filename, labels=header)
    frame = to_date(frame, "trade_date_raw", filename, field=header[0], target="trade_date")
    parts = []
    for j, symbol in enumerate(symbols, start=1):
        part = frame.select([LINE, "trade_date", pl.col(f"c{j}").alias("close")])
        part = to_float(part, "close", filename, field=symbol, null_tokens=(*_NULL_TOKENS, "."))
        part = _typed(part.filter(pl.col("close").is_not_null()), filename, {"close": symbol})
        parts.append(part.with_columns(pl.lit(symbol).alias("symbol")))
    frame = pl.concat(parts) if parts else frame
    frame = _typed(frame, filename, {})
    return finish("prices", frame, filename)


def parse_stooq_bulk(data: bytes, filename: str) -> pl.DataFrame:
    """Stooq bulk ``<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>``."""
    lines = lines_of(data, filename)
    start = next(i for i, line in enumerate(lines) if line.strip())
    header = [c.strip().upper() for c in split_csv_line(lines[start])]
    mapping = {"<TICKER>": "symbol", "<PER>": "per", "<DATE>": "trade_date", "<OPEN>": "open",
               "<HIGH>": "high", "<LOW>": "low", "<CLOSE>": "close", "<VOL>": "volume"}
    names = [mapping.get(h, f"_ignored_{i}") for i, h in enumerate(header)]
    for needed in ("symbol", "trade_date", "close"):
        if needed not in names:
            raise BadInput(filename, "incomplete Stooq header", row=start + 1, found=lines[start][:120],
                           expected="<TICKER>,<PER>,<DATE>,…,<CLOSE>,…")
    frame = read_rows(lines, start + 1, names, filename, labels=header)
    if "per" in frame.columns:
        bad = frame.filter(pl.col("per").str.strip_chars().str.to_uppercase() != "D")
        if bad.height:
            raise BadInput(filename, "not a daily row", row=bad[LINE][0], field="<PER>", found=bad["per"][0],
                           expected="D (daily)")
    frame = to_date(frame, "trade_date", filename, field="<DATE>", formats=("ymd8", "iso"),
                    expected="a date like 20250131")
    labels = {"open": "<OPEN>", "high": "<HIGH>", "low": "<LOW>", "close": "<CLOSE>", "volume": "<VOL>"}
    frame = _typed(frame, filename, labels)
    frame = _drop_empty_and_require_close(frame, filename, labels)
    frame = frame.with_columns(
        pl.col("symbol").str.strip_chars().str.to_uppercase().str.replace(r"\.US$", "")
    )
    return finish("prices", frame, filename)


def parse_fred_csv(data: bytes, filename: str) -> pl.DataFrame:
    """FRED ``observation_date,SP500``: blank / ``.`` values (holidays) are dropped."""
    lines = lines_of(data, filename)
    start = next(i for i, line in enumerate(lines) if line.strip())
    header = [c.strip() for c in split_csv_line(lines[start])]
    if len(header) != 2:
        raise BadInput(filename, "a FRED CSV has two columns", row=start + 1, found=lines[start][:120],
                       expected="observation_date,<SERIES>")
    series = header[1]
    frame = read_rows(lines, start + 1, ["trade_date", "close"], filename, labels=header)
    frame = to_date(frame, "trade_date", filename, field=header[0])
    frame = to_float(frame, "close", filename, field=series, null_tokens=(".",))
    frame = frame.filter(pl.col("close").is_not_null())
    frame = _typed(frame, filename, {"close": series})
    frame = frame.with_columns(pl.lit(FRED_SYMBOLS.get(series, series)).alias("symbol"))
    return finish("prices", frame, filename)


PARSERS = {
    "yahoo_csv": parse_yahoo_csv,
    "yfinance_flat": parse_yfinance_flat,
    "yfinance_multiindex": parse_yfinance_multiindex,
    "wide_closes": parse_wide_closes,
    "stooq_csv": parse_stooq_csv,
    "stooq_bulk": parse_stooq_bulk,
    "fred_csv": parse_fred_csv,
    "alphavantage_csv": parse_alphavantage_csv,
}
