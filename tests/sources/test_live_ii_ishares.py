"""The iShares holdings source against the real holdings downloads served from 127.0.0.1.

Fixtures: tests/fixtures/api2/ishares/ are whole copies of two iShares downloads (IWM of
2026-05-05, IVV of 2026-06-19; provenance in NOTICE), served as recorded. No download in the newer
column layout (``Type``, ``Market Weight``) was found: that case is the IVV file rewritten into that
layout with its own values. Expected values are read from the files with ``csv`` here.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import serving
from pytest_httpserver import HTTPServer
from werkzeug import Response

from sources.base import parse_payload
from sources.consensus.state import STALE
from sources.http import RetryPolicy
from sources.ishares import IsharesSource, holdings_universe

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api2" / "ishares"
IWM = (FIX / "iShares_IWM_holdings_2026-05-05.csv").read_bytes()
IVV = (FIX / "iShares_IVV_holdings_2026-06-19.csv").read_bytes()
PATHS = {
    "IWM": "/us/products/239710/ishares-russell-2000-etf/1467271812596.ajax",
    "IJR": "/us/products/239774/ishares-core-sp-smallcap-etf/1467271812596.ajax",
    "IVV": "/us/products/239726/ishares-core-sp-500-etf/1467271812596.ajax",
    "IJH": "/us/products/239763/ishares-core-sp-midcap-etf/1467271812596.ajax",
}


def table(data: bytes) -> tuple[list[str], list[list[str]]]:
    """(header, holding rows) of an iShares download, read with csv."""
    lines = data.decode("utf-8-sig").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Ticker,"))
    rows = []
    for r in csv.reader(lines[start + 1:]):
        if not r or not r[0].strip():
            break
        rows.append(r)
    return next(csv.reader([lines[start]])), rows


def num(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, ["ishares"], unset=["CAPSPREAD_ISHARES_MAX_AGE_DAYS"])


def source(funds, **kw) -> IsharesSource:
    kw.setdefault("retry", RetryPolicy(attempts=2, backoff=0.001, max_backoff=0.002, max_retry_after=5))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("sleep", lambda s: None)
    return IsharesSource(funds, **kw)


def serve(server: HTTPServer, fund: str, body: bytes | Response) -> None:
    handler = server.expect_request(PATHS[fund])
    if isinstance(body, Response):
        handler.respond_with_response(body)
    else:
        handler.respond_with_data(body, content_type="text/csv")


def test_snapshots_of_both_funds_and_a_stale_one(server):
    serve(server, "IWM", IWM)
    serve(server, "IVV", IVV)
    as_of = date(2026, 6, 22)
    iwm, ivv = source(["IWM", "IVV"]).fetch("holdings", as_of, None)
    # the request iShares expects
    args = {req.path: dict(req.args) for req, _ in server.log}
    assert args[PATHS["IWM"]] == {"fileType": "csv", "fileName": "IWM_holdings", "dataType": "fund"}
    for b, data, fund, day in ((iwm, IWM, "IWM", date(2026, 5, 5)), (ivv, IVV, "IVV", date(2026, 6, 19))):
        header, rows = table(data)
        col = {h: i for i, h in enumerate(header)}
        assert (b.source, b.dataset, b.format, b.error, b.cursor) == ("ishares", "holdings", "ishares_csv", None, as_of)
        assert b.payload == data and b.name == f"{fund}_holdings_2026-06-22.csv"
        assert b.frame.height == len(rows)  # every row kept, cash and futures included
        assert b.frame["fund"].unique().to_list() == [fund] and b.frame["as_of_date"].unique().to_list() == [day]
        first = rows[0]
        (got,) = b.frame.filter(pl.col("symbol") == first[col["Ticker"]]).iter_rows(named=True)
        assert got["weight"] == pytest.approx(num(first[col["Weight (%)"]]) / 100)
        assert got["market_value"] == num(first[col["Market Value"]]) and got["shares"] == num(first[col["Quantity"]])
        assert parse_payload(b.payload, b.format, b.name, b.dataset).equals(b.frame)
    assert iwm.frame.filter(pl.col("symbol") == "BE")["weight"].to_list() == [0.0193]
    # IWM's snapshot is 48 days old: a health event, and the rows still load (a true snapshot)
    (stale,) = [n for n in iwm.notes if n.startswith(STALE)]
    assert "IWM holdings are dated 2026-05-05, 48 days before 2026-06-22 (at most 5 expected)" in stale
    assert not any(n.startswith(STALE) for n in ivv.notes)


def test_newer_column_layout_gives_the_same_snapshot(server):
    header, rows = table(IVV)
    col = {h: i for i, h in enumerate(header)}
    newer = ["Ticker", "Name", "Type", "Sector", "Asset Class", "Market Value", "Notional Value", "Quantity", "Price",
             "Location", "Exchange", "Currency", "FX Rate", "Market Currency", "Accrual Date", "Notional Weight",
             "Market Weight"]
    text = IVV.decode("utf-8-sig")
    out = io.StringIO()
    out.write(text[: text.index("Ticker,")])
    out.write(",".join(newer) + "\n")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for r in rows:
        values = {h: r[col[h]] for h in header}
        values["Type"] = "EQUITY" if r[col["Asset Class"]] == "Equity" else "CASH"
        values["Market Weight"] = values["Notional Weight"] = r[col["Weight (%)"]]
        writer.writerow([values[h] for h in newer])
    serve(server, "IVV", out.getvalue().encode())
    (b,) = source(["IVV"]).fetch("holdings", date(2026, 6, 22), None)
    server.clear()
    serve(server, "IVV", IVV)
    (older,) = source(["IVV"]).fetch("holdings", date(2026, 6, 22), None)
    assert b.error is None and b.frame.equals(older.frame)


def test_missing_or_wrong_holdings_are_health_events(server):
    serve(server, "IWM", Response("Not Found", status=404))
    serve(server, "IJR", Response("<!DOCTYPE html><html><body>Please try again</body></html>",
                                  content_type="text/html"))
    header_line = IVV[IVV.index(b"Ticker,"):].split(b"\n", 1)[0]
    preamble_only = IVV[: IVV.index(b"Ticker,")] + header_line + b'\n\n"footer"\n'
    serve(server, "IVV", preamble_only)
    serve(server, "IJH", IVV)  # the IVV file at the IJH address
    batches = source(["IWM", "IJR", "IVV", "IJH"]).fetch("holdings", date(2026, 6, 22), None)
    assert [b.error is not None for b in batches] == [True, True, True, True]
    reasons = {b.name[:3]: (b.error.reason(), [n for n in b.notes if n.startswith(STALE)]) for b in batches}
    assert "HTTP 404" in reasons["IWM"][0] and reasons["IWM"][1] == [
        f"{STALE}IWM holdings missing: iShares refused the download (HTTP 404)"]
    assert "HTML page" in reasons["IJR"][0] and reasons["IJR"][1][0].startswith(f"{STALE}IJR holdings missing: ")
    assert "no holdings rows" in reasons["IVV"][0] and reasons["IVV"][1]
    assert "IJH" in reasons["IJH"][0] and reasons["IJH"][1]
    assert all(b.cursor is None and b.frame is None for b in batches)
    assert len(server.log) == 4  # refusals are not retried


def test_a_past_date_gets_nothing_newer_and_no_stale_note(server):
    serve(server, "IVV", IVV)
    assert source(["IVV"]).fetch("holdings", date(2026, 6, 19), None) == []  # public the next day
    assert source(["IVV"]).fetch("prices", date(2026, 6, 19), None) == []
    assert len(server.log) == 1


def test_latest_files_are_kept_and_make_the_consensus_universe(server, tmp_path):
    serve(server, "IWM", IWM)
    serve(server, "IVV", IVV)
    source(["IWM", "IVV"], state_dir=tmp_path).fetch("holdings", date(2026, 6, 22), None)
    assert (tmp_path / "IWM_holdings.csv").read_bytes() == IWM
    assert json.loads((tmp_path / "IVV.json").read_text())["as_of_date"] == "2026-06-19"
    universe = holdings_universe(tmp_path, ["IWM", "IVV"])
    # every fund's largest holding first, then the second largest of each, …
    assert universe[:4] == ["NVDA", "BE", "AAPL", "CRDO"]
    expected = set()
    for data in (IWM, IVV):
        header, rows = table(data)
        col = {h: i for i, h in enumerate(header)}
        expected |= {r[col["Ticker"]] for r in rows
                     if r[col["Asset Class"]] == "Equity" and num(r[col["Market Value"]]) > 0
                     and " " not in r[col["Ticker"]] and r[col["Ticker"]] != "-"}
    assert set(universe) == expected and len(universe) == len(expected)
    assert "HOLX US" not in universe  # an unlisted line
    zero = [r[0] for r in table(IWM)[1] if r[5] == "0.00" and num(r[4]) > 0 and r[3] == "Equity" and r[0] != "-"]
    assert len(zero) > 200 and set(zero) <= set(universe)  # weights rounded to 0.00 %: still companies
    # an older snapshot fetched later does not replace the kept one
    server.clear()
    serve(server, "IVV", IWM.replace(b"iShares Russell 2000 ETF", b"iShares Core S&P 500 ETF", 1))
    source(["IVV"], state_dir=tmp_path).fetch("holdings", date(2026, 6, 22), None)
    assert (tmp_path / "IVV_holdings.csv").read_bytes() == IVV
    assert holdings_universe(None, ["IWM"]) == [] and holdings_universe(tmp_path, ["IJR"]) == []
