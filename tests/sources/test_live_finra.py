"""The FINRA Query API source (and its fallback, the bi-weekly files) against a server on 127.0.0.1.

No recording of a Query API answer exists (only hand-made mocks do), so ``Finra`` below answers
``consolidatedShortInterest`` POSTs in the API's layout — a JSON list of records with the dataset's
field names, numbers as JSON numbers, paged by ``offset``/``limit`` with a ``Record-Total`` header —
from the 71 real records of FINRA's biweekly file of 2021-07-15
(tests/fixtures/api/finra/finra_shrt20210715_excerpt_first71rows.txt, provenance in NOTICE).
"""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import serving
from fixture_readers import finra_records
from werkzeug import Request, Response

from sources.base import parse_payload
from sources.errors import SourceUnavailable
from sources.finra import PATH, FinraSource
from sources.formats import parse as parse_format
from sources.http import RetryPolicy

PIPE = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "finra" / "finra_shrt20210715_excerpt_first71rows.txt"
SETTLED = date(2021, 7, 15)
AS_OF = date(2021, 7, 26)  # published by then (settlement + 9 days)


def records() -> list[dict]:
    return finra_records(PIPE)


class Finra:
    """The Query API's paging over the real records (see the module docstring)."""

    def __init__(self, total_header: bool = True) -> None:
        self.records = records()
        self.total_header = total_header
        self.bodies: list[dict] = []

    def __call__(self, request: Request) -> Response:
        body = json.loads(request.data)
        self.bodies.append(body)
        (window,) = body["dateRangeFilters"]
        assert window["fieldName"] == "settlementDate"
        first, last = date.fromisoformat(window["startDate"]), date.fromisoformat(window["endDate"])
        matching = [r for r in self.records if first <= date.fromisoformat(r["settlementDate"]) <= last]
        offset, limit = body.get("offset", 0), body.get("limit", 1000)
        page = matching[offset:offset + limit]
        headers = {"Record-Offset": str(offset), "Record-Limit": str(limit)}
        if self.total_header:
            headers["Record-Total"] = str(len(matching))
        return Response(json.dumps(page), content_type="application/json", headers=headers)


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, ["finra"],
                       env={"CAPSPREAD_FINRA_FILES_BASE_URL": http_server.url_for("/files").rstrip("/")})


def source(**kw) -> FinraSource:
    kw.setdefault("retry", RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, max_retry_after=10))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("sleep", lambda s: None)
    return FinraSource(**kw)


def test_pages_through_offset_and_record_total(server):
    emu = Finra()
    server.expect_request(PATH, method="POST").respond_with_handler(emu)
    batches = source(page_size=30).fetch("short_interest", AS_OF, date(2021, 7, 20))
    assert [(b["offset"], b["limit"]) for b in emu.bodies] == [(0, 30), (30, 30), (60, 30)]
    # the window: from the cursor less the publication lag and the look-back, to as_of less the lag
    assert emu.bodies[0]["dateRangeFilters"][0] == {
        "fieldName": "settlementDate", "startDate": "2021-06-10", "endDate": "2021-07-17"}
    assert all(r.headers["Accept"] == "application/json" for r, _ in server.log)
    assert [b.frame.height for b in batches] == [30, 30, 11]
    assert all((b.format, b.error, b.cursor) == ("finra_json", None, AS_OF) for b in batches)
    frame = pl.concat([b.frame for b in batches]).sort("symbol", "settlement_date")
    assert frame.equals(parse_format(PIPE.read_bytes(), PIPE.name, "short_interest"))
    table = {r["symbolCode"]: r for r in records()}
    aapl = frame.filter(pl.col("symbol") == "AAPL").row(0, named=True)
    assert aapl["short_interest"] == table["AAPL"]["currentShortPositionQuantity"]
    assert aapl["days_to_cover"] == table["AAPL"]["daysToCoverQuantity"]
    sentinel = sorted(s for s, r in table.items() if r["daysToCoverQuantity"] == 999.99)
    assert len(sentinel) == 7
    assert sorted(frame.filter(pl.col("days_to_cover").is_null())["symbol"]) == sentinel
    for b in batches:
        assert parse_payload(b.payload, b.format, b.name, b.dataset).equals(b.frame)


def test_without_record_total_a_short_page_ends_the_window(server):
    emu = Finra(total_header=False)
    server.expect_request(PATH, method="POST").respond_with_handler(emu)
    batches = source(page_size=71).fetch("short_interest", AS_OF, date(2021, 7, 20))
    assert [b["offset"] for b in emu.bodies] == [0, 71]  # a full page, then an empty one
    assert sum(b.frame.height for b in batches) == 71


