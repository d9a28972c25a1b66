"""The fault matrix (tests/sources/fault_matrix.py): every live source against the same faults, served from 127.0.0.1.

Good answers come from real data (provenance in NOTICE): the recorded Yahoo QQQ chart and FRED
FEDFUNDS bodies as recorded; for Stooq, BLS and FINRA, whose answers were never recorded, the
vendor's layout filled with real values (Stooq SPY rows of a bulk file, BLS CPI-U NSA values of
datasets/cpi-us, FINRA records of the 2021-07-15 file).
"""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
from fault_matrix import *  # noqa: F403 (the shared fault tests, run here for these SPECS)
from fault_matrix import Matrix, Spec, assert_5xx_recovers_or_unavailable, assert_quarantined, renaming
from werkzeug import Response

from sources.bls import BlsSource
from sources.finra import FinraSource
from sources.fred import FredSource
from sources.stooq import StooqSource
from sources.yahoo import YahooSource

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api"


def yahoo_body() -> bytes:
    return json.dumps(json.loads((FIX / "yahoo/chart-QQQ-2020-01-01-to-2020-01-03.json").read_text())["response"]["bodyJson"]).encode()


def stooq_body() -> bytes:
    rows = list(csv.reader((FIX / "stooq/spy.us_2024-12-02_2025-01-29.txt").read_text().splitlines()))[1:]
    lines = ["Date,Open,High,Low,Close,Volume"] + [f"{r[2][:4]}-{r[2][4:6]}-{r[2][6:]},{','.join(r[4:9])}" for r in rows]
    return ("\n".join(lines) + "\n").encode()


def fred_body() -> bytes:
    return (FIX / "fred/fred_series_observations_fedfunds_2023.json").read_bytes()


def bls_body() -> bytes:
    rows = [r for r in csv.reader((FIX / "bls/datasets_cpi-us_cpiai_2019-01_2026-05.csv").read_text().splitlines())
            if r[0].startswith("2024-")]
    data = [{"year": "2024", "period": f"M{r[0][5:7]}", "periodName": "", "value": r[1], "footnotes": [{}]} for r in rows[::-1]]
    return json.dumps({"status": "REQUEST_SUCCEEDED", "responseTime": 80, "message": [],
                       "Results": {"series": [{"seriesID": "CUUR0000SA0", "data": data}]}}).encode()


def finra_body() -> bytes:
    rows = list(csv.reader((FIX / "finra/finra_shrt20210715_excerpt_first71rows.txt").read_text().splitlines(), delimiter="|"))
    return json.dumps([dict(zip(rows[0], r)) for r in rows[1:]]).encode()


SPECS = {
    "yahoo": Spec("yahoo", "prices", "/v8/finance/chart/QQQ", lambda **kw: YahooSource(["QQQ"], **kw), yahoo_body,
                  renaming(yahoo_body, b'"close"', b'"closePrice"'), date(2020, 1, 3),
                  empty=json.dumps({"chart": {"result": [{"meta": {"symbol": "QQQ", "exchangeTimezoneName": "America/New_York",
                                                                   "dataGranularity": "1d"}, "indicators": {"quote": [{}]}}],
                                              "error": None}}).encode()),
    "stooq": Spec("stooq", "prices", "/q/d/l/", lambda **kw: StooqSource(["SPY"], api_key="stooq-matrix-key", **kw),
                  stooq_body, renaming(stooq_body, b"Close", b"Last"), date(2025, 1, 29), content_type="text/csv",
                  empty=b"No data"),
    "fred": Spec("fred", "cpi", "/fred/series/observations", lambda **kw: FredSource(["FEDFUNDS"], api_key="fred-matrix-key", **kw),
                 fred_body, renaming(fred_body, b'"value"', b'"val"'), date(2023, 7, 18), cursor=date(2023, 7, 17),
                 empty=json.dumps({"count": 0, "offset": 0, "limit": 100000, "observations": []}).encode()),
    "bls": Spec("bls", "cpi", "/publicAPI/v2/timeseries/data/", lambda **kw: BlsSource(["CUUR0000SA0"], **kw),
                bls_body, renaming(bls_body, b'"seriesID"', b'"seriesId"'), date(2025, 1, 20), method="POST",
                cursor=date(2025, 1, 1),
                empty=json.dumps({"status": "REQUEST_SUCCEEDED", "message": ["No Data Available for Series CUUR0000SA0 Year: 2024"],
                                  "Results": {"series": [{"seriesID": "CUUR0000SA0", "data": []}]}}).encode()),
    "finra": Spec("finra", "short_interest", "/data/group/otcMarket/name/consolidatedShortInterest",
                  # the Query API client alone (its fallback to the bi-weekly files: test_live_finra.py)
                  lambda **kw: FinraSource(files_fallback=False, **kw), finra_body,
                  renaming(finra_body, b'"symbolCode"', b'"symbol"'), date(2021, 7, 26), method="POST",
                  cursor=date(2021, 7, 20), empty=b"[]"),
}
NAMES = list(SPECS)
MATRIX = Matrix(SPECS)
matrix, name = MATRIX.fixtures()


@pytest.fixture
def server(http_server, monkeypatch):
    yield from MATRIX.serving(http_server, monkeypatch, unset=["BLS_API_KEY"])


@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize("name", NAMES)
def test_5xx_recovers_or_makes_the_source_unavailable(server, name, status):
    assert_5xx_recovers_or_unavailable(server, MATRIX, name, status)


@pytest.mark.parametrize("name", NAMES)
def test_empty_result_is_no_batch(server, name):
    spec = SPECS[name]
    MATRIX.respond(server, spec, Response(spec.empty, content_type="application/json"))
    assert spec.run() == []
    assert MATRIX.requests(server) == 1


@pytest.mark.parametrize("name", ["yahoo", "fred"])
def test_unknown_symbol_or_series_is_quarantined(server, name):
    spec = SPECS[name]
    body = {"yahoo": {"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}},
            "fred": {"error_code": 400, "error_message": "Bad Request.  The series does not exist."}}[name]
    MATRIX.respond(server, spec, Response(json.dumps(body), status=404 if name == "yahoo" else 400, content_type="application/json"))
    assert_quarantined(spec.run(), {"yahoo": "Not Found", "fred": "does not exist"}[name])
    assert MATRIX.requests(server) == 1
