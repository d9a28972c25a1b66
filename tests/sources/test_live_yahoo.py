"""The Yahoo chart source against recorded Yahoo responses served from 127.0.0.1.

Fixtures: tests/fixtures/api/yahoo/ are whole copies of recorded HTTP exchanges (provenance in
NOTICE). The recording keeps the JSON body already parsed (``response.bodyJson``), so the server
sends it re-serialised with ``json.dumps``; the 1-minute recording keeps the raw body text
(``response.body``) and is sent as recorded. Expected values are read from the recordings with
``json``/``zoneinfo`` here, never through the code under test.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from conftest import serving
from pytest_httpserver import HTTPServer

from sources.base import parse_payload
from sources.errors import SourceUnavailable
from sources.formats import parse as parse_format
from sources.http import RetryPolicy
from sources.yahoo import YahooSource

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "yahoo"
QQQ = "chart-QQQ-2020-01-01-to-2020-01-03.json"
AAPL_SPLIT = "chart-AAPL-2020-08-31-to-2020-11-07.json"
AAPL_1M = "chart-AAPL-2024-10-02-to-2024-10-03-includePrePost-false-interval-1m.json"
NY = ZoneInfo("America/New_York")


def recorded(name: str) -> tuple[bytes, dict]:
    """(the body as served, the body as a dict) of a recorded exchange."""
    response = json.loads((FIX / name).read_text())["response"]
    body = response["body"].encode() if "body" in response else json.dumps(response["bodyJson"]).encode()
    return body, json.loads(body)


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, ["yahoo"])


def source(symbols, **kw) -> YahooSource:
    kw.setdefault("retry", RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, max_retry_after=5))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("sleep", lambda s: None)
    return YahooSource(symbols, **kw)


def chart_path(symbol: str) -> str:
    return f"/v8/finance/chart/{symbol}"


def requests_to(server: HTTPServer, symbol: str) -> list:
    return [req for req, _ in server.log if req.path == chart_path(symbol)]


def test_qqq_close_and_date_from_the_recording(server):
    body, obj = recorded(QQQ)
    result = obj["chart"]["result"][0]
    server.expect_request(chart_path("QQQ")).respond_with_data(body, content_type="application/json")
    batches = source(["QQQ"], start=date(2020, 1, 1)).fetch("prices", date(2020, 1, 3), None)
    assert len(batches) == 1
    b = batches[0]
    assert (b.source, b.dataset, b.format, b.error, b.cursor) == ("yahoo", "prices", "yahoo_chart", None, date(2020, 1, 3))
    assert b.payload == body and b.name.endswith(".json")
    row = b.frame.row(0, named=True)
    quote = result["indicators"]["quote"][0]
    assert row["symbol"] == "QQQ"
    assert row["trade_date"] == datetime.fromtimestamp(result["timestamp"][0], NY).date() == date(2020, 1, 2)
    assert row["close"] == quote["close"][0] == 216.16000366210938
    assert (row["open"], row["high"], row["low"], row["volume"]) == (
        quote["open"][0], quote["high"][0], quote["low"][0], float(quote["volume"][0]))
    assert row["adj_close"] == result["indicators"]["adjclose"][0]["adjclose"][0]
    # the request Yahoo expects, with the window in New York time
    args = server.log[0][0].args
    assert args["interval"] == "1d" and args["events"] == "div,split"
    assert int(args["period1"]) == int(datetime(2020, 1, 1, tzinfo=NY).timestamp())
    assert int(args["period2"]) == int(datetime(2020, 1, 4, tzinfo=NY).timestamp())
    # replay parses the landed payload to the same frame
    assert parse_payload(b.payload, b.format, b.name, b.dataset).equals(b.frame)


@pytest.fixture
def far_east_machine(monkeypatch):
    """A machine clock in UTC+14, where a naive local conversion moves 13:30 UTC to the next day."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_aapl_split_window_dates_in_new_york_time(server, far_east_machine):
    body, obj = recorded(AAPL_SPLIT)
    result = obj["chart"]["result"][0]
    server.expect_request(chart_path("AAPL")).respond_with_data(body, content_type="application/json")
    (b,) = source(["AAPL"], start=date(2020, 8, 31)).fetch("prices", date(2020, 11, 6), None)
    stamps = result["timestamp"]
    expected_dates = [datetime.fromtimestamp(t, NY).date() for t in stamps]
    # the bug this guards against: the machine's zone (or UTC+14) puts the split day on 1 September
    assert datetime.fromtimestamp(stamps[0]).date() == date(2020, 9, 1)
    assert b.frame["trade_date"].to_list() == expected_dates
    assert b.frame.height == len(stamps) == 49
    split_day = b.frame.row(0, named=True)
    assert split_day["trade_date"] == date(2020, 8, 31)
    assert split_day["close"] == result["indicators"]["quote"][0]["close"][0]
    assert split_day["adj_close"] == result["indicators"]["adjclose"][0]["adjclose"][0]
    # the 4:1 split and the dividend, dated in New York time
    split = result["events"]["splits"]["1598880600"]
    dividend = next(iter(result["events"]["dividends"].values()))
    assert datetime.fromtimestamp(split["date"], NY).date() == date(2020, 8, 31)
    assert f"split {split['splitRatio']} on 2020-08-31" in b.notes
    assert f"dividend {dividend['amount']} on {datetime.fromtimestamp(dividend['date'], NY).date()}" in b.notes


