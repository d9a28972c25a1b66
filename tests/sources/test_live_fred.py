"""The FRED/ALFRED source (CPI and the rates backdrop) against a server on 127.0.0.1.

* ``fred_series_observations_fedfunds_2023.json`` is a whole recorded FRED answer (the last value
  is ``"."``), served byte for byte.
* No recording of a multi-vintage (ALFRED) answer exists, so ``Alfred`` below answers
  ``series/observations`` and ``series/vintagedates`` the way FRED does (output_type 1: one row per
  observation and real-time period, ``realtime_start`` clipped to the period asked for), from the
  real values of two real CPIAUCSL downloads: the vintage of 2025-01-26
  (``fred_CPIAUCSL_vintage-2025-01-26_2019-01_2024-12.csv``) and a download of 2026-01-02
  (``fred_CPIAUCSL_monthly_2019-01_2025-11.csv``, October 2025 empty). Between them lies the
  February 2025 revision of five years of seasonally adjusted values. The two download dates stand
  in for FRED's vintage dates.
"""

from __future__ import annotations

import csv
import json
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import serving
from werkzeug import Request, Response

from sources.base import parse_payload
from sources.errors import SourceUnavailable
from sources.fred import FredSource
from sources.http import RetryPolicy, SourceNotConfigured

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "fred"
FEDFUNDS = FIX / "fred_series_observations_fedfunds_2023.json"
VINTAGE_A = FIX / "fred_CPIAUCSL_vintage-2025-01-26_2019-01_2024-12.csv"
VINTAGE_B = FIX / "fred_CPIAUCSL_monthly_2019-01_2025-11.csv"
A_START, B_START = date(2025, 1, 26), date(2026, 1, 2)
END_OF_TIME = date(9999, 12, 31)
KEY = "fred-canary-0d9c44e1a7"
OBS = "/fred/series/observations"
VINTAGES = "/fred/series/vintagedates"


def vintage_a() -> dict[date, str]:
    out = {}
    for row in list(csv.reader(VINTAGE_A.read_text().splitlines()))[1:]:
        m, d, y = row[0].split("/")
        out[date(int(y), int(m), int(d))] = row[1]
    return out


def vintage_b() -> dict[date, str]:
    return {date.fromisoformat(r[0]): (r[1] or ".") for r in list(csv.reader(VINTAGE_B.read_text().splitlines()))[1:]}


class Alfred:
    """FRED's real-time answers over the two real vintages (see the module docstring)."""

    def __init__(self) -> None:
        a, b = vintage_a(), vintage_b()
        self.periods: list[tuple[date, str, date, date]] = []  # (observation date, value, start, end)
        for day in sorted(set(a) | set(b)):
            if day in a and day in b and a[day] == b[day]:
                self.periods.append((day, a[day], A_START, END_OF_TIME))
            else:
                if day in a:
                    self.periods.append((day, a[day], A_START, B_START - timedelta(days=1) if day in b else END_OF_TIME))
                if day in b:
                    self.periods.append((day, b[day], B_START, END_OF_TIME))
        self.windows: list[tuple[date, date]] = []

    def observations(self, request: Request) -> Response:
        args = request.args
        assert args["api_key"] == KEY and args["file_type"] == "json" and args["output_type"] == "1"
        rs, re = date.fromisoformat(args["realtime_start"]), date.fromisoformat(args["realtime_end"])
        self.windows.append((rs, re))
        first = date.fromisoformat(args.get("observation_start", "1776-07-04"))
        rows = [
            {"realtime_start": max(s, rs).isoformat(), "realtime_end": min(e, re).isoformat(), "date": d.isoformat(), "value": v}
            for d, v, s, e in self.periods if s <= re and e >= rs and d >= first
        ]
        rows.sort(key=lambda r: (r["date"], r["realtime_start"]))
        offset, limit = int(args.get("offset", 0)), int(args.get("limit", 100000))
        body = {"realtime_start": rs.isoformat(), "realtime_end": re.isoformat(), "observation_start": first.isoformat(),
                "observation_end": "9999-12-31", "units": "lin", "output_type": 1, "file_type": "json",
                "order_by": "observation_date", "sort_order": "asc", "count": len(rows), "offset": offset,
                "limit": limit, "observations": rows[offset:offset + limit]}
        return Response(json.dumps(body, separators=(",", ":")), content_type="application/json")

    def vintage_dates(self, request: Request) -> Response:
        rs, re = date.fromisoformat(request.args["realtime_start"]), date.fromisoformat(request.args["realtime_end"])
        dates = sorted({s for _, _, s, _ in self.periods if rs <= s <= re})
        body = {"realtime_start": rs.isoformat(), "realtime_end": re.isoformat(), "order_by": "vintage_date",
                "sort_order": "asc", "count": len(dates), "offset": 0, "limit": 10000,
                "vintage_dates": [d.isoformat() for d in dates]}
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, ["fred"], env={"FRED_API_KEY": KEY})