def test_not_yet_published_settlements_are_not_asked_for(server):
    emu = Finra()
    server.expect_request(PATH, method="POST").respond_with_handler(emu)
    assert source().fetch("short_interest", date(2021, 7, 20), date(2021, 7, 10)) == []
    assert emu.bodies[0]["dateRangeFilters"][0]["endDate"] == "2021-07-11"


def test_a_bad_page_keeps_the_whole_window_out(server):
    emu = Finra()
    server.expect_ordered_request(PATH, method="POST").respond_with_handler(emu)
    server.expect_ordered_request(PATH, method="POST").respond_with_data(
        "<!DOCTYPE html><html><body>Service maintenance</body></html>", content_type="text/html")
    batches = source(page_size=30).fetch("short_interest", AS_OF, date(2021, 7, 20))
    (bad,) = batches  # the good first page is held back: nothing partial
    assert bad.frame is None and "HTML page" in bad.error.reason() and bad.cursor is None
    assert any("not loaded" in n for n in bad.notes)
    assert len(server.log) == 2


def test_renamed_field_is_a_clear_error(server):
    recs = records()[:3]
    for r in recs:
        r["symbol"] = r.pop("symbolCode")
    server.expect_request(PATH, method="POST").respond_with_json(recs, headers={"Record-Total": "3"})
    (b,) = source().fetch("short_interest", AS_OF, date(2021, 7, 20))
    assert b.error is not None and "symbolCode" in b.error.reason()


@pytest.mark.parametrize("answer", [Response("[]", content_type="application/json"), Response(status=204)])
def test_empty_window_gives_nothing(server, answer):
    server.expect_request(PATH, method="POST").respond_with_response(answer)
    assert source().fetch("short_interest", AS_OF, date(2021, 7, 20)) == []
    assert len(server.log) == 1


def test_429_with_retry_after_then_success(server):
    emu = Finra()
    waits = []
    server.expect_ordered_request(PATH, method="POST").respond_with_data("", status=429, headers={"Retry-After": "2"})
    server.expect_ordered_request(PATH, method="POST").respond_with_handler(emu)
    batches = source(sleep=waits.append).fetch("short_interest", AS_OF, date(2021, 7, 20))
    assert waits == [2.0] and sum(b.frame.height for b in batches) == 71


def test_windows_cover_history_in_steps():
    src = source(start=date(2021, 1, 1), window_days=100)
    assert src.windows(date(2021, 7, 26), None) == [
        (date(2021, 1, 1), date(2021, 4, 10)), (date(2021, 4, 11), date(2021, 7, 17))]
    assert src.windows(date(2021, 7, 26), date(2021, 7, 26)) == [(date(2021, 6, 16), date(2021, 7, 17))]
    assert src.fetch("prices", AS_OF, None) == []


def test_persistent_5xx_is_source_unavailable(server):
    server.expect_request(PATH, method="POST").respond_with_data("down", status=502)
    with pytest.raises(SourceUnavailable, match="finra"):
        source(files_fallback=False).fetch("short_interest", AS_OF, date(2021, 7, 20))
    assert len(server.log) == 3


# -- the bi-weekly files when the Query API is down

FILES = "/files/equity/otcmarket/biweekly/"