def test_incremental_window_with_a_split_fetches_the_whole_history_again(server):
    body, _ = recorded(AAPL_SPLIT)
    server.expect_request(chart_path("AAPL")).respond_with_data(body, content_type="application/json")
    start = date(2015, 1, 1)
    (b,) = source(["AAPL"], start=start, overlap_days=7).fetch("prices", date(2020, 11, 6), date(2020, 9, 30))
    first, second = [int(r.args["period1"]) for r in requests_to(server, "AAPL")]
    assert first == int(datetime(2020, 9, 23, tzinfo=NY).timestamp())  # cursor - 7 days
    assert second == int(datetime(2015, 1, 1, tzinfo=NY).timestamp())
    assert any("whole history fetched again" in n for n in b.notes)
    assert b.error is None and b.cursor == date(2020, 11, 6)


def test_as_of_cut_and_other_datasets(server):
    body, _ = recorded(AAPL_SPLIT)
    server.expect_request(chart_path("AAPL")).respond_with_data(body, content_type="application/json")
    (b,) = source(["AAPL"], start=date(2020, 8, 31)).fetch("prices", date(2020, 9, 4), None)
    assert b.frame["trade_date"].max() == date(2020, 9, 4) and b.frame.height == 5
    assert any("not yet public on 2020-09-04" in n for n in b.notes)
    for dataset in ("cpi", "short_interest", "estimates", "holdings", "factors"):
        assert source(["AAPL"]).fetch(dataset, date(2020, 9, 4), None) == []
    assert len(server.log) == 1


