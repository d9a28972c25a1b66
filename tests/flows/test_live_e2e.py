"""``capspread run --profile live`` end to end: the installed command, all nine live sources, one
loopback server (``live_server.LiveServer``: recorded real-format answers, which recording answers
which request is listed there), a brand-new home, two runs.

* run 1, as of the XNYS session before run 2's: every source answers; a first, full-history run;
* run 2, as of the latest XNYS session on or before today: incremental; FRED is down (HTTP 503
  after the retries), the other eight answer.

Expected values are computed here from the fixture files with json/csv, never through the code
under test. Yahoo's consensus estimates can only be observed for a day no more than one day before
today (``sources.consensus``), so whether a run asks for them depends on the day the test runs;
``observable`` says which runs must ask and the assertions follow it both ways.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from conftest import CAPSPREAD, REPO
from fixture_readers import french_values as read_french
from live_server import (
    BLS_NSA,
    CRUMB,
    EARNINGS_TREND,
    FINRA_PIPE,
    FRED_A,
    FRED_B,
    FRED_CORE,
    FRENCH_DAILY,
    FRENCH_MONTHLY,
    ISHARES,
    YAHOO_AAPL,
    YAHOO_QQQ,
    LiveServer,
    monthly_csv,
    recorded_body,
    sha256,
    stooq_rows,
)

from transforms.calendar import is_session

TODAY = datetime.now(timezone.utc).date()
NY = ZoneInfo("America/New_York")
KEYS = {"FRED_API_KEY": "fred-e2e-key-4c1f", "STOOQ_API_KEY": "stooq-e2e-key-9a07", "BLS_API_KEY": "bls-e2e-key-2d5e"}
CONTRACT_MARTS = ("market_scoreboard", "index_weekly", "size_spread_daily", "size_spread_monthly",
                  "short_interest_by_bucket", "inflation_monthly", "earnings_outlook", "factor_monthly")
UNIVERSE = ("^RUT", "^GSPC", "^IXIC", "^DJI", "IWM", "SPY", "QQQ", "DIA", "IJR", "MDY")
DATA_PATHS = {"yahoo": "/v8/finance/chart/", "stooq": "/q/d/l/", "fred": "/fred/series/observations",
              "bls": "/publicAPI/", "finra": "/data/group/", "ishares": "/us/products/", "french": "/pages/",
              "spdji": "/spdji/"}


def _session_before(day: date) -> date:
    day -= timedelta(days=1)
    while not is_session(day):
        day -= timedelta(days=1)
    return day


AS_OF_2 = TODAY if is_session(TODAY) else _session_before(TODAY)
AS_OF_1 = _session_before(AS_OF_2)
AS_OF = {1: AS_OF_1, 2: AS_OF_2}


def observable(run: int) -> bool:
    """Whether run ``run`` may ask for consensus estimates (its as-of date is at most a day old)."""
    return AS_OF[run] >= TODAY - timedelta(days=1)


def cli(home: Path, prefect_home: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "CAPSPREAD_HOME": str(home), "PREFECT_HOME": str(prefect_home), "COLUMNS": "200"}
    for name in ("CAPSPREAD_LIVE_SOURCES", "CAPSPREAD_LIVE_START", "CAPSPREAD_STATE_DIR", "CAPSPREAD_CONSENSUS_FUNDS",
                 "CAPSPREAD_CONSENSUS_SYMBOLS"):
        full.pop(name, None)
    return subprocess.run([CAPSPREAD, *args], env=full, capture_output=True, text=True, timeout=900, cwd=REPO)


@pytest.fixture(scope="module")
def live(tmp_path_factory, http_server):
    """(home, server, {run: completed process}) after the two runs of the module docstring."""
    home = tmp_path_factory.mktemp("live-home")
    prefect_home = tmp_path_factory.mktemp("live-prefect")
    server = LiveServer(http_server)
    env = {**server.environment(), **KEYS}
    procs = {}
    server.run = 1
    procs[1] = cli(home, prefect_home, env, "run", "--profile", "live", "--as-of", AS_OF_1.isoformat())
    server.run, server.fail = 2, {"fred": 503}
    procs[2] = cli(home, prefect_home, env, "run", "--profile", "live", "--as-of", AS_OF_2.isoformat())
    return home, server, procs


def _query(home: Path, sql: str, db: str = "published/capspread.duckdb") -> list[tuple]:
    con = duckdb.connect(str(home / db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# ----------------------------------------------------------------------------------------------
# expectations from the fixture files


def chart_rows(path: Path) -> dict[date, float]:
    result = recorded_body(path)["chart"]["result"][0]
    closes = result["indicators"]["quote"][0]["close"]
    return {datetime.fromtimestamp(t, NY).date(): c for t, c in zip(result["timestamp"], closes) if c is not None}


def expected_prices() -> dict[tuple[str, str], dict[date, float]]:
    out = {(s, "yahoo"): chart_rows(YAHOO_QQQ if s == "QQQ" else YAHOO_AAPL) for s in UNIVERSE}
    out[("SPY", "stooq")] = {date(int(r[2][:4]), int(r[2][4:6]), int(r[2][6:])): float(r[7]) for r in stooq_rows()}
    return out


def french_values(path: Path) -> dict[str, dict[str, float]]:
    return read_french(path.read_text())


def holdings_tickers(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Ticker,"))
    tickers = set()
    for r in csv.reader(lines[start + 1:]):
        if len(r) < 5:
            break
        if r[0] not in ("", "-"):
            tickers.add(r[0])
    return tickers


# ----------------------------------------------------------------------------------------------
# run 1: a first run with every source


def test_first_live_run_exits_zero_and_says_so(live):
    home, server, procs = live
    proc = procs[1]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"as of {AS_OF_1}" in proc.stdout and "profile live" in proc.stdout and "success" in proc.stdout
    asked = {e.source for e in server.exchanges(run=1)}
    assert {"yahoo", "stooq", "fred", "bls", "finra", "ishares", "french", "spdji"} <= asked
    assert all(e.status in (200, 404) for e in server.exchanges(run=1))  # 404: only the cookie page
    assert {e.source for e in server.exchanges(run=1) if e.status == 404} <= {"cookie"}


def test_core_prices_are_the_recorded_bars(live):
    home, _, _ = live
    got: dict[tuple[str, str], dict[date, float]] = {}
    for symbol, source, day, close in _query(home, "select symbol, source, trade_date, close from core.prices_daily"):
        got.setdefault((symbol, source), {})[day] = close
    expected = expected_prices()
    assert set(got) == set(expected)
    for key, rows in expected.items():
        assert set(got[key]) == set(rows), key
        assert all(got[key][d] == pytest.approx(c, rel=1e-9) for d, c in rows.items()), key


def test_core_cpi_holds_every_vintage_and_the_bls_series(live):
    home, _, _ = live
    rows = _query(home, "select series_id, ref_month, value, vintage from core.cpi_observations")
    by_series: dict[str, list[tuple]] = {}
    for sid, month, value, vintage in rows:
        by_series.setdefault(sid, []).append((month, value, vintage))

    a, b = monthly_csv(FRED_A), monthly_csv(FRED_B)
    want_pairs = {(d, float(v)) for d, v in a.items()} | {(d, float(v)) for d, v in b.items() if v != "."}
    headline = by_series["CPIAUCSL"]
    assert {(m, v) for m, v, _ in headline if v is not None} == want_pairs
    # one row per month of the 2025-01-26 vintage, plus one per month the 2026 download added or revised
    assert len(headline) == len(a) + sum(1 for d, v in b.items() if d not in a or a[d] != v)
    assert {vin for _, _, vin in headline} == {date(2025, 1, 26), date(2026, 1, 2)}

    core = monthly_csv(FRED_CORE)
    assert {(m, v) for m, v, _ in by_series["CPILFESL"] if v is not None} == {
        (d, float(v)) for d, v in core.items() if v != "."}
    nsa = {date.fromisoformat(r[0]): r[1] for r in list(csv.reader(BLS_NSA.read_text().splitlines()))[1:]}
    bls = {"CUUR0000SA0": nsa, "CUSR0000SA0": b, "CUSR0000SA0L1E": core}
    for sid, values in bls.items():
        assert {(m, v) for m, v, _ in by_series[sid] if v is not None} == {
            (d, float(v)) for d, v in values.items() if v not in ("", ".")}, sid
        assert all(vin is None for _, _, vin in by_series[sid])  # BLS publishes no vintages
    assert "CUUR0000SA0L1E" not in by_series  # answered without data


def test_core_short_interest_holdings_factors_and_estimates(live):
    home, _, _ = live
    pipe = list(csv.reader(FINRA_PIPE.read_text().splitlines(), delimiter="|"))
    records = [dict(zip(pipe[0], r)) for r in pipe[1:]]
    want = {(r["symbolCode"], date.fromisoformat(r["settlementDate"]), int(r["currentShortPositionQuantity"]),
             None if float(r["daysToCoverQuantity"]) == 999.99 else float(r["daysToCoverQuantity"])) for r in records}
    got = set(_query(home, "select symbol, settlement_date, short_interest, days_to_cover from core.short_interest"))
    assert got == want and len(records) == 71

    for fund, path in ISHARES.items():
        tickers = {t for (t,) in _query(home, f"select symbol from core.holdings where fund = '{fund}'")}
        assert tickers == holdings_tickers(path), fund

    monthly, daily = french_values(FRENCH_MONTHLY), french_values(FRENCH_DAILY)
    counts = dict(((f, n) for f, n in _query(home, "select frequency, count(*) from core.factors group by 1")))
    assert counts == {"monthly": sum(map(len, monthly.values())), "daily": sum(map(len, daily.values()))}
    (smb,) = _query(home, "select value from core.factors where frequency = 'monthly' and factor = 'SMB' "
                          "and period_start = date '2024-08-01'")
    assert smb[0] == pytest.approx(monthly["202408"]["SMB"] / 100)

    indexes = {i for (i,) in _query(home, "select distinct index_code from core.index_estimates")}
    assert {"SP500", "SP400", "SP600"} <= indexes


def test_the_contract_marts_are_filled(live):
    home, _, _ = live
    counts = {m: _query(home, f"select count(*) from marts.{m}")[0][0] for m in (*CONTRACT_MARTS, "etf_short_interest")}
    assert all(counts[m] > 0 for m in CONTRACT_MARTS), counts
    pipe = list(csv.reader(FINRA_PIPE.read_text().splitlines(), delimiter="|"))
    etfs_in_file = {r[pipe[0].index("symbolCode")] for r in pipe[1:]} & set(UNIVERSE)
    assert (counts["etf_short_interest"] > 0) == bool(etfs_in_file)  # the FINRA excerpt holds no universe ETF
    # the scoreboard runs to the newest bar served (Stooq's SPY), not past it
    (latest,) = _query(home, "select max(as_of_date) from marts.market_scoreboard")
    assert latest[0] == max(max(rows) for rows in expected_prices().values())


def test_consensus_estimates_follow_the_rotation(live):
    home, server, _ = live
    trend = recorded_body(EARNINGS_TREND)["quoteSummary"]["result"][0]["earningsTrend"]["trend"]
    with_eps = [t["period"] for t in trend if (t.get("earningsEstimate") or {}).get("avg") not in (None, {})]
    asked_all = set()
    for run in (1, 2):
        asked = [e.path.rsplit("/", 1)[-1] for e in server.exchanges("consensus", run, "/quoteSummary/")]
        assert len(asked) == (4 if observable(run) else 0), (run, asked)  # CAPSPREAD_CONSENSUS_DAILY_BUDGET=4
        assert all(e.args.get("crumb") == CRUMB for e in server.exchanges("consensus", run, "/quoteSummary/"))
        assert not asked_all & set(asked)  # the rotation asks for other companies the next day
        asked_all |= set(asked)
    rows = _query(home, "select symbol, count(*) from core.company_estimates group by 1")
    assert dict(rows) == {s: len(with_eps) for s in asked_all}
    assert (_query(home, "select count(*) from marts.consensus_outlook")[0][0] > 0) == bool(asked_all)


def test_landing_holds_one_file_per_payload(live):
    home, server, _ = live
    files = [p for p in (home / "landing").rglob("*") if p.is_file() and "_runs" not in p.parts]
    shas = {}
    for p in files:
        data = p.read_bytes()
        assert p.stem == sha256(data), p  # named by content
        shas[p.stem] = (p.relative_to(home / "landing").parts[0], data)
    assert len(shas) == len(files)

    def has_data(e) -> bool:
        if e.status != 200 or DATA_PATHS.get(e.source, "\0") not in e.path:
            return False
        if e.source == "stooq":
            return e.answer.strip() != b"No data"
        if e.source in ("fred", "finra", "bls"):
            body = json.loads(e.answer)
            if e.source == "fred":
                return bool(body["observations"])
            if e.source == "finra":
                return bool(body)
            return any(s["data"] for s in body["Results"]["series"])
        return True

    served = {sha256(e.answer): e.source for e in server.exchanges() if has_data(e)}
    consensus = {k: v for k, (src, v) in shas.items() if src == "consensus"}
    assert {k: src for k, (src, _) in shas.items() if src != "consensus"} == served
    bodies = {e.answer for e in server.exchanges("consensus", path="/quoteSummary/")}
    for data in consensus.values():  # the day's bodies, byte for byte, one zip per run
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert zf.namelist() and all(zf.read(n) in bodies for n in zf.namelist())
    assert len(consensus) == sum(observable(r) for r in (1, 2))
    registered = _query(home, "select sha256, source from meta.landing_files")
    assert {s: src for s, src in registered} == {k: src for k, (src, _) in shas.items()}


# ----------------------------------------------------------------------------------------------
# run 2: incremental, one source down


def test_second_run_asks_only_for_the_new_window(live):
    home, server, procs = live
    assert procs[2].returncode == 0, procs[2].stdout + procs[2].stderr  # a source that is down changes no exit code

    def first_per(source: str, run: int, key) -> dict:
        out = {}
        for e in server.exchanges(source, run, DATA_PATHS[source]):
            out.setdefault(key(e), e)
        return out

    # Yahoo: run 1 from 1990-01-01, run 2 from the cursor less a week (the recorded bodies carry a split and
    # a dividend, so the source then asks for the whole history again: that second request comes after)
    y1 = first_per("yahoo", 1, lambda e: e.path)
    y2 = first_per("yahoo", 2, lambda e: e.path)
    assert set(y1) == set(y2) == {f"/v8/finance/chart/{s}" for s in UNIVERSE}
    start = int(datetime(1990, 1, 1, tzinfo=NY).timestamp())
    week_before = int(datetime.combine(AS_OF_1 - timedelta(days=7), datetime.min.time(), NY).timestamp())
    assert {int(e.args["period1"]) for e in y1.values()} == {start}
    assert {int(e.args["period1"]) for e in y2.values()} == {week_before}
    assert {int(e.args["period2"]) for e in y2.values()} == {
        int(datetime.combine(AS_OF_2 + timedelta(days=1), datetime.min.time(), NY).timestamp())}

    s1 = {e.args["d1"] for e in server.exchanges("stooq", 1)}
    s2 = {e.args["d1"] for e in server.exchanges("stooq", 2)}
    assert s1 == {"19900101"} and s2 == {(AS_OF_1 - timedelta(days=7)).strftime("%Y%m%d")}

    f1 = {e.args["realtime_start"] for e in server.exchanges("fred", 1, "/observations")}
    f2 = {e.args["realtime_start"] for e in server.exchanges("fred", 2, "/observations")}
    assert min(f1) == "1776-07-04" and f2 == {(AS_OF_1 - timedelta(days=7)).isoformat()}
    assert all(e.status == 503 for e in server.exchanges("fred", 2))

    b1 = [json.loads(e.body) for e in server.exchanges("bls", 1)]
    b2 = [json.loads(e.body) for e in server.exchanges("bls", 2)]
    assert min(int(b["startyear"]) for b in b1) == 1990
    assert {int(b["startyear"]) for b in b2} == {AS_OF_1.year - 5}

    fin1 = [json.loads(e.body)["dateRangeFilters"][0]["startDate"] for e in server.exchanges("finra", 1)]
    fin2 = [json.loads(e.body)["dateRangeFilters"][0]["startDate"] for e in server.exchanges("finra", 2)]
    assert min(fin1) == "1990-01-01" and min(fin2) == (AS_OF_1 - timedelta(days=9 + 31)).isoformat()


def test_cursors_move_for_what_loaded_and_stay_for_the_source_that_was_down(live):
    home, _, procs = live
    cursors = dict(((s, d), c) for s, d, c in _query(
        home, "select source, dataset, cursor_date from meta.load_state", db="warehouse.duckdb"))
    assert cursors[("fred", "cpi")] == AS_OF_1  # down in run 2: asked again next run from the same place
    assert cursors[("bls", "cpi")] == AS_OF_2  # run 2's answer (five revisable years) was new: loaded
    for key in (("yahoo", "prices"), ("stooq", "prices"), ("finra", "short_interest"), ("ishares", "holdings"),
                ("french", "factors"), ("spdji", "estimates")):
        assert cursors[key] == AS_OF_1, key  # run 2 got the same answers as run 1: nothing new to load
    health = dict(((s, d), why) for s, d, why in _query(
        home, "select source, dataset, message from meta.source_health where source = 'fred'"))
    assert "503" in health[("fred", "cpi")], health
    said = " ".join(procs[2].stdout.split())  # rich wraps long lines
    assert "source health fred/cpi could not be fetched" in said and "HTTP 503" in said