@pytest.fixture
def alfred(server) -> Alfred:
    emu = Alfred()
    server.expect_request(OBS).respond_with_handler(emu.observations)
    server.expect_request(VINTAGES).respond_with_handler(emu.vintage_dates)
    return emu


def source(series=("CPIAUCSL",), **kw) -> FredSource:
    kw.setdefault("retry", RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("sleep", lambda s: None)
    return FredSource(series, **kw)


def value(frame, month: date, vintage: date):
    rows = frame.filter((frame["ref_month"] == month) & (frame["realtime_start"] == vintage))
    assert rows.height == 1, (month, vintage, rows)
    return rows["value"][0]


def test_recorded_answer_dot_is_null_and_vintage_kept(server, caplog):
    caplog.set_level(logging.DEBUG)
    raw = FEDFUNDS.read_bytes()
    obj = json.loads(raw)
    server.expect_request(OBS).respond_with_data(raw, content_type="application/json")
    (b,) = source(["FEDFUNDS"]).fetch("cpi", date(2023, 7, 18), date(2023, 7, 17))
    assert (b.source, b.dataset, b.format, b.error, b.cursor) == ("fred", "cpi", "fred_json", None, date(2023, 7, 18))
    assert b.payload == raw and "FEDFUNDS" in b.name
    assert b.frame.height == obj["count"] == 829
    last, first = obj["observations"][-1], obj["observations"][0]
    assert last["value"] == "."
    got = b.frame.filter(b.frame["ref_month"] == date.fromisoformat(last["date"])).row(0, named=True)
    assert got["value"] is None and got["realtime_start"] == date(2023, 7, 18)
    assert b.frame["value"][0] == float(first["value"]) and set(b.frame["series_id"]) == {"FEDFUNDS"}
    assert parse_payload(b.payload, b.format, b.name, b.dataset).equals(b.frame)
    args = server.log[0][0].args
    assert args["api_key"] == KEY and args["realtime_end"] == "2023-07-18" and args["realtime_start"] == "2023-07-10"
    assert args["observation_start"] == "2017-01-01"  # the revisable years before the cursor
    assert len(server.log) == 1  # a short real-time window needs no vintage-date listing
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))
    assert KEY not in ours and "api_key=***" in ours


def test_every_vintage_is_kept_and_the_period_is_chunked(alfred, server):
    batches = source(max_vintage_dates=1).fetch("cpi", date(2026, 1, 10), None)
    # one listing of vintage dates, then one request per chunk of at most one vintage date
    assert [r.path for r, _ in server.log] == [VINTAGES, OBS, OBS]
    assert alfred.windows == [(date(1776, 7, 4), date(2026, 1, 1)), (date(2026, 1, 2), date(2026, 1, 10))]
    for rs, re in alfred.windows:
        assert sum(rs <= v <= re for v in (A_START, B_START)) <= 1
    assert len(batches) == 2 and all(b.error is None and b.cursor == date(2026, 1, 10) for b in batches)
    import polars as pl

    frame = pl.concat([b.frame for b in batches])
    a, b_ = vintage_a(), vintage_b()
    jan20 = date(2020, 1, 1)
    assert a[jan20] != b_[jan20]  # revised in February 2025
    assert value(frame, jan20, A_START) == float(a[jan20]) == 258.906
    assert value(frame, jan20, B_START) == float(b_[jan20]) == 259.127
    assert value(frame, date(2025, 10, 1), B_START) is None  # October 2025: "." (never published)
    assert value(frame, date(2025, 11, 1), B_START) == float(b_[date(2025, 11, 1)])
    for batch in batches:
        assert "CPIAUCSL" in batch.name
        assert parse_payload(batch.payload, batch.format, batch.name, batch.dataset).equals(batch.frame)