def test_unknown_symbol_fails_alone_and_holds_the_cursor(server):
    # Yahoo's answer to an unknown symbol: HTTP 404 with a chart.error body (shape of Yahoo's API;
    # no recording of it exists, so the body is written here)
    missing = {"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}}
    body, _ = recorded(QQQ)
    server.expect_request(chart_path("NOPE")).respond_with_json(missing, status=404)
    server.expect_request(chart_path("QQQ")).respond_with_data(body, content_type="application/json")
    batches = source(["NOPE", "QQQ"], start=date(2020, 1, 1)).fetch("prices", date(2020, 1, 3), None)
    bad, good = batches
    assert bad.error is not None and bad.frame is None
    assert "Not Found" in bad.error.reason() and "NOPE" in bad.error.reason()
    assert good.error is None and good.frame.height == 1
    assert bad.cursor is None and good.cursor is None  # NOPE must be asked for again
    assert len(requests_to(server, "NOPE")) == 1  # never retried


def test_chart_error_in_a_200_answer(server):
    body = json.dumps({"chart": {"result": None, "error": {"code": "Bad Request", "description": "Invalid input"}}})
    server.expect_request(chart_path("QQQ")).respond_with_data(body, content_type="application/json")
    (b,) = source(["QQQ"]).fetch("prices", date(2020, 1, 3), None)
    assert b.error is not None and "Bad Request: Invalid input" in b.error.reason() and b.error.field == "chart.error"


def test_html_instead_of_json_is_refused_not_parsed(server):
    page = b"<!DOCTYPE html><html><head><title>Yahoo</title></head><body>consent</body></html>"
    server.expect_request(chart_path("QQQ")).respond_with_data(page, content_type="text/html")
    (b,) = source(["QQQ"]).fetch("prices", date(2020, 1, 3), None)
    assert b.frame is None and "HTML page" in b.error.reason() and b.payload == page
    assert len(server.log) == 1


def test_truncated_json_body_is_bad_data(server):
    body, _ = recorded(QQQ)
    server.expect_request(chart_path("QQQ")).respond_with_data(body[: len(body) // 2], content_type="application/json")
    (b,) = source(["QQQ"]).fetch("prices", date(2020, 1, 3), None)
    assert b.frame is None and "not valid JSON" in b.error.reason()
    assert len(server.log) == 1


def test_renamed_field_is_a_clear_schema_error(server):
    _, obj = recorded(QQQ)
    quote = obj["chart"]["result"][0]["indicators"]["quote"][0]
    quote["closePrice"] = quote.pop("close")
    server.expect_request(chart_path("QQQ")).respond_with_json(obj)
    (b,) = source(["QQQ"]).fetch("prices", date(2020, 1, 3), None)
    assert b.error.field == "chart.result[0].indicators.quote[0].close"


def test_minute_bars_are_refused(server):
    body, obj = recorded(AAPL_1M)
    assert obj["chart"]["result"][0]["meta"]["dataGranularity"] == "1m"
    server.expect_request(chart_path("AAPL")).respond_with_data(body, content_type="application/json")
    (b,) = source(["AAPL"]).fetch("prices", date(2024, 10, 3), None)
    assert b.error.field == "chart.result[0].meta.dataGranularity" and "1m" in b.error.reason()


def test_empty_range_gives_no_batch(server):
    _, obj = recorded(QQQ)
    result = obj["chart"]["result"][0]
    del result["timestamp"]
    result["indicators"] = {"quote": [{}], "adjclose": [{}]}
    server.expect_request(chart_path("QQQ")).respond_with_json(obj)
    assert source(["QQQ"]).fetch("prices", date(2020, 1, 4), date(2020, 1, 3)) == []


def test_503_then_recovery_and_persistent_outage(server):
    body, _ = recorded(QQQ)
    server.expect_ordered_request(chart_path("QQQ")).respond_with_data("oops", status=503)
    server.expect_ordered_request(chart_path("QQQ")).respond_with_data(body, content_type="application/json")
    (b,) = source(["QQQ"]).fetch("prices", date(2020, 1, 3), None)
    assert b.error is None and len(server.log) == 2
    server.clear()
    server.expect_request(chart_path("QQQ")).respond_with_data("bad gateway", status=502)
    with pytest.raises(SourceUnavailable, match="yahoo.*3 attempt"):
        source(["QQQ"]).fetch("prices", date(2020, 1, 3), None)
    assert len(server.log) == 3


def test_index_symbol_is_escaped_in_the_path(server):
    _, obj = recorded(QQQ)
    obj["chart"]["result"][0]["meta"]["symbol"] = "^RUT"  # the QQQ bar relabelled: only the path matters here
    server.expect_request(chart_path("^RUT")).respond_with_json(obj)
    (b,) = source(["^RUT"]).fetch("prices", date(2020, 1, 3), None)
    assert b.frame["symbol"].to_list() == ["^RUT"]
    assert server.log[0][0].path == "/v8/finance/chart/^RUT"


def test_parser_uses_the_body_time_zone():
    """The same recorded bar read as if the exchange were in Auckland falls on the next day."""
    _, obj = recorded(AAPL_SPLIT)
    obj["chart"]["result"][0]["meta"]["exchangeTimezoneName"] = "Pacific/Auckland"
    frame = parse_format(json.dumps(obj).encode(), "AAPL.json", "prices")
    first = obj["chart"]["result"][0]["timestamp"][0]
    assert frame["trade_date"][0] == datetime.fromtimestamp(first, timezone.utc).astimezone(ZoneInfo("Pacific/Auckland")).date()
    assert frame["trade_date"][0] == date(2020, 9, 1)
    assert frame.schema["trade_date"] == pl.Date
