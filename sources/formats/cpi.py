"""Consumer-price-index files → the ``cpi`` schema (series_id, ref_month, value, realtime_start).

Accepted layouts:

* ``fred_csv`` – FRED CSV, either ``date,value`` (the series id comes from the file name,
  ``CPIAUCSL.csv`` / ``fred_CPIAUCSL_monthly.csv``) or ``observation_date,<SERIES>`` (also the older
  ``DATE,<SERIES>``). An empty or ``.`` value means "not published" (October 2025): the row is kept
  with a null value. ``realtime_start`` is null (the vintage is unknown).
* ``fred_json`` – the FRED API ``series/observations`` body (``{"observations": [{"realtime_start",
  "realtime_end", "date", "value"}]}``); ``"."`` is null; ``realtime_start`` is kept as the vintage.
  The body does not name the series: it comes from a ``series_id`` key if present, else the file name.
* ``datasets_cpi_csv`` – the datasets/cpi-us ``Date,Index,Inflation`` file: BLS CPI-U all items,
  not seasonally adjusted, series ``CUUR0000SA0``; ``Inflation`` (a derived m/m %) is ignored.
* ``bls_json`` – BLS Public Data API v2 (``{"Results": {"series": [{"seriesID", "data": [{"year",
  "period": "M01".."M12", "value"}]}]}}``); the annual average ``M13`` is skipped, ``-`` is null.

Dates may be ``YYYY-MM-DD`` or ``M/D/YYYY`` (a FRED file re-saved by Excel) and must be the first
day of a month.
"""

from __future__ import annotations

import json
from datetime import date

import polars as pl

from sources.errors import BadInput
from sources.formats._common import (
    LINE,
    check_month_start,
    finish,
    future_date_error,
    lines_of,
    norm,
    not_after,
    read_rows,
    series_from_filename,
    split_csv_line,
    to_date,
    to_float,
)

BLS_NSA_ALL_ITEMS = "CUUR0000SA0"
_NULLS = (".", "-", "NA", "#N/A")


def sniff(lines: list[str]) -> str | None:
    if not lines:
        return None
    raw = [c.strip() for c in split_csv_line(lines[0])]
    header = [norm(c) for c in raw]
    if header == ["date", "value"]:
        return "fred_csv"
    if len(raw) == 2 and raw[0] in ("observation_date", "DATE"):
        return "fred_csv"
    if header[:2] == ["date", "index"] and set(header) <= {"date", "index", "inflation"}:
        return "datasets_cpi_csv"
    return None


def sniff_json(obj: object) -> str | None:
    if isinstance(obj, dict):
        obs = obj.get("observations")
        if isinstance(obs, list) and (not obs or (isinstance(obs[0], dict) and {"date", "value"} <= set(obs[0]))):
            return "fred_json"
        results = obj.get("Results")
        if isinstance(results, dict) and isinstance(results.get("series"), list):
            return "bls_json"
    return None


def _series_or_fail(filename: str) -> str:
    series = series_from_filename(filename)
    if series is None:
        raise BadInput(filename, "the file does not name its series and neither does the file name",
                       expected="a file named after the FRED series, e.g. CPIAUCSL.csv")
    return series


def _check_positive(frame: pl.DataFrame, filename: str, field: str) -> None:
    """A price index level is above zero (an empty value, meaning not published, is allowed)."""
    bad = frame.filter(pl.col("value") <= 0)
    if bad.height:
        row = bad.row(0, named=True)
        raise BadInput(filename, "index level not above zero", row=row.get(LINE), field=field, found=row["value"],
                       expected="a positive index level")


def _finish_csv(frame: pl.DataFrame, filename: str, date_label: str, value_label: str, series: str) -> pl.DataFrame:
    frame = to_date(frame, "ref_raw", filename, field=date_label, target="ref_month")
    check_month_start(frame, "ref_month", "ref_raw", filename, date_label)
    frame = to_float(frame, "value", filename, field=value_label, null_tokens=_NULLS)
    _check_positive(frame, filename, value_label)
    frame = frame.with_columns(
        pl.lit(series).alias("series_id"), pl.lit(None, dtype=pl.Date).alias("realtime_start")
    )
    return finish("cpi", frame, filename)


