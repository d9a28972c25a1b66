"""FRED interest-rate series → the ``rates`` schema (series_id, date, value, realtime_start).

Series: ``RATES_SERIES`` — DFF (effective federal funds rate, daily, every calendar day) and DGS2
(2-year Treasury constant maturity, daily, business days). FRED publishes them in percent; they are
stored as fractions (5.33 → 0.0533), as the contract wants every rate.

Accepted layouts (the same FRED envelopes as CPI, told apart by the series):

* ``fred_csv`` – ``observation_date,DFF`` (also ``DATE,DGS2``), or ``date,value`` with the series in
  the file name (``DFF.csv``). An empty or ``.`` value (a holiday, FRED's missing marker) is kept
  as null. ``realtime_start`` is null (the vintage is unknown).
* ``fred_json`` – the FRED API ``series/observations`` body; ``"."`` is null and ``realtime_start``
  is kept as the vintage. The body does not name the series: a ``series_id`` key if present, else the
  file name (the live source names its batches ``DFF_<start>_<end>.json``).

Dates are ``YYYY-MM-DD`` (or ``M/D/YYYY`` in a file re-saved by Excel); any day of the month.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from sources.errors import BadInput
from sources.formats import cpi
from sources.formats._common import (
    LINE,
    finish,
    future_date_error,
    norm,
    not_after,
    read_rows,
    series_from_filename,
    split_csv_line,
    to_date,
    to_float,
)

RATES_SERIES = ("DFF", "DGS2")
PERCENT = 100.0
_NULLS = (".", "NA", "#N/A")
# a rate beyond ±100 % is not a rate (or not in percent)
_LIMIT = 100.0


def is_rates_series(series: str | None) -> bool:
    return bool(series) and series.strip().upper() in RATES_SERIES


def csv_series(lines: list[str], filename: str) -> str | None:
    """The series a FRED CSV holds: its second column, or the file name for ``date,value``."""
    raw = [c.strip() for c in split_csv_line(lines[0])] if lines else []
    if len(raw) != 2:
        return None
    return series_from_filename(filename) if norm(raw[1]) == "value" else raw[1]


def json_series(obj: object, filename: str) -> str | None:
    named = obj.get("series_id") if isinstance(obj, dict) else None
    return named or series_from_filename(filename)


def _series_or_fail(filename: str) -> str:
    series = series_from_filename(filename)
    if not is_rates_series(series):
        raise BadInput(filename, "the file does not name a rates series and neither does the file name",
                       found=series, expected=f"a file named after the FRED series ({', '.join(RATES_SERIES)})")
    return series


def _check_range(frame: pl.DataFrame, filename: str, field: str) -> None:
    bad = frame.filter(pl.col("value").abs() >= _LIMIT)
    if bad.height:
        row = bad.row(0, named=True)
        raise BadInput(filename, "not an interest rate in percent", row=row.get(LINE), field=field,
                       found=row["value"], expected=f"a rate in percent between -{_LIMIT:g} and {_LIMIT:g}")


def parse_fred_csv(data: bytes, filename: str) -> pl.DataFrame:
    """FRED ``observation_date,<SERIES>`` or ``date,value``; empty or ``.`` → null, row kept."""
    lines, start, header = cpi.fred_csv_header(data, filename, "observation_date,DFF and daily rows")
    series = _series_or_fail(filename) if norm(header[1]) == "value" else header[1].strip().upper()
    frame = read_rows(lines, start + 1, ["date", "value"], filename, labels=header)
    frame = to_date(frame, "date", filename, field=header[0])
    frame = to_float(frame, "value", filename, field=header[1], null_tokens=_NULLS)
    _check_range(frame, filename, header[1])
    frame = frame.with_columns(
        pl.col("value") / PERCENT,
        pl.lit(series).alias("series_id"),
        pl.lit(None, dtype=pl.Date).alias("realtime_start"),
    )
    return finish("rates", frame, filename)


def parse_fred_json(data: bytes, filename: str) -> pl.DataFrame:
    """FRED ``series/observations`` JSON of a daily rate; ``"."`` → null; ``realtime_start`` is the vintage."""
    obj = cpi.fred_json_body(data, filename)
    series = obj.get("series_id") or _series_or_fail(filename)
    rows: dict[str, list] = {"series_id": [], "date": [], "value": [], "realtime_start": []}
    limit = not_after()
    for i, ob in enumerate(obj["observations"]):
        where = f"observations[{i}]"
        text = ob.get("date") if isinstance(ob, dict) else ob
        try:
            day = date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise cpi._bad_json(filename, f"{where}.date", text, "a date YYYY-MM-DD")
        if limit is not None and day > limit:
            raise future_date_error(filename, day, row=None, field=f"{where}.date")
        value = cpi._float_or_none(ob.get("value"), (".",))
        if value == "bad":
            raise cpi._bad_json(filename, f"{where}.value", ob.get("value"), "a number in percent or '.'")
        if value is not None and abs(value) >= _LIMIT:
            raise cpi._bad_json(filename, f"{where}.value", ob.get("value"),
                                f"a rate in percent between -{_LIMIT:g} and {_LIMIT:g}")
        rows["series_id"].append(series)
        rows["date"].append(day)
        rows["value"].append(None if value is None else value / PERCENT)
        rows["realtime_start"].append(ob.get("realtime_start") or obj.get("realtime_start"))
    frame = pl.DataFrame(rows, schema={"series_id": pl.String, "date": pl.Date, "value": pl.Float64,
                                       "realtime_start": pl.String})
    return finish("rates", cpi.fred_vintages(frame, filename), filename)


PARSERS = {
    "fred_csv": parse_fred_csv,
    "fred_json": parse_fred_json,
}
