"""The Kenneth French library source against its factor files served from 127.0.0.1.

Fixtures: tests/fixtures/api2/french/ (provenance in NOTICE): the monthly three-factor CSV (whole)
and a slice of the daily one (its preamble, 2023-01-03 to 2024-08-30, its copyright line). The
library serves each CSV zipped; no download of the zip itself was recorded, so the test zips the
real CSV exactly as the library names it. Expected values are read from the CSVs with ``csv`` here.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import serving
from fixture_readers import french_values
from werkzeug import Response

from sources.base import parse_payload
from sources.french import FrenchSource
from sources.http import RetryPolicy

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api2" / "french"
MONTHLY_CSV = (FIX / "F-F_Research_Data_Factors.CSV").read_bytes()
DAILY_CSV = (FIX / "F-F_Research_Data_Factors_daily_2023-01-03_2024-08-30.CSV").read_bytes()
FOLDER = "/pages/faculty/ken.french/ftp/"
MONTHLY, DAILY = "F-F_Research_Data_Factors_CSV.zip", "F-F_Research_Data_Factors_daily_CSV.zip"


def zipped(member: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return out.getvalue()


MONTHLY_ZIP = zipped("F-F_Research_Data_Factors.CSV", MONTHLY_CSV)
DAILY_ZIP = zipped("F-F_Research_Data_Factors_daily.CSV", DAILY_CSV)


def values(data: bytes) -> dict[str, dict[str, float]]:
    """date → factor → percent, first table only (read with csv)."""
    return french_values(data.decode())


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, ["french"])


def source(**kw) -> FrenchSource:
    kw.setdefault("retry", RetryPolicy(attempts=2, backoff=0.001, max_backoff=0.002, max_retry_after=5))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("sleep", lambda s: None)
    return FrenchSource(**kw)


def test_monthly_and_daily_factors_as_fractions_cut_at_the_as_of_date(server):
    server.expect_request(FOLDER + MONTHLY).respond_with_data(MONTHLY_ZIP, content_type="application/x-zip-compressed")
    server.expect_request(FOLDER + DAILY).respond_with_data(DAILY_ZIP, content_type="application/x-zip-compressed")
    as_of = date(2024, 9, 20)
    monthly, daily = source().fetch("factors", as_of, None)
    for b, name in ((monthly, MONTHLY), (daily, DAILY)):
        assert (b.source, b.dataset, b.format, b.error, b.cursor, b.name) == ("french", "factors", "french_zip", None,
                                                                               as_of, name)
        assert parse_payload(b.payload, b.format, b.name, b.dataset).filter(
            pl.col("period_start") <= b.frame["period_start"].max()).equals(b.frame)
    m, d = values(MONTHLY_CSV), values(DAILY_CSV)
    # a month is public two months after it starts, a day thirty days after it (publication lags)
    assert monthly.frame["period_start"].max() == date(2024, 7, 1)
    assert daily.frame["period_start"].max() == date(2024, 8, 21)
    assert any("not yet public on 2024-09-20" in n for n in monthly.notes)

    def value(frame, day, factor):
        return frame.filter((pl.col("period_start") == day) & (pl.col("factor") == factor))["value"].item()

    assert value(monthly.frame, date(2024, 7, 1), "SMB") == pytest.approx(m["202407"]["SMB"] / 100)
    assert value(monthly.frame, date(1926, 7, 1), "Mkt-RF") == pytest.approx(m["192607"]["Mkt-RF"] / 100)
    assert value(daily.frame, date(2024, 8, 21), "HML") == pytest.approx(d["20240821"]["HML"] / 100)
    assert monthly.frame.filter(pl.col("factor") == "RF").height == len([k for k in m if k <= "202407"])
    assert set(monthly.frame["model"].unique()) == {"ff3"} and set(daily.frame["frequency"].unique()) == {"daily"}
    # the annual block never passes for months
    assert monthly.frame["period_start"].dt.day().unique().to_list() == [1]


def test_unchanged_files_are_not_downloaded_again_once_loaded(server, tmp_path):
    headers = {"ETag": '"5f1e-62a3"', "Last-Modified": "Fri, 04 Oct 2024 19:21:11 GMT"}
    for file, body in ((MONTHLY, MONTHLY_ZIP), (DAILY, DAILY_ZIP)):
        server.expect_request(FOLDER + file, headers={"If-None-Match": '"5f1e-62a3"'}).respond_with_data(
            "", status=304)
        server.expect_request(FOLDER + file).respond_with_response(
            Response(body, content_type="application/x-zip-compressed", headers=headers))
    first = source(frequencies=["monthly"], state_dir=tmp_path).fetch("factors", date(2024, 10, 7), None)
    assert len(first) == 1 and "If-None-Match" not in server.log[0][0].headers
    # the warehouse has not loaded it yet (cursor before the download): ask again in full
    again = source(frequencies=["monthly"], state_dir=tmp_path).fetch("factors", date(2024, 10, 8), None)
    assert len(again) == 1 and "If-None-Match" not in server.log[1][0].headers
    # loaded (the cursor moved on the day of the download): a conditional request, and 304 means nothing new
    assert source(frequencies=["monthly"], state_dir=tmp_path).fetch("factors", date(2024, 10, 9),
                                                                     date(2024, 10, 8)) == []
    sent = server.log[2][0].headers
    assert sent["If-None-Match"] == '"5f1e-62a3"' and sent["If-Modified-Since"] == "Fri, 04 Oct 2024 19:21:11 GMT"
    assert source(state_dir=tmp_path).fetch("prices", date(2024, 10, 9), None) == []