def fred_csv_header(data: bytes, filename: str, expected: str) -> tuple[list[str], int, list[str]]:
    """A FRED CSV's lines, the index of its header line and the header's two labels (``expected``
    names the file's content in the error for an empty file). Shared with ``formats.rates``."""
    lines = lines_of(data, filename)
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        raise BadInput(filename, "empty file", expected=expected)
    header = [c.strip() for c in split_csv_line(lines[start])]
    if len(header) != 2:
        raise BadInput(filename, "a FRED CSV has two columns", row=start + 1, found=lines[start][:120],
                       expected="date,value or observation_date,<SERIES>")
    return lines, start, header


def parse_fred_csv(data: bytes, filename: str) -> pl.DataFrame:
    """FRED ``date,value`` or ``observation_date,<SERIES>``; empty value → null, row kept."""
    lines, start, header = fred_csv_header(data, filename, "observation_date,<SERIES> and monthly rows")
    series = _series_or_fail(filename) if norm(header[1]) == "value" else header[1]
    frame = read_rows(lines, start + 1, ["ref_raw", "value"], filename, labels=header)
    return _finish_csv(frame, filename, header[0], header[1], series)


def parse_datasets_cpi_csv(data: bytes, filename: str) -> pl.DataFrame:
    """datasets/cpi-us ``Date,Index,Inflation`` → series CUUR0000SA0 (NSA)."""
    lines = lines_of(data, filename)
    start = next(i for i, line in enumerate(lines) if line.strip())
    header = [c.strip() for c in split_csv_line(lines[start])]
    names = ["ref_raw", "value", *[f"_x{i}" for i in range(2, len(header))]]
    frame = read_rows(lines, start + 1, names, filename, min_fields=2, labels=header)
    return _finish_csv(frame.select(["ref_raw", "value", LINE]), filename, header[0], header[1], BLS_NSA_ALL_ITEMS)


