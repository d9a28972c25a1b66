"""The fault matrix: every live source against the same faults, served from 127.0.0.1.

Each fault ends either recovered (the retry got the good answer) or in a clear failure of that
source's dataset alone: a batch with ``error`` (quarantined, never retried) or ``SourceUnavailable``.

Good answers come from real data (provenance in NOTICE): the recorded Yahoo QQQ chart and FRED
FEDFUNDS bodies as recorded; for Stooq, BLS and FINRA, whose answers were never recorded, the
vendor's layout filled with real values (Stooq SPY rows of a bulk file, BLS CPI-U NSA values of
datasets/cpi-us, FINRA records of the 2021-07-15 file).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

import pytest
from conftest import serving
from pytest_httpserver import HTTPServer
from werkzeug import Response

from sources.bls import BlsSource
from sources.errors import SourceUnavailable
from sources.finra import FinraSource
from sources.fred import FredSource
from sources.http import RetryPolicy
from sources.stooq import StooqSource
from sources.yahoo import YahooSource

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api"


def yahoo_body() -> bytes:
    return json.dumps(json.loads((FIX / "yahoo/chart-QQQ-2020-01-01-to-2020-01-03.json").read_text())["response"]["bodyJson"]).encode()


def stooq_body() -> bytes:
    rows = list(csv.reader((FIX / "stooq/spy.us_2024-12-02_2025-01-29.txt").read_text().splitlines()))[1:]
    lines = ["Date,Open,High,Low,Close,Volume"] + [f"{r[2][:4]}-{r[2][4:6]}-{r[2][6:]},{','.join(r[4:9])}" for r in rows]
    return ("\n".join(lines) + "\n").encode()


def bls_body() -> bytes:
    rows = [r for r in csv.reader((FIX / "bls/datasets_cpi-us_cpiai_2019-01_2026-05.csv").read_text().splitlines())
            if r[0].startswith("2024-")]
    data = [{"year": "2024", "period": f"M{r[0][5:7]}", "periodName": "", "value": r[1], "footnotes": [{}]} for r in rows[::-1]]
    return json.dumps({"status": "REQUEST_SUCCEEDED", "responseTime": 80, "message": [],
                       "Results": {"series": [{"seriesID": "CUUR0000SA0", "data": data}]}}).encode()


def finra_body() -> bytes:
    rows = list(csv.reader((FIX / "finra/finra_shrt20210715_excerpt_first71rows.txt").read_text().splitlines(), delimiter="|"))
    return json.dumps([dict(zip(rows[0], r)) for r in rows[1:]]).encode()


@dataclass
class Spec:
    name: str
    dataset: str
    path: str
    method: str
    build: Callable[..., object]
    good: Callable[[], bytes]
    rename: tuple[bytes, bytes]  # a field renamed in the good body: (old, new)
    empty: bytes
    as_of: date
    cursor: date | None


OPTIONS = dict(retry=RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, max_retry_after=30), min_interval=0,
               timeout=0.25)

SPECS = {
    "yahoo": Spec("yahoo", "prices", "/v8/finance/chart/QQQ", "GET", lambda **kw: YahooSource(["QQQ"], **kw), yahoo_body,
                  (b'"close"', b'"closePrice"'),
                  json.dumps({"chart": {"result": [{"meta": {"symbol": "QQQ", "exchangeTimezoneName": "America/New_York",
                                                             "dataGranularity": "1d"}, "indicators": {"quote": [{}]}}],
                                        "error": None}}).encode(),
                  date(2020, 1, 3), None),
    "stooq": Spec("stooq", "prices", "/q/d/l/", "GET", lambda **kw: StooqSource(["SPY"], api_key="stooq-matrix-key", **kw),
                  stooq_body, (b"Close", b"Last"), b"No data", date(2025, 1, 29), None),
    "fred": Spec("fred", "cpi", "/fred/series/observations", "GET",
                 lambda **kw: FredSource(["FEDFUNDS"], api_key="fred-matrix-key", **kw),
                 lambda: (FIX / "fred/fred_series_observations_fedfunds_2023.json").read_bytes(), (b'"value"', b'"val"'),
                 json.dumps({"count": 0, "offset": 0, "limit": 100000, "observations": []}).encode(),
                 date(2023, 7, 18), date(2023, 7, 17)),
    "bls": Spec("bls", "cpi", "/publicAPI/v2/timeseries/data/", "POST", lambda **kw: BlsSource(["CUUR0000SA0"], **kw),
                bls_body, (b'"seriesID"', b'"seriesId"'),
                json.dumps({"status": "REQUEST_SUCCEEDED", "message": ["No Data Available for Series CUUR0000SA0 Year: 2024"],
                            "Results": {"series": [{"seriesID": "CUUR0000SA0", "data": []}]}}).encode(),
                date(2025, 1, 20), date(2025, 1, 1)),
    "finra": Spec("finra", "short_interest", "/data/group/otcMarket/name/consolidatedShortInterest", "POST",
                  # the Query API client alone (its fallback to the bi-weekly files: test_live_finra.py)
                  lambda **kw: FinraSource(files_fallback=False, **kw), finra_body, (b'"symbolCode"', b'"symbol"'), b"[]",
                  date(2021, 7, 26), date(2021, 7, 20)),
}


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, SPECS, unset=["BLS_API_KEY"])


def run(spec: Spec, waits: list | None = None):
    waits = waits if waits is not None else []
    return spec.build(sleep=waits.append, **OPTIONS).fetch(spec.dataset, spec.as_of, spec.cursor)


def respond(server: HTTPServer, spec: Spec, *answers) -> None:
    for answer in answers:
        handler = server.expect_ordered_request(spec.path, method=spec.method)
        if isinstance(answer, Response):  # (a Response is callable too: test it first)
            handler.respond_with_response(answer)
        else:
            handler.respond_with_handler(answer)


def good(spec: Spec) -> Response:
    return Response(spec.good(), content_type="application/json" if spec.name != "stooq" else "text/csv")


def assert_recovered(batches, spec: Spec) -> None:
    assert batches and all(b.error is None and b.frame.height > 0 for b in batches)
    assert all(b.cursor == spec.as_of for b in batches)


def assert_quarantined(batches, *needles: str) -> None:
    assert batches and any(b.error is not None for b in batches)
    for b in batches:
        assert b.frame is None and b.cursor is None
        for needle in needles:
            assert needle in b.error.reason()


NAMES = list(SPECS)


@pytest.mark.parametrize("name", NAMES)
def test_good_answer(server, name):
    spec = SPECS[name]
    respond(server, spec, good(spec))
    assert_recovered(run(spec), spec)


@pytest.mark.parametrize("name", NAMES)
def test_429_with_retry_after_recovers(server, name):
    spec = SPECS[name]
    respond(server, spec, Response("slow down", status=429, headers={"Retry-After": "3"}), good(spec))
    waits: list = []
    assert_recovered(run(spec, waits), spec)
    assert waits == [3.0] and len(server.log) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize("name", NAMES)
def test_5xx_recovers_or_makes_the_source_unavailable(server, name, status):
    spec = SPECS[name]
    respond(server, spec, Response("oops", status=status), good(spec))
    assert_recovered(run(spec), spec)
    server.clear()
    server.expect_request(spec.path, method=spec.method).respond_with_data("oops", status=status)
    with pytest.raises(SourceUnavailable, match=f"{name}: .*HTTP {status}"):
        run(spec)
    assert len(server.log) == 3  # the bounded attempts


@pytest.mark.parametrize("name", NAMES)
def test_timeout_recovers(server, name):
    spec = SPECS[name]

    def slow(_request):
        time.sleep(0.5)
        return good(spec)

    respond(server, spec, slow, good(spec))
    assert_recovered(run(spec), spec)
    deadline = time.monotonic() + 2
    while len(server.log) < 2 and time.monotonic() < deadline:  # let the slow answer finish inside this test
        time.sleep(0.02)


@pytest.mark.parametrize("name", NAMES)
def test_html_instead_of_data_is_quarantined_without_retry(server, name):
    spec = SPECS[name]
    respond(server, spec, Response("<!DOCTYPE html>\n<html><body><h1>Service unavailable</h1></body></html>",
                                   content_type="text/html"))
    assert_quarantined(run(spec), "HTML page")
    assert len(server.log) == 1


@pytest.mark.parametrize("name", NAMES)
def test_truncated_body_is_quarantined(server, name):
    spec = SPECS[name]
    body = spec.good()
    cut = len(body) // 2
    while body[cut - 1:cut + 1].count(b"\n"):  # cut inside a line, never on a line break
        cut += 1
    respond(server, spec, Response(body[:cut], content_type="application/json"))
    assert_quarantined(run(spec))
    assert len(server.log) == 1


@pytest.mark.parametrize("name", NAMES)
def test_renamed_field_is_quarantined(server, name):
    spec = SPECS[name]
    old, new = spec.rename
    body = spec.good()
    assert old in body
    respond(server, spec, Response(body.replace(old, new), content_type="application/json"))
    assert_quarantined(run(spec))


@pytest.mark.parametrize("name", NAMES)
def test_empty_result_is_no_batch(server, name):
    spec = SPECS[name]
    respond(server, spec, Response(spec.empty, content_type="application/json"))
    assert run(spec) == []
    assert len(server.log) == 1


@pytest.mark.parametrize("name", ["yahoo", "fred"])
def test_unknown_symbol_or_series_is_quarantined(server, name):
    spec = SPECS[name]
    body = {"yahoo": {"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}},
            "fred": {"error_code": 400, "error_message": "Bad Request.  The series does not exist."}}[name]
    respond(server, spec, Response(json.dumps(body), status=404 if name == "yahoo" else 400, content_type="application/json"))
    assert_quarantined(run(spec), {"yahoo": "Not Found", "fred": "does not exist"}[name])
    assert len(server.log) == 1
