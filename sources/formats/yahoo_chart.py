"""Yahoo Finance chart API v8 JSON (``/v8/finance/chart/<symbol>?interval=1d``) → the ``prices`` schema.

The body is ``{"chart": {"result": [{"meta": {...}, "timestamp": [...], "events": {...},
"indicators": {"quote": [{"open", "high", "low", "close", "volume"}], "adjclose": [{"adjclose"}]}}],
"error": null}}``.

* The trading day of a bar is the date of its ``timestamp`` **in the exchange's time zone**
  (``meta.exchangeTimezoneName``, e.g. ``America/New_York``), never in UTC or the machine's zone:
  Yahoo stamps daily bars at the session open or at local midnight, and a UTC or local-machine
  conversion moves them to the neighbouring day.
* ``close`` is Yahoo's split-adjusted close, ``adj_close`` the split- and dividend-adjusted one
  (null when the body has no ``adjclose``). ``volume`` may be absent (null).
* Bars whose prices are all null (Yahoo's placeholders) are dropped; two bars on the same day (the
  live bar of an unfinished session next to the day's bar) keep the later one.
* Only daily bars are accepted (``meta.dataGranularity`` ``1d``); ``chart.error`` (for example an
  unknown symbol) raises ``BadInput`` with Yahoo's code and description, and so does any change of
  shape (a renamed or missing field, lists of different lengths, a non-numeric price).

``events(data)`` returns the splits and dividends of the body (dates in the exchange's zone); they
have no column in the prices schema.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from sources.errors import BadInput
from sources.formats._common import LINE, finish

_PRICES = ("open", "high", "low", "close")
_EXPECTED = "a Yahoo chart v8 body: chart.result[].meta/timestamp/indicators.quote"


def sniff_json(obj: object) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("chart"), dict) and ({"result", "error"} & set(obj["chart"])):
        return "yahoo_chart"
    return None


def _load(data: bytes, filename: str) -> dict:
    try:
        obj = json.loads(bytes(data).decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(filename, f"not valid JSON ({exc})", expected=_EXPECTED) from exc
    if sniff_json(obj) is None:
        found = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise BadInput(filename, "not a Yahoo chart body", found=found, expected=_EXPECTED)
    return obj


def chart_error(obj: object) -> tuple[str, str] | None:
    """(code, description) of a ``chart.error``, or None."""
    chart = obj.get("chart") if isinstance(obj, dict) else None
    err = chart.get("error") if isinstance(chart, dict) else None
    if not err:
        return None
    if isinstance(err, dict):
        return str(err.get("code") or "error"), str(err.get("description") or "")
    return "error", str(err)


def _bad(filename: str, where: str, message: str, found: object = None, expected: str | None = None,
         row: int | None = None) -> BadInput:
    return BadInput(filename, message, row=row, field=where, found=found, expected=expected)


def _results(obj: dict, filename: str) -> list[dict]:
    err = chart_error(obj)
    if err is not None:
        code, description = err
        raise _bad(filename, "chart.error", f"Yahoo answered an error: {code}: {description}".rstrip(": "),
                   found=obj["chart"]["error"], expected="chart.error null and chart.result with daily bars")
    results = obj["chart"].get("result")
    if not isinstance(results, list) or not results or not all(isinstance(r, dict) for r in results):
        raise _bad(filename, "chart.result", "no chart result", found=results, expected=_EXPECTED)
    return results


def _zone(meta: dict, where: str, filename: str) -> str:
    name = meta.get("exchangeTimezoneName")
    if not isinstance(name, str) or not name:
        raise _bad(filename, f"{where}.meta.exchangeTimezoneName", "the exchange time zone is missing", found=name,
                   expected="an IANA zone such as America/New_York (needed to date the bars)")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _bad(filename, f"{where}.meta.exchangeTimezoneName", "unknown time zone", found=name,
                   expected="an IANA zone such as America/New_York") from exc
    return name


def _numbers(values: object, n: int, where: str, filename: str, *, required: bool = True) -> list[float | None]:
    if values is None and not required:
        return [None] * n
    if not isinstance(values, list):
        raise _bad(filename, where, "field missing or not a list", found=None if values is None else type(values).__name__,
                   expected=f"a list of {n} numbers or nulls")
    if len(values) != n:
        raise _bad(filename, where, f"{len(values)} values for {n} timestamps", found=len(values),
                   expected=f"{n} values, one per timestamp")
    out: list[float | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
        else:
            raise _bad(filename, f"{where}[{i}]", "not a number", found=v, expected="a finite number or null",
                       row=i + 1)
    return out


def _frame(result: dict, index: int, filename: str) -> pl.DataFrame:
    where = f"chart.result[{index}]"
    meta = result.get("meta")
    if not isinstance(meta, dict):
        raise _bad(filename, f"{where}.meta", "meta missing", found=meta, expected=_EXPECTED)
    symbol = meta.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise _bad(filename, f"{where}.meta.symbol", "symbol missing", found=symbol, expected="a ticker")
    granularity = meta.get("dataGranularity")
    if granularity is not None and granularity != "1d":
        raise _bad(filename, f"{where}.meta.dataGranularity", "not daily bars", found=granularity,
                   expected="1d (ask with interval=1d)")
    zone = _zone(meta, where, filename)
    indicators = result.get("indicators")
    if not isinstance(indicators, dict):
        raise _bad(filename, f"{where}.indicators", "indicators missing", found=indicators, expected=_EXPECTED)
    quotes = indicators.get("quote")
    if not isinstance(quotes, list) or (quotes and not isinstance(quotes[0], dict)):
        raise _bad(filename, f"{where}.indicators.quote", "quote missing", found=quotes, expected=_EXPECTED)
    quote = quotes[0] if quotes else {}
    stamps = result.get("timestamp")
    if stamps is None:
        if any(quote.get(k) for k in (*_PRICES, "volume")):
            raise _bad(filename, f"{where}.timestamp", "prices without timestamps", expected="a timestamp list")
        stamps = []  # a range without trading days
    if not isinstance(stamps, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in stamps):
        bad = stamps
        if isinstance(stamps, list):
            bad = next((t for t in stamps if not isinstance(t, int) or isinstance(t, bool)), stamps)
        raise _bad(filename, f"{where}.timestamp", "timestamps must be integers (seconds since 1970)", found=bad,
                   expected="a list of integers")
    n = len(stamps)
    qwhere = f"{where}.indicators.quote[0]"
    columns = {k: _numbers(quote.get(k), n, f"{qwhere}.{k}", filename) if n else [] for k in _PRICES}
    columns["volume"] = _numbers(quote.get("volume"), n, f"{qwhere}.volume", filename, required=False) if n else []
    adj = indicators.get("adjclose")
    adj_values = None
    if isinstance(adj, list) and adj and isinstance(adj[0], dict):
        adj_values = adj[0].get("adjclose")
    elif adj is not None and adj != []:
        raise _bad(filename, f"{where}.indicators.adjclose", "unexpected adjclose shape", found=type(adj).__name__,
                   expected="[{'adjclose': [...]}]")
    columns["adj_close"] = _numbers(adj_values, n, f"{where}.indicators.adjclose[0].adjclose", filename,
                                    required=False) if n else []
    frame = pl.DataFrame(
        {"ts": stamps, **columns, LINE: list(range(1, n + 1))},
        schema={"ts": pl.Int64, **{k: pl.Float64 for k in columns}, LINE: pl.Int64},
    )
    frame = frame.with_columns(
        pl.from_epoch("ts", time_unit="s").dt.replace_time_zone("UTC").dt.convert_time_zone(zone).dt.date()
        .alias("trade_date"),
        pl.lit(symbol.strip()).alias("symbol"),
    )
    empty = pl.all_horizontal([pl.col(c).is_null() for c in (*_PRICES, "adj_close")])
    frame = frame.filter(~empty)
    missing = frame.filter(pl.col("close").is_null())
    if missing.height:
        row = missing[LINE][0]
        raise _bad(filename, f"{qwhere}.close[{row - 1}]", "close is null on a bar that has other prices", found=None,
                   expected="a number", row=row)
    # the live bar of an unfinished session can sit next to the day's bar: keep the later one
    return frame.sort("ts").unique(subset=["trade_date"], keep="last", maintain_order=True)


def parse_yahoo_chart(data: bytes, filename: str) -> pl.DataFrame:
    """Yahoo chart v8 JSON → prices (dates in the exchange's time zone)."""
    obj = _load(data, filename)
    frames = [_frame(r, i, filename) for i, r in enumerate(_results(obj, filename))]
    return finish("prices", pl.concat(frames, how="vertical"), filename)


def events(data: bytes, filename: str = "chart.json") -> dict[str, list[dict]]:
    """Splits and dividends of a chart body: ``{"splits": [{"symbol", "date", "numerator",
    "denominator", "ratio"}], "dividends": [{"symbol", "date", "amount"}]}``, oldest first."""
    obj = _load(data, filename)
    out: dict[str, list[dict]] = {"splits": [], "dividends": []}
    for i, result in enumerate(_results(obj, filename)):
        meta = result.get("meta") if isinstance(result.get("meta"), dict) else {}
        zone = ZoneInfo(_zone(meta, f"chart.result[{i}]", filename))
        found = result.get("events") or {}
        if not isinstance(found, dict):
            continue
        for kind in ("splits", "dividends"):
            items = found.get(kind) or {}
            for item in (items.values() if isinstance(items, dict) else items):
                if not isinstance(item, dict) or not isinstance(item.get("date"), int):
                    continue
                day: date = datetime.fromtimestamp(item["date"], timezone.utc).astimezone(zone).date()
                row = {"symbol": meta.get("symbol"), "date": day}
                if kind == "splits":
                    row |= {"numerator": item.get("numerator"), "denominator": item.get("denominator"),
                            "ratio": item.get("splitRatio")}
                else:
                    row |= {"amount": item.get("amount")}
                out[kind].append(row)
    for kind in out:
        out[kind].sort(key=lambda r: r["date"])
    return out


PARSERS = {"yahoo_chart": parse_yahoo_chart}