def _json(data: bytes, filename: str) -> object:
    try:
        return json.loads(bytes(data).decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(filename, f"not valid JSON ({exc})", expected="a JSON document") from exc


def _bad_json(filename: str, where: str, found: object, expected: str) -> BadInput:
    return BadInput(filename, f"bad value at {where}", field=where, found=found, expected=expected)


def _month_start(text: object) -> bool:
    return isinstance(text, str) and len(text) == 10 and text[4] == "-" and text[7] == "-" and text.endswith("-01")


def _float_or_none(value: object, nulls=_NULLS) -> float | None | str:
    """A float, None for a null token, or the string ``"bad"``."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if text == "" or text in nulls:
            return None
        try:
            return float(text)
        except ValueError:
            return "bad"
    return "bad"


def fred_json_body(data: bytes, filename: str) -> dict:
    """The body of a FRED ``series/observations`` answer (checked to be one). Shared with
    ``formats.rates``."""
    obj = _json(data, filename)
    if sniff_json(obj) != "fred_json":
        raise BadInput(filename, "not a FRED series/observations body", expected="an 'observations' list")
    return obj


def fred_vintages(frame: pl.DataFrame, filename: str) -> pl.DataFrame:
    """``realtime_start`` (the observations' ``YYYY-MM-DD`` strings) as dates; a bad one is refused.
    Shared with ``formats.rates``."""
    rt = frame.select(pl.col("realtime_start").str.strptime(pl.Date, "%Y-%m-%d", strict=False))["realtime_start"]
    if (rt.is_null() & frame["realtime_start"].is_not_null()).any():
        bad = frame.filter(rt.is_null() & frame["realtime_start"].is_not_null())["realtime_start"][0]
        raise _bad_json(filename, "realtime_start", bad, "YYYY-MM-DD")
    return frame.with_columns(rt.alias("realtime_start"))


def parse_fred_json(data: bytes, filename: str) -> pl.DataFrame:
    """FRED ``series/observations`` JSON; ``"."`` → null; ``realtime_start`` is the vintage."""
    obj = fred_json_body(data, filename)
    series = obj.get("series_id") or _series_or_fail(filename)
    rows = {"series_id": [], "ref_month": [], "value": [], "realtime_start": []}
    for i, ob in enumerate(obj["observations"]):
        where = f"observations[{i}]"
        if not isinstance(ob, dict) or not _month_start(ob.get("date")):
            raise _bad_json(filename, f"{where}.date", ob.get("date") if isinstance(ob, dict) else ob,
                            "YYYY-MM-01")
        try:
            day = date.fromisoformat(ob["date"])
        except ValueError:
            raise _bad_json(filename, f"{where}.date", ob["date"], "a real date YYYY-MM-01") from None
        limit = not_after()
        if limit is not None and day > limit:
            raise future_date_error(filename, day, row=None, field=f"{where}.date")
        value = _float_or_none(ob.get("value"), (".",))
        if value == "bad":
            raise _bad_json(filename, f"{where}.value", ob.get("value"), "a number or '.'")
        if value is not None and value <= 0:
            raise _bad_json(filename, f"{where}.value", ob.get("value"), "a positive index level or '.'")
        rows["series_id"].append(series)
        rows["ref_month"].append(ob["date"])
        rows["value"].append(value)
        rows["realtime_start"].append(ob.get("realtime_start") or obj.get("realtime_start"))
    frame = pl.DataFrame(rows, schema={"series_id": pl.String, "ref_month": pl.String, "value": pl.Float64,
                                       "realtime_start": pl.String})
    frame = to_date(frame, "ref_month", filename, formats=("iso",))
    return finish("cpi", fred_vintages(frame, filename), filename)


def parse_bls_json(data: bytes, filename: str) -> pl.DataFrame:
    """BLS API v2 JSON; periods M01..M12 (M13, the annual average, is skipped); ``-`` → null."""
    obj = _json(data, filename)
    if sniff_json(obj) != "bls_json":
        raise BadInput(filename, "not a BLS API v2 body", expected="Results.series[].data[]")
    status = obj.get("status")
    if status is not None and status != "REQUEST_SUCCEEDED":
        raise BadInput(filename, "BLS request did not succeed", field="status", found=status,
                       expected="REQUEST_SUCCEEDED")
    rows = {"series_id": [], "ref_month": [], "value": []}
    for s, series in enumerate(obj["Results"]["series"]):
        sid = series.get("seriesID") if isinstance(series, dict) else None
        if not sid:
            raise _bad_json(filename, f"Results.series[{s}].seriesID", sid, "a series id")
        for i, item in enumerate(series.get("data") or []):
            where = f"Results.series[{s}].data[{i}]"
            period = str(item.get("period", ""))
            if period == "M13":
                continue
            year = str(item.get("year", ""))
            if not (len(period) == 3 and period[0] == "M" and period[1:].isdigit() and 1 <= int(period[1:]) <= 12):
                raise _bad_json(filename, f"{where}.period", period, "M01..M12 (M13 is skipped)")
            if not (len(year) == 4 and year.isdigit()):
                raise _bad_json(filename, f"{where}.year", year, "a four-digit year")
            value = _float_or_none(item.get("value"))
            if value == "bad":
                raise _bad_json(filename, f"{where}.value", item.get("value"), "a number or '-'")
            if value is not None and value <= 0:
                raise _bad_json(filename, f"{where}.value", item.get("value"), "a positive index level or '-'")
            limit = not_after()
            if limit is not None and date(int(year), int(period[1:]), 1) > limit:
                raise future_date_error(filename, date(int(year), int(period[1:]), 1), row=None, field=f"{where}.year")
            rows["series_id"].append(sid)
            rows["ref_month"].append(f"{year}-{period[1:]}-01")
            rows["value"].append(value)
    frame = pl.DataFrame(rows, schema={"series_id": pl.String, "ref_month": pl.String, "value": pl.Float64})
    frame = frame.with_columns(
        pl.col("ref_month").str.strptime(pl.Date, "%Y-%m-%d"),
        pl.lit(None, dtype=pl.Date).alias("realtime_start"),
    )
    return finish("cpi", frame, filename)


PARSERS = {
    "fred_csv": parse_fred_csv,
    "fred_json": parse_fred_json,
    "datasets_cpi_csv": parse_datasets_cpi_csv,
    "bls_json": parse_bls_json,
}
