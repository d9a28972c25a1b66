"""The FINRA Query API source against a server on 127.0.0.1.

No recording of a Query API answer exists (only hand-made mocks do), so ``Finra`` below answers
``consolidatedShortInterest`` POSTs in the API's layout — a JSON list of records with the dataset's
field names, numbers as JSON numbers, paged by ``offset``/``limit`` with a ``Record-Total`` header —
from the 71 real records of FINRA's biweekly file of 2021-07-15
(tests/fixtures/api/finra/finra_shrt20210715_excerpt_first71rows.txt, provenance in NOTICE).
"""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import serving
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
    rows = list(csv.reader(PIPE.read_text().splitlines(), delimiter="|"))
    out = []
    for r in rows[1:]:
        rec: dict = dict(zip(rows[0], r))
        for key in ("currentShortPositionQuantity", "previousShortPositionQuantity", "averageDailyVolumeQuantity",
                    "changePreviousNumber"):
            rec[key] = int(rec[key])
        for key in ("daysToCoverQuantity", "changePercent"):
            rec[key] = float(rec[key])
        for key, value in list(rec.items()):
            if value == "":
                rec[key] = None
        out.append(rec)
    return out


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
    yield from serving(http_server, monkeypatch, ["finra"])


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
        source().fetch("short_interest", AS_OF, date(2021, 7, 20))
    assert len(server.log) == 3