class Cdn:
    """FINRA's file server: the real 2021-07-15 file under its real name, 404 for anything else."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = {"shrt20210715.csv": PIPE.read_bytes()} if files is None else files
        self.asked: list[str] = []

    def __call__(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        self.asked.append(name)
        if name in self.files:
            return Response(self.files[name], content_type="text/plain")
        return Response("<Error><Code>NoSuchKey</Code></Error>", status=404, content_type="application/xml")


def _api_down(server, status: int = 503) -> None:
    server.expect_request(PATH, method="POST").respond_with_data("Service Unavailable", status=status)


def test_api_503_falls_back_to_the_biweekly_files(server):
    _api_down(server)
    cdn = Cdn()
    server.expect_request(re.compile(FILES + "shrt[0-9]{8}\\.csv"), method="GET").respond_with_handler(cdn)
    batches = source().fetch("short_interest", AS_OF, date(2021, 7, 20))
    # window 2021-06-10 .. 2021-07-17: the mid-month and month-end settlements in it
    assert cdn.asked == ["shrt20210615.csv", "shrt20210630.csv", "shrt20210715.csv"]
    assert sum(1 for r, _ in server.log if r.method == "POST") == 3  # the API's retries came first
    (b,) = batches
    assert (b.source, b.dataset, b.name, b.format, b.error, b.cursor) == (
        "finra", "short_interest", "shrt20210715.csv", "finra_pipe", None, AS_OF)
    assert any("Query API was unavailable" in n and "HTTP 503" in n and n.endswith("shrt20210715.csv")
               for n in b.notes)
    assert b.payload == PIPE.read_bytes()
    assert parse_payload(b.payload, b.format, b.name, b.dataset).equals(b.frame)
    # the values, read from the raw file with csv (not with the parser under test)
    table = {r["symbolCode"]: r for r in csv.DictReader(PIPE.read_text().splitlines(), delimiter="|")}
    assert b.frame.height == len(table) == 71
    aapl = b.frame.filter(pl.col("symbol") == "AAPL").row(0, named=True)
    assert (aapl["settlement_date"], aapl["short_interest"], aapl["prior_short_interest"]) == (
        SETTLED, int(table["AAPL"]["currentShortPositionQuantity"]), int(table["AAPL"]["previousShortPositionQuantity"]))
    assert (aapl["short_interest"], aapl["avg_daily_volume"]) == (96355309, 96035157)  # as printed in the file
    assert b.frame["days_to_cover"].null_count() == sum(r["daysToCoverQuantity"] == "999.99" for r in table.values())


def test_api_and_files_both_down_is_a_clear_failure(server):
    _api_down(server)
    server.expect_request(re.compile(FILES + ".*"), method="GET").respond_with_data("Bad Gateway", status=502)
    with pytest.raises(SourceUnavailable) as info:
        source().fetch("short_interest", AS_OF, date(2021, 7, 20))
    message = str(info.value)
    assert "Query API unavailable" in message and "HTTP 503" in message
    assert "bi-weekly files unavailable too" in message and "HTTP 502" in message


def test_api_down_and_no_file_found_is_a_failure_not_silence(server):
    _api_down(server)
    cdn = Cdn(files={})
    server.expect_request(re.compile(FILES + ".*"), method="GET").respond_with_handler(cdn)
    with pytest.raises(SourceUnavailable, match="no bi-weekly file found"):
        source().fetch("short_interest", AS_OF, date(2021, 7, 20))
    assert len(cdn.asked) == 3


def test_finra_down_leaves_the_other_datasets_of_the_run_alone(server, monkeypatch, tmp_path):
    """The nightly ``collect`` step with the live Yahoo and FINRA sources: FINRA's API and files
    both down fail the short_interest dataset only; Yahoo's prices (the recorded QQQ chart body,
    tests/fixtures/api/yahoo/) still come back."""
    from capspread.config import Config, Home, Symbol
    from flows.nightly import RunResult, collect

    yahoo = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "yahoo" / "chart-QQQ-2020-01-01-to-2020-01-03.json"
    body = json.dumps(json.loads(yahoo.read_text())["response"]["bodyJson"])
    server.expect_request("/yahoo/v8/finance/chart/QQQ").respond_with_data(body, content_type="application/json")
    _api_down(server)
    server.expect_request(re.compile(FILES + ".*"), method="GET").respond_with_data("down", status=503)
    monkeypatch.setenv("CAPSPREAD_YAHOO_BASE_URL", server.url_for("/yahoo").rstrip("/"))
    monkeypatch.setenv("CAPSPREAD_LIVE_SOURCES", "yahoo,finra")
    monkeypatch.setenv("CAPSPREAD_LIVE_START", "2019-12-01")  # FINRA: settlements to 2019-12-25
    for name in ("YAHOO", "FINRA", "FINRA_FILES"):
        monkeypatch.setenv(f"CAPSPREAD_{name}_MIN_INTERVAL", "0")
    monkeypatch.setenv("CAPSPREAD_HTTP_ATTEMPTS", "2")
    monkeypatch.setenv("CAPSPREAD_HTTP_BACKOFF", "0.001")
    base = Config.load()
    config = Config(universe=(Symbol("QQQ", "QQQ", "etf", "large"),), pairs=(), bucket_funds={}, inflation_regime={},
                    publication_lag=dict(base.publication_lag), validation={})
    as_of = date(2020, 1, 3)
    run = RunResult(run_id="test-run", as_of=as_of, profile="live")
    home = Home(tmp_path / "home").ensure()
    batches = collect.fn(home, config, "live", as_of, {}, [], run)
    assert [(s, d) for s, d, _ in run.source_failures] == [("finra", "short_interest")]
    assert "bi-weekly files unavailable too" in run.source_failures[0][2]
    (b,) = batches
    assert (b.source, b.dataset, b.error) == ("yahoo", "prices", None)
    assert b.frame["symbol"].unique().to_list() == ["QQQ"]