def test_a_run_in_the_past_sees_only_the_vintages_of_its_day(alfred, server):
    batches = source(max_vintage_dates=1).fetch("cpi", date(2025, 6, 30), None)
    frame = batches[0].frame
    assert len(batches) == 1 and set(frame["realtime_start"]) == {A_START}
    assert value(frame, date(2020, 1, 1), A_START) == 258.906
    assert frame["ref_month"].max() == date(2024, 12, 1)


def test_pages_follow_offset_and_count(alfred, server):
    batches = source(page_limit=40).fetch("cpi", date(2026, 1, 10), date(2026, 1, 5))
    assert server.log[0][0].args["realtime_start"] == "2025-12-29"  # cursor - 7 days
    assert server.log[0][0].args["observation_start"] == "2020-01-01"  # cursor's year - 6
    # that period holds every month since 2020 of the newer vintage, plus the older value of each
    # month revised in February 2025 (valid until 2026-01-01, clipped to start on 2025-12-29)
    a, b_ = vintage_a(), vintage_b()
    months = [d for d in b_ if d >= date(2020, 1, 1)]
    rows = len(months) + sum(1 for d in months if d in a and a[d] != b_[d])
    assert rows == 71 + 60
    offsets = [int(r.args["offset"]) for r, _ in server.log if r.path == OBS]
    assert offsets == [0, 40, 80, 120]
    assert [b.frame.height for b in batches] == [40, 40, 40, rows - 120]
    assert batches[1].name.endswith("_40.json") and len({b.name for b in batches}) == 4


def test_unknown_series_fails_alone_and_holds_the_cursor(server):
    raw = FEDFUNDS.read_bytes()
    server.expect_request(OBS, query_string=None).respond_with_handler(
        lambda req: Response(raw, content_type="application/json") if req.args["series_id"] == "FEDFUNDS" else Response(
            json.dumps({"error_code": 400, "error_message": "Bad Request.  The series does not exist."}),
            status=400, content_type="application/json"))
    bad, good = source(["NOSUCHSERIES", "FEDFUNDS"]).fetch("cpi", date(2023, 7, 18), date(2023, 7, 17))
    assert "FRED refused series NOSUCHSERIES" in bad.error.reason() and "does not exist" in bad.error.reason()
    assert good.error is None and good.frame.height == 829
    assert bad.cursor is None and good.cursor is None
    assert len(server.log) == 2  # the 400 is not retried


def test_missing_key_fails_before_any_request(server, monkeypatch):
    monkeypatch.delenv("FRED_API_KEY")
    with pytest.raises(SourceNotConfigured, match="FRED_API_KEY"):
        source().fetch("cpi", date(2026, 1, 10), None)
    assert server.log == []
    assert source().fetch("prices", date(2026, 1, 10), None) == []


def test_canary_key_never_leaves_the_request(server, caplog):
    caplog.set_level(logging.DEBUG)
    raw = FEDFUNDS.read_bytes()
    server.expect_ordered_request(OBS).respond_with_data("unavailable", status=503)
    server.expect_ordered_request(OBS).respond_with_data(raw, content_type="application/json")
    server.expect_ordered_request(OBS).respond_with_data(
        json.dumps({"error_code": 400, "error_message": "Bad Request.  The value for variable api_key is not registered."}),
        status=400, content_type="application/json")
    batches = source(["FEDFUNDS", "CPIAUCSL"]).fetch("cpi", date(2023, 7, 18), date(2023, 7, 17))
    assert [b.error is None for b in batches] == [True, False]
    assert all(r.args["api_key"] == KEY for r, _ in server.log)  # it was sent ...
    server.clear()
    server.expect_request(OBS).respond_with_data("down", status=500)
    with pytest.raises(SourceUnavailable) as info:
        source(["FEDFUNDS"]).fetch("cpi", date(2023, 7, 18), None)
    # ... and nothing we log, name, keep or raise contains it
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))
    assert "api_key=***" in ours and "retry" in ours
    texts = [ours, str(info.value)] + [b.name for b in batches] + [b.error.reason() for b in batches if b.error]
    texts += [n for b in batches for n in b.notes]
    assert not any(KEY in t for t in texts)
    assert not any(KEY.encode() in b.payload for b in batches)


