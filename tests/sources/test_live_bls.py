"""The BLS API v2 source against a server on 127.0.0.1.

No recording of a BLS API v2 answer exists, so ``Bls`` below answers the POST in BLS's layout
(``status``, ``message``, ``Results.series[].data[]`` newest first, ``year``/``period``/``value``
strings) from real values: CUUR0000SA0 (CPI-U, NSA) from datasets/cpi-us, CUSR0000SA0 and
CUSR0000SA0L1E (SA headline and core) from the FRED copies of those BLS series (CPIAUCSL and
CPILFESL are the same numbers). No real values of CUUR0000SA0L1E (core NSA) are at hand, so these
tests ask for the three series above. October 2025 was never published: BLS's placeholder ``-`` is
sent for it (the format tests assume the same).
"""

from __future__ import annotations

import calendar
import csv
import json
import logging
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import serving
from werkzeug import Request, Response

from sources.base import parse_payload
from sources.bls import BlsSource
from sources.errors import SourceUnavailable
from sources.http import RetryPolicy
from transforms.pit import available_on

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api"
PATH = "/publicAPI/v2/timeseries/data/"
SERIES = ("CUUR0000SA0", "CUSR0000SA0", "CUSR0000SA0L1E")
KEY = "bls-canary-31d2e0aa"


def table(rel: str) -> dict[date, str]:
    rows = list(csv.reader((FIX / rel).read_text().splitlines()))[1:]
    return {date.fromisoformat(r[0]): r[1] for r in rows}


VALUES = {
    "CUUR0000SA0": table("bls/datasets_cpi-us_cpiai_2019-01_2026-05.csv"),
    "CUSR0000SA0": table("fred/fred_CPIAUCSL_monthly_2019-01_2025-11.csv"),
    "CUSR0000SA0L1E": table("bls/fred_CPILFESL_monthly_2019-01_2025-11.csv"),
}
OCT_2025 = date(2025, 10, 1)


