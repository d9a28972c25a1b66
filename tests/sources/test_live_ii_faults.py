"""The fault matrix (tests/sources/fault_matrix.py) of Live sources I, for the sources of Live sources II, served from 127.0.0.1.

Good answers are the real files of tests/fixtures/api2/ (provenance in NOTICE): the iShares IVV
download, the French monthly CSV zipped as the library serves it, the S&P DJI workbook and the
recorded Yahoo earningsTrend body (behind a cookie page and a crumb endpoint written here).
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path

import pytest
from fault_matrix import *  # noqa: F403 (the shared fault tests, run here for these SPECS)
from fault_matrix import Matrix, Spec, assert_5xx_recovers_or_unavailable, assert_quarantined, renaming
from werkzeug import Response

from sources.consensus import ConsensusSource
from sources.french import FrenchSource
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


SPECS = {
    "ishares": Spec("ishares", "holdings", "/us/products/239726/ishares-core-sp-500-etf/1467271812596.ajax",
                    lambda **kw: IsharesSource(["IVV"], **kw), ishares_body,
                    renaming(ishares_body, b"Weight (%)", b"Weighting"), date(2026, 6, 22), content_type="text/csv"),
    "french": Spec("french", "factors", "/pages/faculty/ken.french/ftp/F-F_Research_Data_Factors_CSV.zip",
                   lambda **kw: FrenchSource(["monthly"], **kw), french_zip,
                   lambda: french_zip((FIX / "french/F-F_Research_Data_Factors.CSV").read_bytes()
                                      .replace(b"Mkt-RF", b"MktRF")),
                   date(2024, 9, 20), content_type="application/x-zip-compressed"),
    "spdji": Spec("spdji", "estimates", "/spdji/en/documents/additional-material/sp-500-eps-est.xlsx",
                  lambda **kw: SpdjiSource(**kw), spdji_body, lambda: rezip(spdji_body(), b"OPER P/E", b"OPER PE"),
                  date(2025, 12, 31), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "consensus": Spec("consensus", "company_estimates", "/v10/finance/quoteSummary/AAPL",
                      lambda **kw: ConsensusSource(["AAPL"], today=lambda: date(2021, 4, 7), **kw), consensus_body,
                      renaming(consensus_body, b'"epsTrend"', b'"epsTrends"'), date(2021, 4, 7)),
}
NAMES = list(SPECS)
# the consensus handshake answers every time; the faults hit the data requests
MATRIX = Matrix(SPECS, handshake={
    "/cookie": Response("", status=404, headers={"Set-Cookie": "A3=d=AQABBMatrix; Path=/"}),
    "/v1/test/getcrumb": Response("MatrixCrumb1", content_type="text/plain"),
})
matrix, name = MATRIX.fixtures()


@pytest.fixture
def server(http_server, monkeypatch):
    yield from MATRIX.serving(http_server, monkeypatch,
                              env={"CAPSPREAD_CONSENSUS_COOKIE_URL": http_server.url_for("/cookie")})


@pytest.mark.parametrize("name", NAMES)
def test_503_recovers_or_makes_the_source_unavailable(server, name):
    assert_5xx_recovers_or_unavailable(server, MATRIX, name, 503)


@pytest.mark.parametrize("name", ["ishares", "french", "spdji"])
def test_a_refusal_is_quarantined_without_retry(server, name):
    spec = SPECS[name]
    MATRIX.respond(server, spec, Response("Forbidden", status=403))
    assert_quarantined(spec.run(), "HTTP 403")
    assert MATRIX.requests(server) == 1
