"""Yahoo Finance ``quoteSummary`` ``earningsTrend`` module → the ``company_estimates`` dataset.

Per-company consensus EPS estimates, one row per company, observation day and fiscal period.

Formats
-------
* ``yahoo_earnings_trend`` – one body of
  ``GET /v10/finance/quoteSummary/<symbol>?modules=earningsTrend``::

      {"quoteSummary": {"result": [{"earningsTrend": {"trend": [
          {"period": "0y", "endDate": "2021-09-30",
           "earningsEstimate": {"avg": {"raw": 4.46, "fmt": "4.46"}, "low": …, "high": …,
                                "yearAgoEps": …, "numberOfAnalysts": …, "growth": …},
           "epsTrend": {"current": …, "7daysAgo": …, "30daysAgo": …, "60daysAgo": …, "90daysAgo": …},
           "epsRevisions": {"upLast7days": …, "upLast30days": …, "downLast30days": …, …}}, …]}}],
        "error": null}}

  The body names neither the company nor the day, so both come from the file name
  ``<SYMBOL>_<YYYY-MM-DD>.json`` (the symbol URL-quoted when it holds other characters than
  letters, digits, ``.`` and ``-``): the symbol is the holding's ticker as the fund lists it, the
  date the day the estimates were observed.
* ``yahoo_earnings_trend_zip`` – what the live ``consensus`` source lands: a zip holding one such
  body per company, each member byte for byte as Yahoo sent it and named as above.

Values are either plain numbers (``formatted=false``) or Yahoo's ``{"raw": …, "fmt": …}`` objects;
``{}`` and null are missing. Only the fiscal periods ``0q``, ``+1q`` (current and next quarter)
and ``0y``, ``+1y`` (current and next fiscal year) are kept; a period without any EPS value (no
analyst coverage) gives no row. ``eps_avg`` is ``earningsEstimate.avg`` (``epsTrend.current`` where
that is missing). A ``quoteSummary.error``, a body that is not this module's shape, a renamed field
or a non-numeric value raises ``BadInput`` naming the file, the trend item and the field.

Schema (``SCHEMA``; key ``symbol, as_of_date, period``; the as-of cut applies to ``as_of_date``):
EPS in the quote currency per share, ``eps_growth`` a fraction, revision counts are analysts.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date
from urllib.parse import quote, unquote

import polars as pl

from sources.errors import BadInput
from sources.formats._common import check_not_after

DATASET = "company_estimates"
FORMAT = "yahoo_earnings_trend"
FORMAT_ZIP = "yahoo_earnings_trend_zip"
PERIODS = ("0q", "+1q", "0y", "+1y")

# the dataset's source schema (to be mirrored in sources/schemas.py as SCHEMAS["company_estimates"])
SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),  # the holding's ticker as the fund lists it (BRKB), not Yahoo's spelling
    "as_of_date": pl.Date(),  # the day the estimates were observed
    "period": pl.String(),  # 0q, +1q, 0y, +1y
    "period_end": pl.Date(),  # last day of that fiscal period
    "eps_avg": pl.Float64(),  # consensus mean EPS
    "eps_low": pl.Float64(),
    "eps_high": pl.Float64(),
    "eps_year_ago": pl.Float64(),  # EPS of the same period a year earlier
    "analysts": pl.Int64(),
    "eps_growth": pl.Float64(),  # eps_avg / eps_year_ago - 1 as Yahoo computes it (fraction)
    "eps_7d_ago": pl.Float64(),  # the consensus mean 7, 30, 60 and 90 days before as_of_date
    "eps_30d_ago": pl.Float64(),
    "eps_60d_ago": pl.Float64(),
    "eps_90d_ago": pl.Float64(),
    "up_7d": pl.Int64(),  # analysts who raised / lowered their estimate in the last 7 or 30 days
    "up_30d": pl.Int64(),
    "down_7d": pl.Int64(),
    "down_30d": pl.Int64(),
}
KEY = ("symbol", "as_of_date", "period")
DATE_COLUMN = "as_of_date"

_EXPECTED = "a Yahoo quoteSummary body: quoteSummary.result[0].earningsTrend.trend[]"
_NAME = re.compile(r"^(?P<symbol>.+)_(?P<day>\d{4}-\d{2}-\d{2})\.json$", re.IGNORECASE)
_SAFE = "^.-_"

# (column, object, key) read from each trend item; keys of epsRevisions are matched case-insensitively
_ESTIMATE = (("eps_avg", "avg"), ("eps_low", "low"), ("eps_high", "high"), ("eps_year_ago", "yearAgoEps"),
             ("analysts", "numberOfAnalysts"), ("eps_growth", "growth"))
_TREND = (("eps_7d_ago", "7daysAgo"), ("eps_30d_ago", "30daysAgo"), ("eps_60d_ago", "60daysAgo"),
          ("eps_90d_ago", "90daysAgo"))
_REVISIONS = (("up_7d", "uplast7days"), ("up_30d", "uplast30days"), ("down_7d", "downlast7days"),
              ("down_30d", "downlast30days"))


def member_name(symbol: str, day: date) -> str:
    """The file name a body is stored under: ``<SYMBOL>_<YYYY-MM-DD>.json``."""
    return f"{quote(symbol, safe=_SAFE)}_{day.isoformat()}.json"


def name_parts(filename: str) -> tuple[str, date]:
    """(symbol, observation day) from a file name ``…/<SYMBOL>_<YYYY-MM-DD>.json``."""
    base = re.split(r"[/\\!]", filename)[-1]
    m = _NAME.match(base)
    if m is None:
        raise BadInput(filename, "the file name does not say which company and day the estimates are for",
                       found=base, expected="a name like AAPL_2021-04-07.json")
    try:
        day = date.fromisoformat(m.group("day"))
    except ValueError as exc:
        raise BadInput(filename, "impossible date in the file name", found=m.group("day"),
                       expected="a real YYYY-MM-DD date") from exc
    symbol = unquote(m.group("symbol")).strip()
    if not symbol:
        raise BadInput(filename, "empty symbol in the file name", expected="a name like AAPL_2021-04-07.json")
    return symbol, day


def sniff_json(obj: object) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("quoteSummary"), dict) and (
            {"result", "error"} & set(obj["quoteSummary"])):
        return FORMAT
    return None


def sniff_zip(zf: zipfile.ZipFile) -> str | None:
    """``yahoo_earnings_trend_zip`` when every member is a ``<SYMBOL>_<date>.json`` quoteSummary body."""
    names = [n for n in zf.namelist() if not n.endswith("/")]
    if not names or not all(_NAME.match(n) for n in names):
        return None
    try:
        obj = json.loads(zf.read(names[0]).decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    return FORMAT_ZIP if sniff_json(obj) else None


def quote_summary_error(obj: object) -> tuple[str, str] | None:
    """(code, description) of a ``quoteSummary.error`` (or ``finance.error``), else None."""
    if not isinstance(obj, dict):
        return None
    for outer in ("quoteSummary", "finance"):
        block = obj.get(outer)
        if isinstance(block, dict) and isinstance(block.get("error"), dict):
            err = block["error"]
            return str(err.get("code") or ""), str(err.get("description") or "")
    return None


def _value(item: dict, obj_key: str, key: str, filename: str, where: str, integer: bool = False):
    block = item.get(obj_key)
    value = block.get(key) if isinstance(block, dict) else None
    if isinstance(value, dict):
        value = value.get("raw")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(filename, "not a number", field=f"{where}.{obj_key}.{key}", found=value, expected="a number")
    return int(value) if integer else float(value)


def _revision(item: dict, key: str, filename: str, where: str):
    block = item.get("epsRevisions")
    if not isinstance(block, dict):
        return None
    for k, value in block.items():
        if k.lower() == key:
            if isinstance(value, dict):
                value = value.get("raw")
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadInput(filename, "not a number", field=f"{where}.epsRevisions.{k}", found=value,
                               expected="a count of analysts")
            return int(value)
    return None


def _load(data: bytes, filename: str) -> dict:
    try:
        obj = json.loads(bytes(data).decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(filename, f"not valid JSON ({exc})", expected=_EXPECTED) from exc
    if sniff_json(obj) is None:
        found = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise BadInput(filename, "not a Yahoo quoteSummary body", found=found, expected=_EXPECTED)
    return obj


def parse_json(data: bytes, filename: str) -> pl.DataFrame:
    """One ``quoteSummary?modules=earningsTrend`` body named ``<SYMBOL>_<YYYY-MM-DD>.json``."""
    symbol, day = name_parts(filename)
    obj = _load(data, filename)
    err = quote_summary_error(obj)
    if err is not None:
        raise BadInput(filename, f"Yahoo answered an error: {err[0]}: {err[1]}".rstrip(": "),
                       field="quoteSummary.error", expected="a quoteSummary result")
    result = obj["quoteSummary"].get("result")
    if not isinstance(result, list) or not result or not isinstance(result[0], dict):
        raise BadInput(filename, "no quoteSummary result", field="quoteSummary.result", found=result,
                       expected=_EXPECTED)
    module = result[0].get("earningsTrend")
    trend = module.get("trend") if isinstance(module, dict) else None
    if not isinstance(trend, list):
        found = sorted(result[0])[:8]
        raise BadInput(filename, "no earningsTrend.trend list in the result", field="quoteSummary.result[0]",
                       found=found, expected=_EXPECTED)
    rows = []
    for i, item in enumerate(trend):
        where = f"trend[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("period"), str):
            raise BadInput(filename, "trend item without a period", field=where, expected="period '0y', '+1y', …")
        if item["period"] not in PERIODS:
            continue
        where = f"trend[{i}] ({item['period']})"
        for block in ("earningsEstimate", "epsTrend"):
            if not isinstance(item.get(block), dict):
                raise BadInput(filename, f"trend item without {block}", field=f"{where}.{block}",
                               found=sorted(item)[:10], expected=f"an {block} object")
        row: dict[str, object] = {"symbol": symbol, "as_of_date": day, "period": item["period"]}
        end = item.get("endDate")
        try:
            row["period_end"] = date.fromisoformat(end) if end is not None else None
        except (TypeError, ValueError):
            raise BadInput(filename, "unreadable fiscal period end", field=f"{where}.endDate", found=end,
                           expected="a date like 2021-09-30") from None
        for column, key in _ESTIMATE:
            row[column] = _value(item, "earningsEstimate", key, filename, where, integer=column == "analysts")
        current = _value(item, "epsTrend", "current", filename, where)
        if row["eps_avg"] is None:
            row["eps_avg"] = current
        for column, key in _TREND:
            row[column] = _value(item, "epsTrend", key, filename, where)
        for column, key in _REVISIONS:
            row[column] = _revision(item, key, filename, where)
        eps = ("eps_avg", "eps_low", "eps_high", "eps_7d_ago", "eps_30d_ago", "eps_60d_ago", "eps_90d_ago")
        if any(row[c] is not None for c in eps):
            rows.append(row)
    return finish(pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else empty(), filename)


def parse_zip(data: bytes, filename: str) -> pl.DataFrame:
    """A zip of ``<SYMBOL>_<YYYY-MM-DD>.json`` bodies (what the live consensus source lands)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
    except zipfile.BadZipFile as exc:
        raise BadInput(filename, f"unreadable zip ({exc})", expected="a zip of quoteSummary bodies") from exc
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if not names:
            raise BadInput(filename, "empty zip", expected="one <SYMBOL>_<YYYY-MM-DD>.json member per company")
        frames = [parse_json(zf.read(n), f"{filename}!{n}") for n in names]
    return finish(pl.concat(frames), filename)


