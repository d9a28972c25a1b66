"""The fault matrix of Live sources I, for the sources of Live sources II, served from 127.0.0.1.

Each fault ends recovered (the retry got the good answer) or in a clear failure of that source
alone: a batch with ``error`` (quarantined, never retried) or ``SourceUnavailable``.

Good answers are the real files of tests/fixtures/api2/ (provenance in NOTICE): the iShares IVV
download, the French monthly CSV zipped as the library serves it, the S&P DJI workbook and the
recorded Yahoo earningsTrend body (behind a cookie page and a crumb endpoint written here).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

import pytest
from conftest import serving
from pytest_httpserver import HTTPServer
from werkzeug import Response

from sources.consensus import ConsensusSource
from sources.errors import SourceUnavailable
from sources.french import FrenchSource
from sources.http import RetryPolicy
from sources.ishares import IsharesSource
from sources.spdji import SpdjiSource

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api2"


def ishares_body() -> bytes:
    return (FIX / "ishares/iShares_IVV_holdings_2026-06-19.csv").read_bytes()


def french_zip(csv: bytes | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("F-F_Research_Data_Factors.CSV", csv or (FIX / "french/F-F_Research_Data_Factors.CSV").read_bytes())
    return out.getvalue()


def spdji_body() -> bytes:
    return (FIX / "spdji/sp-500-eps-est_2025-12.xlsx").read_bytes()


def consensus_body() -> bytes:
    recorded = json.loads((FIX / "yahoo/quoteSummary-earningsTrend-AAPL.json").read_text())
    return json.dumps(recorded["response"]["bodyJson"]).encode()


def rezip(data: bytes, old: bytes, new: bytes) -> bytes:
    """``data`` (a zip) with ``old`` replaced by ``new`` in every member."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename).replace(old, new))
    return out.getvalue()


@dataclass
class Spec:
    name: str
    dataset: str
    path: str
    build: Callable[..., object]
    good: Callable[[], bytes]
    content_type: str
    renamed: Callable[[], bytes]  # the good answer with a field renamed
    as_of: date


SPECS = {
    "ishares": Spec("ishares", "holdings", "/us/products/239726/ishares-core-sp-500-etf/1467271812596.ajax",
                    lambda **kw: IsharesSource(["IVV"], **kw), ishares_body, "text/csv",
                    lambda: ishares_body().replace(b"Weight (%)", b"Weighting"), date(2026, 6, 22)),
    "french": Spec("french", "factors", "/pages/faculty/ken.french/ftp/F-F_Research_Data_Factors_CSV.zip",
                   lambda **kw: FrenchSource(["monthly"], **kw), french_zip, "application/x-zip-compressed",
                   lambda: french_zip((FIX / "french/F-F_Research_Data_Factors.CSV").read_bytes()
                                      .replace(b"Mkt-RF", b"MktRF")),
                   date(2024, 9, 20)),
    "spdji": Spec("spdji", "estimates", "/spdji/en/documents/additional-material/sp-500-eps-est.xlsx",
                  lambda **kw: SpdjiSource(**kw), spdji_body,
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  lambda: rezip(spdji_body(), b"OPER P/E", b"OPER PE"), date(2025, 12, 31)),
    "consensus": Spec("consensus", "company_estimates", "/v10/finance/quoteSummary/AAPL",
                      lambda **kw: ConsensusSource(["AAPL"], today=lambda: date(2021, 4, 7), **kw), consensus_body,
                      "application/json", lambda: consensus_body().replace(b'"epsTrend"', b'"epsTrends"'),
                      date(2021, 4, 7)),
}
NAMES = list(SPECS)
OPTIONS = dict(retry=RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, max_retry_after=30), min_interval=0,
               timeout=0.25)


@pytest.fixture
def server(http_server, monkeypatch):
    cookie = {"CAPSPREAD_CONSENSUS_COOKIE_URL": http_server.url_for("/cookie")}
    for srv in serving(http_server, monkeypatch, SPECS, env=cookie):
        # the consensus handshake answers every time; the faults hit the data requests
        srv.expect_request("/cookie").respond_with_response(
            Response("", status=404, headers={"Set-Cookie": "A3=d=AQABBMatrix; Path=/"}))
        srv.expect_request("/v1/test/getcrumb").respond_with_data("MatrixCrumb1", content_type="text/plain")
        yield srv