# -- the rates backdrop: DFF and DGS2
#
# No recorded FRED answer for DFF or DGS2 is on hand. The server below answers the request for
# DFF with the recorded FEDFUNDS answer and the request for DGS2 with the recorded answer of a
# monthly CPI percent-change series (tests/fixtures/api/fred/fred_series_observations_cpi_2023.json),
# both byte for byte: real FRED data in FRED's real format, but other series than the ones asked
# for (see NOTICE). They check the request, the "." handling, the vintages and the percent →
# fraction conversion, not the level of any rate.

OTHER = FIX / "fred_series_observations_cpi_2023.json"
RATES_ANSWERS = {"DFF": FEDFUNDS, "DGS2": OTHER, "FEDFUNDS": FEDFUNDS}


class RatesServer:
    def __init__(self) -> None:
        self.asked: list[dict] = []

    def __call__(self, request: Request) -> Response:
        self.asked.append(dict(request.args))
        return Response(RATES_ANSWERS[request.args["series_id"]].read_bytes(), content_type="application/json")


def expected_fractions(path: Path) -> list[float | None]:
    """FRED's percent strings as fractions, "." as None, read straight from the recorded file."""
    return [None if o["value"] == "." else float(o["value"]) / 100 for o in json.loads(path.read_text())["observations"]]


def test_rates_are_asked_like_cpi_and_stored_as_fractions(server):
    emu = RatesServer()
    server.expect_request(OBS).respond_with_handler(emu)
    as_of, cursor = date(2023, 7, 20), date(2023, 7, 19)
    batches = source().fetch("rates", as_of, cursor)
    assert [a["series_id"] for a in emu.asked] == ["DFF", "DGS2"]
    for args in emu.asked:
        assert (args["realtime_start"], args["realtime_end"], args["api_key"]) == ("2023-07-12", "2023-07-20", KEY)
        assert (args["file_type"], args["output_type"]) == ("json", "1")
    dff, dgs2 = batches
    for b, series, path in ((dff, "DFF", FEDFUNDS), (dgs2, "DGS2", OTHER)):
        assert (b.source, b.dataset, b.format, b.error, b.cursor) == ("fred", "rates", "fred_json", None, as_of)
        assert b.name.startswith(f"{series}_") and b.payload == path.read_bytes()
        assert set(b.frame["series_id"]) == {series}
        assert b.frame["value"].to_list() == expected_fractions(path)
        assert set(b.frame["realtime_start"]) == {date(2023, 7, 18)}
        assert parse_payload(b.payload, b.format, b.name, b.dataset).equals(b.frame)
    # by hand from the recorded answer: June 2023 5.08 % → 0.0508; July 2023 is "." → null
    june = dff.frame.filter(dff.frame["date"] == date(2023, 6, 1))["value"].item()
    assert june == pytest.approx(0.0508, abs=1e-15)
    assert dff.frame.filter(dff.frame["date"] == date(2023, 7, 1))["value"].item() is None
    assert dff.frame.height == 829 and dgs2.frame.height == 292


def test_rates_and_cpi_are_separate_datasets(server):
    emu = RatesServer()
    server.expect_request(OBS).respond_with_handler(emu)
    src = source(["FEDFUNDS"], rates_series=["DFF"])
    (cpi_batch,) = src.fetch("cpi", date(2023, 7, 20), date(2023, 7, 19))  # FEDFUNDS as a CPI-shaped series
    assert cpi_batch.dataset == "cpi" and "ref_month" in cpi_batch.frame.columns
    (rates_batch,) = src.fetch("rates", date(2023, 7, 20), date(2023, 7, 19))
    assert rates_batch.dataset == "rates" and "date" in rates_batch.frame.columns
    assert [a["series_id"] for a in emu.asked] == ["FEDFUNDS", "DFF"]
    assert source(rates_series=()).fetch("rates", date(2023, 7, 20), None) == []


def test_rates_not_yet_public_are_left_out(server):
    """A run as of the day before the recorded vintage (2023-07-18) gets nothing from it."""
    server.expect_request(OBS).respond_with_handler(RatesServer())
    assert source().fetch("rates", date(2023, 7, 17), date(2023, 7, 16)) == []
