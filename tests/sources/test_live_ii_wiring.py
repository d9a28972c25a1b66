"""``sources.live.live_sources`` with the sources of Live sources II: configured from the
environment and the configuration, keeping their state where ``CAPSPREAD_STATE_DIR`` says, and
the consensus source asking for the companies the iShares source just brought — the profile
``live`` chain against a loopback server.

Answers: the real iShares IWM and IVV downloads and the recorded Yahoo earningsTrend body
(tests/fixtures/api2/, provenance in NOTICE); the cookie page and crumb endpoint are written here.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from capspread.config import Config
from sources.consensus.state import STALE
from sources.errors import SourceUnavailable
from sources.live import NAMES, live_sources
from sources.schemas import DATASETS

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api2"
MINE = {"ishares": "holdings", "french": "factors", "spdji": "estimates", "consensus": "company_estimates"}


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    for name in NAMES:
        monkeypatch.setenv(f"CAPSPREAD_{name.upper()}_BASE_URL", srv.url_for(f"/{name}").rstrip("/"))
        monkeypatch.setenv(f"CAPSPREAD_{name.upper()}_MIN_INTERVAL", "0")
    monkeypatch.setenv("CAPSPREAD_CONSENSUS_COOKIE_URL", srv.url_for("/cookie"))
    monkeypatch.setenv("CAPSPREAD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CAPSPREAD_HTTP_ATTEMPTS", "2")
    monkeypatch.setenv("CAPSPREAD_HTTP_BACKOFF", "0.001")
    for key in ("CAPSPREAD_LIVE_SOURCES", "CAPSPREAD_ISHARES_FUNDS", "CAPSPREAD_CONSENSUS_FUNDS",
                "CAPSPREAD_CONSENSUS_SYMBOLS", "CAPSPREAD_CONSENSUS_DAILY_BUDGET", "CAPSPREAD_CONSENSUS_SYMBOL_MAP"):
        monkeypatch.delenv(key, raising=False)
    yield srv
    srv.clear()
    srv.stop()


def test_the_new_sources_from_the_configuration(server, tmp_path):
    sources = {s.name: s for s in live_sources(Config.load())}
    assert list(sources) == list(NAMES) and set(MINE) <= set(sources)
    for name in MINE:
        s = sources[name]
        assert s.client.base_url == server.url_for(f"/{name}").rstrip("/")
        assert s.client.min_interval == 0 and s.client.retry.attempts == 2
        for dataset in dict.fromkeys((*DATASETS, "company_estimates")):  # whether or not DATASETS has it yet
            if dataset != MINE[name]:
                assert s.fetch(dataset, datetime.now(timezone.utc).date(), None) == []
    assert server.log == []  # nothing asked for datasets a source does not serve
    # the configured bucket funds that iShares serves, after the four of the issue (MDY is not an iShares fund)
    assert sources["ishares"].funds == ["IWM", "IJR", "IVV", "IJH"]
    assert sources["ishares"].state_dir == tmp_path / "state" / "ishares"
    assert sources["spdji"].state_dir == tmp_path / "state" / "spdji"
    assert sources["consensus"].state_dir == tmp_path / "state" / "consensus"
    assert sources["consensus"].cookie_url == server.url_for("/cookie")
    assert sources["consensus"].daily_budget == 400
    assert sources["consensus"].universe() == []  # no holdings kept yet


def test_holdings_then_consensus_estimates_for_their_companies(server, monkeypatch):
    monkeypatch.setenv("CAPSPREAD_LIVE_SOURCES", "ishares,consensus")
    monkeypatch.setenv("CAPSPREAD_ISHARES_FUNDS", "IWM,IVV")
    monkeypatch.setenv("CAPSPREAD_CONSENSUS_DAILY_BUDGET", "3")
    server.expect_request("/ishares/us/products/239710/ishares-russell-2000-etf/1467271812596.ajax").respond_with_data(
        (FIX / "ishares/iShares_IWM_holdings_2026-05-05.csv").read_bytes(), content_type="text/csv")
    server.expect_request("/ishares/us/products/239726/ishares-core-sp-500-etf/1467271812596.ajax").respond_with_data(
        (FIX / "ishares/iShares_IVV_holdings_2026-06-19.csv").read_bytes(), content_type="text/csv")
    server.expect_request("/cookie").respond_with_response(
        Response("", status=404, headers={"Set-Cookie": "A3=d=AQABBWiring; Path=/"}))
    server.expect_request("/consensus/v1/test/getcrumb").respond_with_data("WiringCrumb", content_type="text/plain")
    recorded = json.loads((FIX / "yahoo/quoteSummary-earningsTrend-AAPL.json").read_text())
    body = json.dumps(recorded["response"]["bodyJson"])
    server.expect_request(re.compile(r"^/consensus/v10/finance/quoteSummary/.+$")).respond_with_data(
        body, content_type="application/json")
    today = datetime.now(timezone.utc).date()
    batches, failures = [], {}
    for source in live_sources(Config.load()):  # what a caller does, in the order given
        for dataset in dict.fromkeys((*DATASETS, "company_estimates")):  # whether or not DATASETS has it yet
            try:
                batches += source.fetch(dataset, today, None)
            except SourceUnavailable as exc:
                failures[(source.name, dataset)] = exc
    assert failures == {}
    iwm, ivv, estimates = batches
    assert (iwm.dataset, ivv.dataset, estimates.dataset) == ("holdings", "holdings", "company_estimates")
    assert any(n.startswith(f"{STALE}IWM holdings are dated 2026-05-05") for n in iwm.notes)
    asked = [r.path.rsplit("/", 1)[-1] for r, _ in server.log if "quoteSummary" in r.path]
    assert asked == ["NVDA", "BE", "AAPL"]  # the largest of each fund first, three a day
    assert all(r.args.get("crumb") == "WiringCrumb" and r.cookies.get("A3") == "d=AQABBWiring"
               for r, _ in server.log if "quoteSummary" in r.path)
    with zipfile.ZipFile(io.BytesIO(estimates.payload)) as zf:
        assert sorted(zf.namelist()) == sorted(f"{s}_{today}.json" for s in asked)
    assert estimates.frame["as_of_date"].unique().to_list() == [today]


def test_a_fixed_list_of_companies_instead_of_holdings(server, monkeypatch):
    monkeypatch.setenv("CAPSPREAD_LIVE_SOURCES", "consensus")
    monkeypatch.setenv("CAPSPREAD_CONSENSUS_SYMBOLS", "aapl, MSFT")
    (consensus,) = live_sources(Config.load())
    assert consensus.universe() == ["AAPL", "MSFT"]