class Bls:
    """BLS API v2 answers from real values (see the module docstring)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def __call__(self, request: Request) -> Response:
        body = json.loads(request.data)
        self.bodies.append(body)
        first, last = int(body["startyear"]), int(body["endyear"])
        series, messages = [], []
        for sid in body["seriesid"]:
            data = []
            for year in range(last, first - 1, -1):
                months = sorted((d for d in VALUES[sid] if d.year == year), reverse=True)
                if year == 2025:  # October 2025 is absent from, or empty in, the source files
                    months = sorted({*months, OCT_2025}, reverse=True)
                if not months:
                    messages.append(f"No Data Available for Series {sid} Year: {year}")
                for d in months:
                    raw = VALUES[sid].get(d) or "-"
                    data.append({"year": str(d.year), "period": f"M{d.month:02d}",
                                 "periodName": calendar.month_name[d.month], "value": raw, "footnotes": [{}]})
            if data:
                data[0]["latest"] = "true"
            series.append({"seriesID": sid, "data": data})
        answer = {"status": "REQUEST_SUCCEEDED", "responseTime": 143, "message": messages, "Results": {"series": series}}
        return Response(json.dumps(answer), content_type="application/json")


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, ["bls"], unset=["BLS_API_KEY"])


@pytest.fixture
def bls(server) -> Bls:
    emu = Bls()
    server.expect_request(PATH, method="POST").respond_with_handler(emu)
    return emu


def source(**kw) -> BlsSource:
    kw.setdefault("retry", RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("sleep", lambda s: None)
    return BlsSource(SERIES, **kw)


def one(frame: pl.DataFrame, series: str, month: date):
    rows = frame.filter((pl.col("series_id") == series) & (pl.col("ref_month") == month))
    assert rows.height == 1, (series, month)
    return rows["value"][0]


def test_registered_query_values_and_as_of_cut(bls, server, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("BLS_API_KEY", KEY)
    (b,) = source(start=date(2019, 1, 1)).fetch("cpi", date(2026, 1, 20), None)
    assert bls.bodies == [{"seriesid": list(SERIES), "startyear": "2019", "endyear": "2026", "registrationkey": KEY}]
    assert (b.source, b.format, b.error, b.cursor) == ("bls", "bls_json", None, date(2026, 1, 20))
    f = b.frame
    assert one(f, "CUUR0000SA0", date(2025, 9, 1)) == float(VALUES["CUUR0000SA0"][date(2025, 9, 1)])
    assert one(f, "CUSR0000SA0", date(2020, 1, 1)) == float(VALUES["CUSR0000SA0"][date(2020, 1, 1)]) == 259.127
    assert one(f, "CUSR0000SA0L1E", date(2025, 11, 1)) == float(VALUES["CUSR0000SA0L1E"][date(2025, 11, 1)])
    for sid in SERIES:
        assert one(f, sid, OCT_2025) is None
    assert f["realtime_start"].is_null().all()
    # December 2025 was public by 2026-01-20 (released mid-January), January 2026 was not
    assert f.filter(pl.col("series_id") == "CUUR0000SA0")["ref_month"].max() == date(2025, 12, 1)
    full = parse_payload(b.payload, b.format, b.name, b.dataset)
    assert full.filter(pl.col("series_id") == "CUUR0000SA0")["ref_month"].max() == date(2026, 5, 1)
    assert full.filter(available_on("cpi") <= date(2026, 1, 20)).equals(f)
    assert any("not yet public on 2026-01-20" in n for n in b.notes)
    assert "No Data Available for Series CUSR0000SA0 Year: 2026" in b.notes
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))
    assert KEY not in ours and KEY not in b.name and KEY.encode() not in b.payload


def test_unregistered_queries_hold_ten_years(bls, server):
    batches = source(start=date(2005, 1, 1)).fetch("cpi", date(2026, 1, 20), None)
    assert [(q["startyear"], q["endyear"]) for q in bls.bodies] == [("2005", "2014"), ("2015", "2024"), ("2025", "2026")]
    assert all("registrationkey" not in q for q in bls.bodies)
    assert len(batches) == 2  # 2005-2014 has no data in this emulation: nothing to load
    assert all(b.cursor == date(2026, 1, 20) for b in batches)


def test_series_and_year_limits_split_queries(bls, server):
    src = source(start=date(2019, 1, 1), max_series=2, max_years=4)
    assert src.queries(False, 2019, 2026) == [
        (["CUUR0000SA0", "CUSR0000SA0"], 2019, 2022), (["CUUR0000SA0", "CUSR0000SA0"], 2023, 2026),
        (["CUSR0000SA0L1E"], 2019, 2022), (["CUSR0000SA0L1E"], 2023, 2026)]
    assert len(src.fetch("cpi", date(2026, 1, 20), None)) == 4 and len(server.log) == 4


def test_incremental_asks_again_for_the_revisable_years(bls, server):
    source().fetch("cpi", date(2026, 3, 20), date(2026, 2, 20))
    assert (bls.bodies[0]["startyear"], bls.bodies[0]["endyear"]) == ("2021", "2026")


def test_daily_threshold_is_source_unavailable(server):
    answer = {"status": "REQUEST_NOT_PROCESSED", "responseTime": 20, "Results": {},
              "message": ["Request could not be serviced, as the daily threshold for total number of requests "
                          "allocated to the user has been reached."]}
    server.expect_request(PATH, method="POST").respond_with_json(answer)
    with pytest.raises(SourceUnavailable, match="daily query limit"):
        source().fetch("cpi", date(2026, 1, 20), None)
    assert len(server.log) == 1


def test_other_failed_status_is_quarantined(server):
    answer = {"status": "REQUEST_NOT_PROCESSED", "responseTime": 20, "message": ["Invalid registration key."],
              "Results": {"series": []}}
    server.expect_request(PATH, method="POST").respond_with_json(answer)
    (b,) = source(start=date(2019, 1, 1)).fetch("cpi", date(2026, 1, 20), None)
    assert b.frame is None and "REQUEST_NOT_PROCESSED" in b.error.reason() and b.cursor is None


def test_renamed_field_and_html_are_quarantined(server):
    answer = {"status": "REQUEST_SUCCEEDED", "message": [],
              "Results": {"series": [{"seriesId": "CUUR0000SA0", "data": []}]}}  # seriesID renamed
    server.expect_ordered_request(PATH, method="POST").respond_with_json(answer)
    server.expect_ordered_request(PATH, method="POST").respond_with_data("<html><body>Access Denied</body></html>",
                                                                         content_type="text/html")
    (b,) = source(start=date(2019, 1, 1)).fetch("cpi", date(2026, 1, 20), None)
    assert "seriesID" in b.error.reason()
    (h,) = source(start=date(2019, 1, 1)).fetch("cpi", date(2026, 1, 20), None)
    assert "HTML page" in h.error.reason()


def test_503_then_recovery(bls, server):
    server.clear()
    server.expect_ordered_request(PATH, method="POST").respond_with_data("busy", status=503)
    server.expect_ordered_request(PATH, method="POST").respond_with_handler(bls)
    (b,) = source(start=date(2019, 1, 1)).fetch("cpi", date(2026, 1, 20), None)
    assert b.error is None and len(server.log) == 2
    assert source().fetch("prices", date(2026, 1, 20), None) == []