def bundle(bodies: dict[str, bytes], day: date) -> bytes:
    """A deterministic zip of bodies (member name → body as received): same bodies, same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(bodies):
            info = zipfile.ZipInfo(name, date_time=(day.year, day.month, day.day, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, bodies[name])
    return out.getvalue()


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def finish(frame: pl.DataFrame, filename: str) -> pl.DataFrame:
    """Conformed to ``SCHEMA``, nothing dated after the run day (inbox), one row per key, sorted."""
    frame = frame.select([pl.col(c).cast(t, strict=True) for c, t in SCHEMA.items()])
    check_not_after(frame, DATE_COLUMN, filename)
    frame = frame.unique(maintain_order=True)
    dup = frame.filter(pl.struct(list(KEY)).is_duplicated())
    if dup.height:
        row = dup.row(0, named=True)
        raise BadInput(filename, "two different estimates for one company, day and period",
                       found={k: str(row[k]) for k in KEY}, expected="one body per company and day")
    return frame.sort(list(KEY))


PARSERS = {FORMAT: parse_json, FORMAT_ZIP: parse_zip}

__all__ = ["DATASET", "FORMAT", "FORMAT_ZIP", "KEY", "PARSERS", "PERIODS", "SCHEMA", "bundle", "member_name",
           "name_parts", "parse_json", "parse_zip", "quote_summary_error", "sniff_json", "sniff_zip"]