def run(spec: Spec, waits: list | None = None):
    waits = waits if waits is not None else []
    return spec.build(sleep=waits.append, **OPTIONS).fetch(spec.dataset, spec.as_of, None)


def respond(server: HTTPServer, spec: Spec, *answers) -> None:
    for answer in answers:
        handler = server.expect_oneshot_request(spec.path)
        if isinstance(answer, Response):
            handler.respond_with_response(answer)
        else:
            handler.respond_with_handler(answer)


def good(spec: Spec) -> Response:
    return Response(spec.good(), content_type=spec.content_type)


def data_requests(server: HTTPServer, spec: Spec) -> int:
    return sum(req.path == spec.path for req, _ in server.log)


def assert_recovered(batches, spec: Spec) -> None:
    assert batches and all(b.error is None and b.frame.height > 0 for b in batches)
    assert all(b.cursor == spec.as_of for b in batches)


def assert_quarantined(batches, *needles: str) -> None:
    assert batches and all(b.error is not None for b in batches)
    for b in batches:
        assert b.frame is None and b.cursor is None
        for needle in needles:
            assert needle in b.error.reason()


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
    assert waits == [3.0] and data_requests(server, spec) == 2


@pytest.mark.parametrize("name", NAMES)
def test_503_recovers_or_makes_the_source_unavailable(server, name):
    spec = SPECS[name]
    respond(server, spec, Response("oops", status=503), good(spec))
    assert_recovered(run(spec), spec)
    assert data_requests(server, spec) == 2
    server.clear()
    server.expect_request("/cookie").respond_with_data("", status=404)
    server.expect_request("/v1/test/getcrumb").respond_with_data("MatrixCrumb1", content_type="text/plain")
    server.expect_request(spec.path).respond_with_data("oops", status=503)
    with pytest.raises(SourceUnavailable, match=f"{name}: .*HTTP 503"):
        run(spec)
    assert data_requests(server, spec) == 3  # the bounded attempts


@pytest.mark.parametrize("name", NAMES)
def test_timeout_recovers(server, name):
    spec = SPECS[name]

    def slow(_request):
        time.sleep(0.5)
        return good(spec)

    respond(server, spec, slow, good(spec))
    assert_recovered(run(spec), spec)
    deadline = time.monotonic() + 2
    while data_requests(server, spec) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("name", NAMES)
def test_html_instead_of_data_is_quarantined_without_retry(server, name):
    spec = SPECS[name]
    respond(server, spec, Response("<!DOCTYPE html>\n<html><body><h1>Service unavailable</h1></body></html>",
                                   content_type="text/html"))
    assert_quarantined(run(spec), "HTML page")
    assert data_requests(server, spec) == 1


@pytest.mark.parametrize("name", NAMES)
def test_truncated_body_is_quarantined(server, name):
    spec = SPECS[name]
    body = spec.good()
    cut = len(body) // 2
    while body[cut - 1:cut + 1].count(b"\n"):  # cut inside a line, never on a line break
        cut += 1
    respond(server, spec, Response(body[:cut], content_type=spec.content_type))
    assert_quarantined(run(spec))
    assert data_requests(server, spec) == 1


@pytest.mark.parametrize("name", NAMES)
def test_renamed_field_is_quarantined(server, name):
    spec = SPECS[name]
    respond(server, spec, Response(spec.renamed(), content_type=spec.content_type))
    assert_quarantined(run(spec))


@pytest.mark.parametrize("name", ["ishares", "french", "spdji"])
def test_a_refusal_is_quarantined_without_retry(server, name):
    spec = SPECS[name]
    respond(server, spec, Response("Forbidden", status=403))
    assert_quarantined(run(spec), "HTTP 403")
    assert data_requests(server, spec) == 1
