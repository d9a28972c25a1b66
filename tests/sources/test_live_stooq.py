"""The Stooq source against a server on 127.0.0.1.

No recording of Stooq's ``/q/d/l/`` daily CSV exists, so its answer is built here in Stooq's
``Date,Open,High,Low,Close,Volume`` layout from the real SPY rows of a Stooq bulk file
(tests/fixtures/api/stooq/spy.us_2024-12-02_2025-01-29.txt, provenance in NOTICE): the values are
Stooq's, only the layout is rebuilt.
"""

from __future__ import annotations

import csv
import logging
from datetime import date
from pathlib import Path

import pytest
from conftest import serving

from sources.base import parse_payload
from sources.errors import SourceUnavailable
from sources.http import RetryPolicy, SourceNotConfigured
from sources.stooq import StooqSource, stooq_symbol

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "stooq"
BULK = FIX / "spy.us_2024-12-02_2025-01-29.txt"
KEY = "stooq-canary-5e0b71c2"


def bulk_rows() -> list[list[str]]:
    return list(csv.reader(BULK.read_text().splitlines()))[1:]


def daily_csv() -> bytes:
    """Stooq's daily CSV layout, values from the bulk file (see the module docstring)."""
    lines = ["Date,Open,High,Low,Close,Volume"]
    for r in bulk_rows():
        lines.append(f"{r[2][:4]}-{r[2][4:6]}-{r[2][6:]},{r[4]},{r[5]},{r[6]},{r[7]},{r[8]}")
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, ["stooq"], env={"STOOQ_API_KEY": KEY})


def source(symbols, **kw) -> StooqSource:
    kw.setdefault("retry", RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("sleep", lambda s: None)
    return StooqSource(symbols, **kw)


def test_symbol_mapping():
    assert stooq_symbol("SPY") == "spy.us" and stooq_symbol("^GSPC") == "^spx" and stooq_symbol("^IXIC") == "^ndq"
    assert stooq_symbol("^RUT") is None and stooq_symbol("^RUT", {"^RUT": "^rut"}) == "^rut"


def test_daily_csv_happy_path_with_key_and_window(server, caplog):
    caplog.set_level(logging.DEBUG)
    body = daily_csv()
    server.expect_request("/q/d/l/", query_string={"s": "spy.us", "i": "d", "d1": "20241202", "d2": "20250129",
                                                  "apikey": KEY}).respond_with_data(body, content_type="text/csv")
    server.expect_request("/q/d/l/").respond_with_data("No data")
    batches = source(["SPY", "^GSPC", "^RUT"], start=date(2024, 12, 2)).fetch("prices", date(2025, 1, 29), None)
    assert len(batches) == 1  # ^GSPC answered "No data", ^RUT has no Stooq symbol
    (b,) = batches
    assert (b.format, b.error, b.cursor, b.payload) == ("stooq_csv", None, date(2025, 1, 29), body)
    assert sorted(r.args["s"] for r, _ in server.log) == ["^spx", "spy.us"]
    last = bulk_rows()[-1]
    got = b.frame.filter(b.frame["trade_date"] == date(2025, 1, 29)).row(0, named=True)
    assert got["symbol"] == "SPY" and got["close"] == float(last[7]) == 601.81
    assert (got["open"], got["high"], got["low"], got["volume"]) == tuple(float(x) for x in (last[4], last[5], last[6], last[8]))
    assert b.frame.height == len(bulk_rows())
    assert parse_payload(b.payload, b.format, b.name, b.dataset).equals(b.frame)
    # the key went to Stooq but nowhere else
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))  # not the server's
    assert KEY not in b.name and KEY not in ours and "apikey=***" in ours


def test_incremental_window_starts_before_the_cursor(server):
    server.expect_request("/q/d/l/").respond_with_data(daily_csv(), content_type="text/csv")
    source(["SPY"], overlap_days=7).fetch("prices", date(2025, 1, 29), date(2025, 1, 20))
    assert server.log[0][0].args["d1"] == "20250113" and server.log[0][0].args["d2"] == "20250129"


def test_html_answer_fails_clearly_and_is_never_parsed(server):
    # what Stooq sends without a valid key since 2026: an HTML page with status 200 (it may echo the key)
    page = (f"<!DOCTYPE html>\n<html><head><title>stooq</title></head><body><form>"
            f"<input name=apikey value={KEY}></form></body></html>").encode()
    server.expect_request("/q/d/l/").respond_with_data(page, content_type="text/html; charset=utf-8")
    batches = source(["SPY", "IWM"]).fetch("prices", date(2025, 1, 29), None)
    assert len(batches) == 2 and len(server.log) == 2  # one request per symbol, no retries
    for b in batches:
        assert b.frame is None and b.cursor is None
        assert "HTML page instead of CSV" in b.error.reason() and "STOOQ_API_KEY" in b.error.reason()
        assert KEY.encode() not in b.payload and b"***" in b.payload  # the echoed key is masked


def test_no_key_is_a_configuration_failure_without_any_request(server, monkeypatch):
    monkeypatch.delenv("STOOQ_API_KEY")
    with pytest.raises(SourceNotConfigured, match="STOOQ_API_KEY"):
        source(["SPY"]).fetch("prices", date(2025, 1, 29), None)
    assert server.log == []
    assert isinstance(SourceNotConfigured("x"), SourceUnavailable)


def test_daily_limit_message_makes_the_source_unavailable(server):
    server.expect_request("/q/d/l/").respond_with_data("Exceeded the daily hits limit")
    with pytest.raises(SourceUnavailable, match="daily request limit") as info:
        source(["SPY", "IWM"]).fetch("prices", date(2025, 1, 29), None)
    assert KEY not in str(info.value)
    assert len(server.log) == 1


def test_500_then_recovery(server):
    server.expect_ordered_request("/q/d/l/").respond_with_data("err", status=500)
    server.expect_ordered_request("/q/d/l/").respond_with_data(daily_csv(), content_type="text/csv")
    (b,) = source(["SPY"]).fetch("prices", date(2025, 1, 29), None)
    assert b.error is None and len(server.log) == 2


def test_other_datasets_are_not_served(server):
    assert source(["SPY"]).fetch("cpi", date(2025, 1, 29), None) == []
    assert server.log == []
