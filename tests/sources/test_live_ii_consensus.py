"""The consensus source (Yahoo quoteSummary earningsTrend) against a loopback stand-in for Yahoo.

The served body is the recorded AAPL answer (tests/fixtures/api2/yahoo/, provenance in NOTICE),
re-serialised from ``response.bodyJson`` as the other Yahoo tests do. Only one company was ever
recorded and the body does not name its company, so the rotation tests serve that same body for
every ticker; the server log shows which ticker was asked when. The cookie page, the crumb endpoint
and Yahoo's error bodies (``Invalid Crumb``, ``Not Found``) are written here in Yahoo's shape and
carry no data. Expected values are read from the recording with ``json`` here, never through the
code under test.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date
from pathlib import Path

import pytest
from conftest import serving
from pytest_httpserver import HTTPServer
from werkzeug import Response

from sources.consensus import ConsensusSource, symbol_map_from_env
from sources.consensus.state import PARTIAL
from sources.errors import BadInput, SourceUnavailable
from sources.formats import yahoo_earnings_trend as fmt
from sources.http import RetryPolicy

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api2" / "yahoo" / "quoteSummary-earningsTrend-AAPL.json"
RECORDED = json.loads(FIX.read_text())
BODY = json.dumps(RECORDED["response"]["bodyJson"]).encode()
TREND = {t["period"]: t
         for t in RECORDED["response"]["bodyJson"]["quoteSummary"]["result"][0]["earningsTrend"]["trend"]}
DAY = date(2021, 4, 7)  # the day the answer was recorded (its Date header)
SUMMARY = re.compile(r"^/v10/finance/quoteSummary/(.+)$")


class FakeYahoo:
    """Yahoo's gate: the cookie page sets ``A3`` (with a 404), ``getcrumb`` answers a crumb only to
    a client holding the cookie, ``quoteSummary`` answers only to the matching cookie and crumb."""

    def __init__(self, server: HTTPServer, body: bytes = BODY) -> None:
        self.body = body
        self.sessions = 0
        self.cookie: str | None = None
        self.crumb: str | None = None
        self.asked: list[str] = []
        self.unknown: set[str] = set()
        self.answers: dict[str, Response] = {}  # ticker → a fixed answer (HTML, 503, …)
        self.expire_after: int | None = None  # the crumb stops working after this many answers
        self.refuse_new_sessions = False
        server.expect_request("/cookie").respond_with_handler(self.cookie_page)
        server.expect_request("/v1/test/getcrumb").respond_with_handler(self.getcrumb)
        server.expect_request(SUMMARY).respond_with_handler(self.summary)

    def cookie_page(self, request):
        self.sessions += 1
        self.cookie = f"d=AQABBSession{self.sessions}"
        return Response("<html><body>404 Not Found</body></html>", status=404, content_type="text/html",
                        headers={"Set-Cookie": f"A3={self.cookie}; Path=/; HttpOnly"})

    def getcrumb(self, request):
        if not self.cookie or request.cookies.get("A3") != self.cookie:
            return Response(json.dumps({"finance": {"result": None, "error": {
                "code": "Unauthorized", "description": "Invalid Cookie"}}}),
                status=401, content_type="application/json")
        self.crumb = f"Crumb{self.sessions}x7Q"
        return Response(self.crumb, content_type="text/plain")

    def _unauthorized(self):
        return Response(json.dumps({"finance": {"result": None, "error": {
            "code": "Unauthorized", "description": "Invalid Crumb"}}}), status=401, content_type="application/json")

    def summary(self, request):
        symbol = SUMMARY.match(request.path).group(1)
        ok = (self.crumb and request.args.get("crumb") == self.crumb and request.cookies.get("A3") == self.cookie
              and not (self.refuse_new_sessions and self.sessions > 1))
        if not ok:
            return self._unauthorized()
        if self.expire_after is not None and len(self.asked) >= self.expire_after:
            self.crumb, self.expire_after = None, None  # expired: the next request is refused
            return self._unauthorized()
        if symbol in self.answers:
            return self.answers[symbol]
        if symbol in self.unknown:
            return Response(json.dumps({"quoteSummary": {"result": None, "error": {
                "code": "Not Found", "description": f"Quote not found for symbol: {symbol}"}}}),
                status=404, content_type="application/json")
        self.asked.append(symbol)
        return Response(self.body, content_type="application/json")


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, ["consensus"], env={
        "CAPSPREAD_CONSENSUS_COOKIE_URL": http_server.url_for("/cookie")}, unset=["CAPSPREAD_CONSENSUS_SYMBOL_MAP"])


@pytest.fixture
def yahoo(server):
    return FakeYahoo(server)


def source(universe, **kw) -> ConsensusSource:
    kw.setdefault("retry", RetryPolicy(attempts=2, backoff=0.001, max_backoff=0.002, max_retry_after=5))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("sleep", lambda s: None)
    kw.setdefault("today", lambda: DAY)
    return ConsensusSource(universe, **kw)


def paths(server: HTTPServer) -> list[str]:
    return [req.path for req, _ in server.log]


def members(payload: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


# ----------------------------------------------------------------------------------------------
# the handshake and the recorded values


def test_handshake_then_the_recorded_estimates(server, yahoo):
    (b,) = source(["AAPL"]).fetch("company_estimates", DAY, None)
    assert (b.source, b.dataset, b.format, b.error, b.cursor) == ("consensus", "company_estimates",
                                                                  "yahoo_earnings_trend_zip", None, DAY)
    assert b.name == "yahoo_earningsTrend_2021-04-07.zip"
    # the handshake: cookie page, crumb with the cookie, then the module with cookie and crumb
    assert paths(server) == ["/cookie", "/v1/test/getcrumb", "/v10/finance/quoteSummary/AAPL"]
    crumb_req, summary_req = server.log[1][0], server.log[2][0]
    assert crumb_req.cookies.get("A3") == "d=AQABBSession1"
    assert summary_req.cookies.get("A3") == "d=AQABBSession1"
    assert summary_req.args["crumb"] == "Crumb1x7Q" and summary_req.args["modules"] == "earningsTrend"
    # the landed zip holds the body byte for byte, named after the ticker and the day
    assert members(b.payload) == {"AAPL_2021-04-07.json": BODY}
    # the numbers, as recorded
    rows = {r["period"]: r for r in b.frame.iter_rows(named=True)}
    assert sorted(rows) == ["+1q", "+1y", "0q", "0y"]  # +5y/-5y carry no EPS
    for period, row in rows.items():
        t = TREND[period]
        assert row["symbol"] == "AAPL" and row["as_of_date"] == DAY
        assert row["period_end"] == date.fromisoformat(t["endDate"])
        assert row["eps_avg"] == t["earningsEstimate"]["avg"]["raw"]
        assert row["eps_low"] == t["earningsEstimate"]["low"]["raw"]
        assert row["eps_high"] == t["earningsEstimate"]["high"]["raw"]
        assert row["eps_year_ago"] == t["earningsEstimate"]["yearAgoEps"]["raw"]
        assert row["analysts"] == t["earningsEstimate"]["numberOfAnalysts"]["raw"]
        assert row["eps_growth"] == t["earningsEstimate"]["growth"]["raw"]
        for h in (7, 30, 60, 90):
            assert row[f"eps_{h}d_ago"] == t["epsTrend"][f"{h}daysAgo"]["raw"]
        assert row["up_30d"] == t["epsRevisions"]["upLast30days"]["raw"]
        assert row["down_30d"] == t["epsRevisions"]["downLast30days"]["raw"]
        assert row["down_7d"] is None  # not in this recording
    assert (rows["0y"]["eps_avg"], rows["0y"]["eps_7d_ago"], rows["+1y"]["eps_avg"], rows["+1y"]["eps_90d_ago"]) == (
        4.46, 4.45, 4.7, 4.36)
    # replay parses the landed payload to the same frame; the crumb is in no note
    assert fmt.parse_zip(b.payload, b.name).equals(b.frame)
    assert not any("Crumb1x7Q" in n for n in b.notes)


def test_expired_crumb_shakes_hands_again_once(server, yahoo):
    yahoo.expire_after = 1  # the crumb expires after the first company
    batches = source(["AAPL", "MSFT", "NVDA"]).fetch("company_estimates", DAY, None)
    (b,) = batches
    assert yahoo.asked == ["AAPL", "MSFT", "NVDA"] and yahoo.sessions == 2
    assert paths(server) == ["/cookie", "/v1/test/getcrumb", "/v10/finance/quoteSummary/AAPL",
                             "/v10/finance/quoteSummary/MSFT", "/cookie", "/v1/test/getcrumb",
                             "/v10/finance/quoteSummary/MSFT", "/v10/finance/quoteSummary/NVDA"]
    assert [r.args["crumb"] for r, _ in server.log if r.path.startswith("/v10")] == [
        "Crumb1x7Q", "Crumb1x7Q", "Crumb2x7Q", "Crumb2x7Q"]
    assert sorted(members(b.payload)) == ["AAPL_2021-04-07.json", "MSFT_2021-04-07.json", "NVDA_2021-04-07.json"]
    assert b.cursor == DAY and not any(n.startswith(PARTIAL) for n in b.notes)


def test_a_second_refusal_stops_the_fetch_and_keeps_what_came(server, yahoo, tmp_path):
    yahoo.expire_after = 1
    yahoo.refuse_new_sessions = True  # the new session is refused as well
    src = source(["AAPL", "MSFT", "NVDA"], state_dir=tmp_path)
    (b,) = src.fetch("company_estimates", DAY, None)
    assert yahoo.asked == ["AAPL"] and yahoo.sessions == 2  # one new handshake only
    assert sorted(members(b.payload)) == ["AAPL_2021-04-07.json"]
    assert b.cursor is None
    (partial,) = [n for n in b.notes if n.startswith(PARTIAL)]
    assert "after 1 of 3 companies" in partial and "Invalid Crumb" in partial
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["last_asked"] == {"AAPL": "2021-04-07"}  # MSFT and NVDA wait for the next run
    # nothing answered at all: the source is unavailable, as any source
    server.clear()
    yahoo = FakeYahoo(server)
    yahoo.expire_after, yahoo.refuse_new_sessions = 0, True
    with pytest.raises(SourceUnavailable, match="Invalid Crumb"):
        source(["MSFT"]).fetch("company_estimates", DAY, None)


def test_no_crumb_without_the_cookie_is_unavailable(server):
    server.expect_request("/cookie").respond_with_data("", status=404)  # a cookie page that sets nothing
    server.expect_request("/v1/test/getcrumb").respond_with_json(
        {"finance": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Cookie"}}}, status=401)
    with pytest.raises(SourceUnavailable, match="refused a crumb .*401.*Invalid Cookie"):
        source(["AAPL"]).fetch("company_estimates", DAY, None)
    assert not [p for p in paths(server) if p.startswith("/v10")]


# ----------------------------------------------------------------------------------------------
# budget, rotation, cache and resume


UNIVERSE = ["NVDA", "BE", "AAPL", "CRDO", "MSFT"]


def test_budget_rotation_and_state_across_runs(server, yahoo, tmp_path):
    def run(day: date):
        yahoo.asked.clear()
        src = source(UNIVERSE, daily_budget=2, state_dir=tmp_path, today=lambda: day)  # a new process each run
        return src.fetch("company_estimates", day, None)

    days = [date(2021, 4, 7), date(2021, 4, 8), date(2021, 4, 9), date(2021, 4, 12)]
    (b,) = run(days[0])
    assert yahoo.asked == ["NVDA", "BE"]
    assert "2 of the daily budget of 2 spent on 2021-04-07; 3 companies wait for later days" in b.notes[0]
    # a second run the same day: the budget is spent, today's bodies come from the cache
    sessions = yahoo.sessions
    (again,) = run(days[0])
    assert yahoo.asked == [] and yahoo.sessions == sessions  # not even a handshake
    assert again.payload == b.payload and "0 asked now, 2 from today's cache" in again.notes[0]
    (b2,) = run(days[1])
    assert yahoo.asked == ["AAPL", "CRDO"]
    assert sorted(members(b2.payload)) == ["AAPL_2021-04-08.json", "CRDO_2021-04-08.json"]
    (b3,) = run(days[2])
    assert yahoo.asked == ["MSFT", "NVDA"]  # the turn is complete: the longest ago comes next
    (b4,) = run(days[3])
    assert yahoo.asked == ["BE", "AAPL"]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["last_asked"] == {"NVDA": "2021-04-09", "BE": "2021-04-12", "AAPL": "2021-04-12",
                                   "CRDO": "2021-04-08", "MSFT": "2021-04-09"}
    assert state["spent"] == {"2021-04-12": 2}
    assert b4.frame["as_of_date"].unique().to_list() == [date(2021, 4, 12)]


def test_a_run_cut_short_resumes_from_the_cache(server, yahoo, tmp_path):
    yahoo.answers["AAPL"] = Response("maintenance", status=503)
    (b,) = source(UNIVERSE, daily_budget=4, state_dir=tmp_path).fetch("company_estimates", DAY, None)
    assert yahoo.asked == ["NVDA", "BE"] and b.cursor is None
    assert any(n.startswith(PARTIAL) and "after 2 of 4 companies" in n and "503" in n for n in b.notes)
    assert sorted(p.name for p in (tmp_path / "cache" / "2021-04-07").iterdir()) == [
        "BE_2021-04-07.json", "NVDA_2021-04-07.json"]
    # the same evening, Yahoo is back: only what is missing is asked, the landed zip holds all
    del yahoo.answers["AAPL"]
    yahoo.asked.clear()
    (again,) = source(UNIVERSE, daily_budget=4, state_dir=tmp_path).fetch("company_estimates", DAY, None)
    assert yahoo.asked == ["AAPL", "CRDO"]
    assert sorted(members(again.payload)) == [f"{s}_2021-04-07.json" for s in ("AAPL", "BE", "CRDO", "NVDA")]
    assert again.cursor == DAY


def test_rotation_order_and_budget_setting(monkeypatch):
    last = {"A": "2021-04-01", "C": "2021-03-01"}
    assert ConsensusSource.rotation(["A", "B", "C", "D"], last) == ["B", "D", "C", "A"]
    monkeypatch.setenv("CAPSPREAD_CONSENSUS_DAILY_BUDGET", "250")
    assert ConsensusSource(["A"]).daily_budget == 250
    monkeypatch.delenv("CAPSPREAD_CONSENSUS_DAILY_BUDGET")
    assert ConsensusSource(["A"]).daily_budget == 400


def test_old_cache_days_are_pruned(server, yahoo, tmp_path):
    old = tmp_path / "cache" / "2021-03-01"
    old.mkdir(parents=True)
    (old / "AAPL_2021-03-01.json").write_bytes(BODY)
    source(["AAPL"], state_dir=tmp_path).fetch("company_estimates", DAY, None)
    assert not old.exists() and (tmp_path / "cache" / "2021-04-07" / "AAPL_2021-04-07.json").read_bytes() == BODY


def test_a_past_date_asks_for_nothing(server, yahoo):
    assert source(["AAPL"], today=lambda: date(2021, 4, 9)).fetch("company_estimates", DAY, None) == []
    assert source(["AAPL"]).fetch("estimates", DAY, None) == []
    assert server.log == []


# ----------------------------------------------------------------------------------------------
# companies Yahoo does not know, bad answers, symbols


def test_unknown_company_is_noted_not_quarantined_and_bad_body_is(server, yahoo):
    yahoo.unknown.add("ZZZQ")
    yahoo.answers["CRDO"] = Response("<!DOCTYPE html><html><body>Oops</body></html>", content_type="text/html")
    batches = source(["AAPL", "ZZZQ", "CRDO"]).fetch("company_estimates", DAY, None)
    good, bad = batches
    assert good.error is None and sorted(members(good.payload)) == ["AAPL_2021-04-07.json"]
    assert "1 companies unknown to Yahoo (not covered): ZZZQ" in good.notes
    assert bad.error is not None and bad.frame is None and bad.name == "CRDO_2021-04-07.json"
    assert "HTML page" in bad.error.reason()
    assert good.cursor is None and bad.cursor is None


def test_share_classes_are_asked_in_yahoos_spelling(server, yahoo, monkeypatch):
    monkeypatch.setenv("CAPSPREAD_CONSENSUS_SYMBOL_MAP", "HOLXQ=HOLX")
    (b,) = source(["BRKB", "BF.B", "HOLXQ"], symbol_map=None).fetch("company_estimates", DAY, None)
    assert yahoo.asked == ["BRK-B", "BF-B", "HOLX"]
    assert sorted(b.frame["symbol"].unique().to_list()) == ["BF.B", "BRKB", "HOLXQ"]  # the funds' tickers
    with pytest.raises(ValueError, match="OLD=NEW"):
        symbol_map_from_env("BRKB")


# ----------------------------------------------------------------------------------------------
# the format on its own


def test_format_reads_plain_numbers_and_refuses_other_shapes():
    obj = json.loads(BODY)
    plain = json.loads(json.dumps(obj), object_hook=lambda d: d["raw"] if set(d) >= {"raw", "fmt"} else d)
    assert fmt.parse_json(json.dumps(plain).encode(), "AAPL_2021-04-07.json").equals(
        fmt.parse_json(BODY, "AAPL_2021-04-07.json"))
    assert fmt.sniff_json(obj) == "yahoo_earnings_trend"
    with pytest.raises(BadInput, match="does not say which company"):
        fmt.parse_json(BODY, "AAPL.json")
    err = json.dumps({"quoteSummary": {"result": None,
                                       "error": {"code": "Not Found", "description": "No fundamentals data"}}})
    with pytest.raises(BadInput, match="Not Found: No fundamentals data"):
        fmt.parse_json(err.encode(), "AAPL_2021-04-07.json")
    renamed = BODY.replace(b'"earningsEstimate"', b'"earningsEstimates"')
    with pytest.raises(BadInput, match=r"trend\[0\] \(0q\)\.earningsEstimate"):
        fmt.parse_json(renamed, "AAPL_2021-04-07.json")
    text = BODY.replace(b'"avg": {"raw": 4.46', b'"avg": {"raw": "4.46"')
    with pytest.raises(BadInput, match=r"earningsEstimate\.avg.*'4.46'"):
        fmt.parse_json(text, "AAPL_2021-04-07.json")
    no_trend = {"quoteSummary": {"result": [{"earningsTrend": {"trend": [], "maxAge": 1}}], "error": None}}
    assert fmt.parse_json(json.dumps(no_trend).encode(), "NEWCO_2021-04-07.json").is_empty()  # no analysts: no rows
    assert fmt.name_parts("BRK%20B_2021-04-07.json") == ("BRK B", DAY)
    zipped = fmt.bundle({"AAPL_2021-04-07.json": BODY}, DAY)
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        assert fmt.sniff_zip(zf) == "yahoo_earnings_trend_zip"
    assert zipped == fmt.bundle({"AAPL_2021-04-07.json": BODY}, DAY)  # deterministic: same bodies, same hash


def test_generic_vendor_csv_carries_the_same_estimates():
    """The documented vendor-export CSV, written here from the recorded AAPL values (no vendor export
    was recorded), parses to exactly what the Yahoo body gives."""
    from sources.formats.generic_company_estimates_csv import parse_generic_company_estimates_csv, sniff

    names = {"0y": "FY1", "+1y": "FY2", "0q": "FQ1", "+1q": "FQ2"}
    metrics = {("earningsEstimate", "avg"): "eps_mean", ("earningsEstimate", "low"): "eps_low",
               ("earningsEstimate", "high"): "eps_high", ("earningsEstimate", "yearAgoEps"): "eps_year_ago",
               ("earningsEstimate", "numberOfAnalysts"): "analysts", ("earningsEstimate", "growth"): "eps_growth",
               ("epsTrend", "7daysAgo"): "eps_mean_7d_ago", ("epsTrend", "30daysAgo"): "eps_mean_30d_ago",
               ("epsTrend", "60daysAgo"): "eps_mean_60d_ago", ("epsTrend", "90daysAgo"): "eps_mean_90d_ago",
               ("epsRevisions", "upLast7days"): "up_7d", ("epsRevisions", "upLast30days"): "up_30d",
               ("epsRevisions", "downLast30days"): "down_30d"}
    lines = ["ticker,as_of_date,fiscal_period,period_end,metric,value"]
    for period, t in TREND.items():
        if period not in names:
            continue
        for (block, key), metric in metrics.items():
            value = t[block].get(key, {}).get("raw")
            if value is not None:
                lines.append(f"AAPL,4/7/2021,{names[period]},{t['endDate']},{metric},{value}")
    data = ("\n".join(lines) + "\n").encode()
    assert sniff(lines) == "generic_company_estimates_csv"
    assert parse_generic_company_estimates_csv(data, "vendor.csv").equals(fmt.parse_json(BODY, "AAPL_2021-04-07.json"))
    conflict = data + b"AAPL,2021-04-07,FY2,2022-09-30,eps_mean,4.80\n"
    with pytest.raises(BadInput, match=f"row {len(lines) + 1}.*two different values for one metric"):
        parse_generic_company_estimates_csv(conflict, "vendor.csv")
    with pytest.raises(BadInput, match="bad fiscal_period.*FY3"):
        parse_generic_company_estimates_csv(data.replace(b",FY2,", b",FY3,", 1), "vendor.csv")
