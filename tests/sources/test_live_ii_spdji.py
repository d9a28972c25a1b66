"""The S&P DJI estimates workbook source, and the end of that source, against 127.0.0.1.

Fixture: tests/fixtures/api2/spdji/sp-500-eps-est_2025-12.xlsx, a whole copy of a real edition
(dated 2025-09-30; provenance in NOTICE). No copy of the final edition (the one announcing the
discontinuation) was found, so ``final_edition`` builds it: the real workbook opened with openpyxl
(values only), a notice written into an empty cell of its first rows, saved again. Expected values
are read from the real workbook's cells with openpyxl here.
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from conftest import serving
from pytest_httpserver import HTTPServer
from werkzeug import Response

from sources.base import parse_payload
from sources.consensus.state import ENDED, STALE
from sources.formats.estimates import edition_notice
from sources.http import RetryPolicy
from sources.spdji import PATH, SpdjiSource, discontinuation_notice

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api2" / "spdji"
REAL = (FIX / "sp-500-eps-est_2025-12.xlsx").read_bytes()
NOTICE = ("Please note: S&P Dow Jones Indices has discontinued this report. This is the final edition; "
          "it will no longer be updated after January 31, 2026.")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def final_edition() -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(REAL), data_only=True)
    ws = wb.worksheets[0]
    assert ws["F3"].value is None  # an empty cell in the title rows
    ws["F3"] = NOTICE
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def cells() -> dict[str, object]:
    """Cells of the real edition, read here by coordinates found by looking at the sheet."""
    ws = openpyxl.load_workbook(io.BytesIO(REAL), read_only=True, data_only=True).worksheets[0]
    grid = [list(r) for r in ws.iter_rows(max_row=400, values_only=True)]
    # the P/E block: the 'OPER P/E' labels, the index row below them
    r0, c0 = next((r, c) for r, row in enumerate(grid) for c, v in enumerate(row) if v == "OPER P/E")
    cols = [c for c, v in enumerate(grid[r0]) if v == "OPER P/E"]
    row = next(r for r in range(r0 + 1, r0 + 8) if grid[r][0] == "S&P 500")
    return {"edition": grid[1][0], "pe": [grid[row][c] for c in cols]}


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch, ["spdji"], unset=["CAPSPREAD_SPDJI_STALE_DAYS",
                                                                   "CAPSPREAD_SPDJI_ENDED_DAYS"])


def source(**kw) -> SpdjiSource:
    kw.setdefault("retry", RetryPolicy(attempts=2, backoff=0.001, max_backoff=0.002, max_retry_after=5))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("sleep", lambda s: None)
    return SpdjiSource(**kw)


def serve(server: HTTPServer, body: bytes, headers: dict | None = None) -> None:
    server.expect_request(PATH).respond_with_response(Response(body, content_type=XLSX, headers=headers or {}))


def health(notes: list[str]) -> list[str]:
    return [n for n in notes if n.startswith((ENDED, STALE))]


def test_a_current_edition_loads_without_a_health_note(server, cells):
    serve(server, REAL)
    (b,) = source().fetch("estimates", date(2025, 12, 31), None)
    assert (b.source, b.dataset, b.format, b.error, b.cursor) == ("spdji", "estimates", "spdji_eps_xlsx", None,
                                                                 date(2025, 12, 31))
    assert b.payload == REAL and b.name == "sp-500-eps-est_2025-12-31.xlsx"
    assert cells["edition"].date() == date(2025, 9, 30)
    assert b.frame["as_of_date"].unique().to_list() == [date(2025, 9, 30)]
    pe = b.frame.filter(pl.col("metric") == "operating_pe").sort("index_code")["value"].to_list()
    assert sorted(pe) == sorted(cells["pe"]) and 20.48 in pe  # SP400, SP500, SP600 P/E as in the cells
    assert health(b.notes) == []
    assert parse_payload(b.payload, b.format, b.name, b.dataset).equals(b.frame)
    assert discontinuation_notice(REAL) is None  # it mentions "discontinued … income" far below the top rows


def test_the_final_edition_says_the_source_ended(server, final_edition):
    assert edition_notice(final_edition) == NOTICE == discontinuation_notice(final_edition)
    serve(server, final_edition)
    (b,) = source().fetch("estimates", date(2026, 2, 2), None)
    assert health(b.notes) == [f"{ENDED}the edition announces the end of the report: {NOTICE!r}"]
    # its numbers still load, dated by their own edition: history, never today's numbers
    real = parse_payload(REAL, "spdji_eps_xlsx", "x.xlsx", "estimates")
    assert b.error is None and b.frame["as_of_date"].unique().to_list() == [date(2025, 9, 30)]
    joined = real.join(b.frame, on=["index_code", "as_of_date", "metric", "period"], how="full")
    assert joined.height == real.height == b.frame.height
    assert joined.select((pl.col("value") - pl.col("value_right")).abs().max()).item() < 1e-9


def test_a_file_that_stops_changing_goes_stale_then_ended(server, tmp_path):
    serve(server, REAL)

    def fetch(day: date):
        return source(state_dir=tmp_path).fetch("estimates", day, None)  # a new process each run

    (first,) = fetch(date(2025, 12, 31))
    assert health(first.notes) == []
    assert (tmp_path / "last-edition.xlsx").read_bytes() == REAL
    (later,) = fetch(date(2026, 1, 25))
    assert health(later.notes) == [f"{STALE}sp-500-eps-est.xlsx has not changed since 2025-12-31 (25 days)"]
    (ended,) = fetch(date(2026, 3, 2))
    assert health(ended.notes) == [
        f"{ENDED}sp-500-eps-est.xlsx has not changed since 2025-12-31 (61 days; 60 without a change mean "
        "the publisher stopped it)"]
    state = json.loads((tmp_path / "state.json").read_text())
    assert (state["changed_on"], state["checked_on"]) == ("2025-12-31", "2026-03-02")


def test_first_sight_dates_the_file_by_last_modified_and_a_404_keeps_saying_ended(server, tmp_path):
    serve(server, REAL, {"Last-Modified": "Sat, 31 Jan 2026 14:05:00 GMT"})
    (b,) = source(state_dir=tmp_path).fetch("estimates", date(2026, 4, 1), None)
    assert health(b.notes) == [
        f"{ENDED}sp-500-eps-est.xlsx has not changed since 2026-01-31 (60 days; 60 without a change mean "
        "the publisher stopped it)"]
    # later the publisher takes the file down: the kept edition is handed over again with the note
    server.clear()
    server.expect_request(PATH).respond_with_data("Not Found", status=404)
    (gone,) = source(state_dir=tmp_path).fetch("estimates", date(2026, 5, 4), None)
    assert gone.error is None and gone.payload == REAL  # the warehouse skips it as already landed
    assert health(gone.notes)[0].startswith(f"{ENDED}S&P DJI no longer serves sp-500-eps-est.xlsx (HTTP 404)")
    # without a kept edition the refusal is quarantined, with the same health note
    (bad,) = source(state_dir=tmp_path / "empty").fetch("estimates", date(2026, 5, 4), None)
    assert bad.error is not None and health(bad.notes)[0].startswith(f"{ENDED}S&P DJI no longer serves")
    assert source().fetch("holdings", date(2026, 5, 4), None) == []
