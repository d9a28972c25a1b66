"""FINRA short-interest files → the ``short_interest`` schema.

Accepted layouts:

* ``finra_pipe`` – the FINRA biweekly file (``shrtYYYYMMDD.csv``), pipe-delimited with the header
  ``accountingYearMonthNumber|symbolCode|issueName|issuerServicesGroupExchangeCode|marketClassCode|
  currentShortPositionQuantity|previousShortPositionQuantity|stockSplitFlag|averageDailyVolumeQuantity|
  daysToCoverQuantity|revisionFlag|changePercent|changePreviousNumber|settlementDate``.
* ``finra_json`` – the FINRA Query API (``consolidatedShortInterest``) JSON: a list of objects with the
  same field names (numbers may be JSON numbers or strings).

Mapping: symbolCode → symbol, settlementDate → settlement_date (``YYYY-MM-DD`` or ``YYYYMMDD``),
issueName → issue_name, marketClassCode → market, currentShortPositionQuantity → short_interest,
previousShortPositionQuantity → prior_short_interest, averageDailyVolumeQuantity → avg_daily_volume,
daysToCoverQuantity → days_to_cover, where FINRA's sentinel 999.99 (sent when the average daily
volume is 0) becomes null.
"""

from __future__ import annotations

import json

import polars as pl

from sources.errors import BadInput
from sources.formats._common import LINE, finish, lines_of, read_rows, to_date, to_float

DAYS_TO_COVER_SENTINEL = 999.99

FIELDS = {
    "symbolCode": "symbol",
    "settlementDate": "settlement_date",
    "issueName": "issue_name",
    "marketClassCode": "market",
    "currentShortPositionQuantity": "short_interest",
    "previousShortPositionQuantity": "prior_short_interest",
    "averageDailyVolumeQuantity": "avg_daily_volume",
    "daysToCoverQuantity": "days_to_cover",
}
_INTS = ("short_interest", "prior_short_interest", "avg_daily_volume")


def sniff(lines: list[str]) -> str | None:
    if lines and "|" in lines[0] and "symbolCode" in lines[0] and "settlementDate" in lines[0]:
        return "finra_pipe"
    return None


def sniff_json(obj: object) -> str | None:
    if isinstance(obj, list) and obj and isinstance(obj[0], dict) and {"symbolCode", "settlementDate"} <= set(obj[0]):
        return "finra_json"
    return None


def _typed(frame: pl.DataFrame, filename: str) -> pl.DataFrame:
    frame = to_date(frame, "settlement_date", filename, field="settlementDate", formats=("iso", "ymd8", "iso_time"))
    for target in (*_INTS, "days_to_cover"):
        source = next(k for k, v in FIELDS.items() if v == target)
        frame = to_float(frame, target, filename, field=source, thousands=True)
        negative = frame[target].is_not_null() & (frame[target] < 0)
        if negative.any():
            row = frame.filter(negative).row(0, named=True)
            raise BadInput(filename, f"negative {source}", row=row[LINE], field=source, found=row[target],
                           expected="a number of zero or more")
        if target in _INTS:
            col = frame[target]
            fractional = col.is_not_null() & (col != col.round(0))
            if fractional.any():
                row = frame.filter(fractional).row(0, named=True)
                raise BadInput(filename, f"{source} is not a whole number", row=row[LINE], field=source,
                               found=row[target], expected="an integer share count")
    symbol_blank = frame["symbol"].is_null() | (frame["symbol"].str.strip_chars() == "")
    if symbol_blank.any():
        raise BadInput(filename, "empty symbol", row=frame.filter(symbol_blank)[LINE][0], field="symbolCode",
                       found="", expected="a symbol")
    frame = frame.with_columns(
        pl.col("symbol").str.strip_chars(),
        pl.col("issue_name").str.strip_chars(),
        pl.col("market").str.strip_chars(),
        pl.when((pl.col("days_to_cover") - DAYS_TO_COVER_SENTINEL).abs() < 1e-9)
        .then(None)
        .otherwise(pl.col("days_to_cover"))
        .alias("days_to_cover"),
        *[pl.col(c).round(0).cast(pl.Int64) for c in _INTS],
    )
    return finish("short_interest", frame, filename)


def parse_finra_pipe(data: bytes, filename: str) -> pl.DataFrame:
    """FINRA pipe-delimited biweekly file."""
    lines = lines_of(data, filename)
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        raise BadInput(filename, "empty file", expected="a FINRA header line")
    header = [c.strip() for c in lines[start].split("|")]
    missing = [f for f in FIELDS if f not in header]
    if missing:
        raise BadInput(filename, f"FINRA header lacks {missing}", row=start + 1, found=lines[start][:160],
                       expected="|".join(FIELDS))
    names = [FIELDS.get(h, f"_ignored_{i}") for i, h in enumerate(header)]
    frame = read_rows(lines, start + 1, names, filename, delimiter="|", labels=header)
    return _typed(frame.select([*FIELDS.values(), LINE]), filename)


def parse_finra_json(data: bytes, filename: str) -> pl.DataFrame:
    """FINRA Query API JSON: a list of objects with the pipe file's field names."""
    try:
        obj = json.loads(bytes(data).decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(filename, f"not valid JSON ({exc})", expected="a JSON list") from exc
    if not isinstance(obj, list):
        raise BadInput(filename, "not a list of records", found=type(obj).__name__, expected="a JSON list")
    cols: dict[str, list] = {v: [] for v in FIELDS.values()}
    for i, rec in enumerate(obj):
        if not isinstance(rec, dict):
            raise BadInput(filename, f"record [{i}] is not an object", field=f"[{i}]", found=rec,
                           expected="an object")
        for source, target in FIELDS.items():
            if source not in rec:
                raise BadInput(filename, f"record [{i}] lacks {source}", field=f"[{i}].{source}",
                               expected=f"the fields {list(FIELDS)}")
            value = rec[source]
            cols[target].append(None if value is None else str(value))
    frame = pl.DataFrame({k: pl.Series(k, v, dtype=pl.String) for k, v in cols.items()})
    # JSON has no lines: report the record's 1-based position instead
    frame = frame.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(LINE))
    return _typed(frame, filename)


PARSERS = {"finra_pipe": parse_finra_pipe, "finra_json": parse_finra_json}
