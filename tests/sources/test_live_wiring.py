"""``sources.live.live_sources``: the five live sources, configured from the environment, and a
fault in one of them leaving the others alone (the caller pattern documented in sources/http.py).

The Yahoo answer is the recorded QQQ chart body (tests/fixtures/api/yahoo/, provenance in NOTICE).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from capspread.config import Config, Symbol
from sources.errors import SourceUnavailable
from sources.http import SourceNotConfigured
from sources.live import NAMES, live_sources
from sources.schemas import DATASETS

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "yahoo"
SERVED = {"yahoo": ("prices",), "stooq": ("prices",), "fred": ("cpi", "rates"), "bls": ("cpi",),
          "finra": ("short_interest",), "ishares": ("holdings",), "french": ("factors",), "spdji": ("estimates",),
          "consensus": ("company_estimates",)}


@pytest.fixture
def server(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPSPREAD_STATE_DIR", str(tmp_path / "state"))
    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    for name in NAMES:
        monkeypatch.setenv(f"CAPSPREAD_{name.upper()}_BASE_URL", srv.url_for(f"/{name}").rstrip("/"))
        monkeypatch.setenv(f"CAPSPREAD_{name.upper()}_MIN_INTERVAL", "0")
    monkeypatch.setenv("CAPSPREAD_HTTP_ATTEMPTS", "2")
    monkeypatch.setenv("CAPSPREAD_HTTP_BACKOFF", "0.001")
    for key in ("FRED_API_KEY", "STOOQ_API_KEY", "BLS_API_KEY", "CAPSPREAD_LIVE_SOURCES", "CAPSPREAD_LIVE_START"):
        monkeypatch.delenv(key, raising=False)
    yield srv
    srv.clear()
    srv.stop()


def tiny_config(*symbols: str) -> Config:
    base = Config.load()
    return Config(universe=tuple(Symbol(s, s, "etf", "large") for s in symbols), pairs=(), bucket_funds={},
                  inflation_regime={}, publication_lag=dict(base.publication_lag), validation={})


def test_every_live_source_from_the_configuration(server):
    config = Config.load()
    sources = live_sources(config)
    assert [s.name for s in sources] == ["yahoo", "stooq", "fred", "bls", "finra",
                                         "ishares", "french", "spdji", "consensus"]
    yahoo = sources[0]
    assert yahoo.symbols == [s.symbol for s in config.universe]
    assert {"^RUT", "^GSPC", "^IXIC", "^DJI", "IWM", "SPY"} <= set(yahoo.symbols)
    for s in sources:
        assert s.client.base_url == server.url_for(f"/{s.name}").rstrip("/")
        assert s.client.min_interval == 0 and s.client.retry.attempts == 2
        for dataset in DATASETS:
            if dataset not in SERVED[s.name]:
                assert s.fetch(dataset, date(2025, 6, 11), None) == []
    assert server.log == []  # nothing asked for datasets a source does not serve


def test_selection_and_start_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("CAPSPREAD_LIVE_SOURCES", "fred, yahoo")
    monkeypatch.setenv("CAPSPREAD_LIVE_START", "2020-01-01")
    sources = live_sources(Config.load())
    assert [s.name for s in sources] == ["yahoo", "fred"] and all(s.start == date(2020, 1, 1) for s in sources)
    monkeypatch.setenv("CAPSPREAD_LIVE_SOURCES", "yahoo,bloomberg")
    with pytest.raises(ValueError, match="bloomberg"):
        live_sources(Config.load())


def test_a_failing_source_leaves_the_others_alone(server, monkeypatch):
    monkeypatch.setenv("CAPSPREAD_LIVE_SOURCES", "yahoo,stooq,fred,bls,finra")
    monkeypatch.setenv("FRED_API_KEY", "fred-wiring-key-1")
    body = json.dumps(json.loads((FIX / "chart-QQQ-2020-01-01-to-2020-01-03.json").read_text())["response"]["bodyJson"])
    server.expect_request("/yahoo/v8/finance/chart/QQQ").respond_with_data(body, content_type="application/json")
    server.expect_request("/fred/fred/series/vintagedates").respond_with_data("maintenance", status=503)
    server.expect_request("/fred/fred/series/observations").respond_with_data("maintenance", status=503)
    server.expect_request("/bls/publicAPI/v2/timeseries/data/").respond_with_json(
        {"status": "REQUEST_SUCCEEDED", "message": [], "Results": {"series": []}})
    server.expect_request("/finra/data/group/otcMarket/name/consolidatedShortInterest").respond_with_json([])
    batches, failures = [], {}
    for source in live_sources(tiny_config("QQQ")):  # what a caller does with each source and dataset
        for dataset in DATASETS:
            try:
                batches += source.fetch(dataset, date(2020, 1, 3), None)
            except SourceUnavailable as exc:
                failures[(source.name, dataset)] = exc
    assert set(failures) == {("stooq", "prices"), ("fred", "cpi"), ("fred", "rates")}
    assert isinstance(failures[("stooq", "prices")], SourceNotConfigured)
    assert "fred" in str(failures[("fred", "cpi")]) and "503" in str(failures[("fred", "cpi")])
    assert "fred-wiring-key-1" not in str(failures[("fred", "cpi")])
    (b,) = batches
    assert (b.source, b.dataset, b.error) == ("yahoo", "prices", None) and b.frame["symbol"].to_list() == ["QQQ"]
