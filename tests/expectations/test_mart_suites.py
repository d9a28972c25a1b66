"""Mart suites: an `error` rule stops the run before anything is published; a `warn` rule reports."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from capspread.config import Config
from expectations.runner import validate_mart
from flows.load import MartRuleBroken, check_marts
from flows.nightly import RunResult
from warehouse.db import create_schema


def _spread_frame(spread_offset: float = 0.0) -> pl.DataFrame:
    small = [0.01, -0.02, 0.005]
    large = [0.004, -0.01, 0.002]
    return pl.DataFrame({
        "trade_date": [date(2025, 6, 9), date(2025, 6, 10), date(2025, 6, 11)],
        "pair": ["IWM/SPY"] * 3, "small_symbol": ["IWM"] * 3, "large_symbol": ["SPY"] * 3,
        "small_return": small, "large_return": large,
        "spread": [s - lg + (spread_offset if i == 1 else 0.0) for i, (s, lg) in enumerate(zip(small, large))],
        "relative_strength": [1.0, 0.99, 0.995], "small_close": [1.0] * 3, "large_close": [1.0] * 3,
    })


def test_spread_rule_holds_and_breaks():
    assert validate_mart("size_spread_daily", _spread_frame()).errors == []
    broken = validate_mart("size_spread_daily", _spread_frame(spread_offset=0.001)).errors
    assert [c.column for c in broken] == ["_spread_error"]
    assert broken[0].unexpected_count == 1


def test_an_error_rule_stops_the_run_and_is_recorded():
    con = duckdb.connect()
    create_schema(con)
    run = RunResult(run_id="t-err", as_of=date(2025, 6, 11), profile="sample")
    with pytest.raises(MartRuleBroken, match="marts.size_spread_daily"):
        check_marts(con, Config.load(), run, {"size_spread_daily": _spread_frame(spread_offset=0.5)})
    rows = con.execute("select severity, success from meta.validations where run_id = 't-err' "
                       "and column_name = '_spread_error'").fetchall()
    assert rows == [("error", False)]


def test_a_warn_rule_reports_and_lets_the_run_publish():
    con = duckdb.connect()
    create_schema(con)
    run = RunResult(run_id="t-warn", as_of=date(2025, 6, 11), profile="sample")
    frame = pl.DataFrame({
        "as_of_date": [date(2025, 9, 30)], "index_code": ["SP500"], "operating_pe": [250.0], "growth_5y": [0.1],
        "peg": [25.0], "operating_eps_current_year": [1.0], "operating_eps_next_year": [1.0],
        "revision_since_prior": [None], "revision_current_year_since_prior": [None],
        "operating_eps_forward_12m": [1.0], "pe_gap_vs_sp500": [0.0],
    }, schema_overrides={"revision_since_prior": pl.Float64, "revision_current_year_since_prior": pl.Float64})
    check_marts(con, Config.load(), run, {"earnings_outlook": frame})  # does not raise
    warned = [c for o in run.mart_outcomes for c in o.warnings]
    assert [c.column for c in warned] == ["operating_pe"]
    assert con.execute("select count(*) from meta.validations where run_id = 't-warn' and severity = 'warn' "
                       "and not success").fetchall()[0][0] == 1


def _backdrop(scale: float) -> pl.DataFrame:
    """marts.rate_backdrop rows from the recorded FRED FEDFUNDS answer (monthly, percent), 2020–2022."""
    import json
    from pathlib import Path

    body = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "cpi" /
                       "fred_series_observations_fedfunds_2023.json").read_text())
    rows = [o for o in body["observations"] if "2020-01-01" <= o["date"] < "2023-01-01" and o["value"] != "."]
    return pl.DataFrame({
        "month": [date.fromisoformat(o["date"]) for o in rows],
        "fed_funds": [float(o["value"]) * scale for o in rows],
        "treasury_2y": [None] * len(rows), "treasury_2y_minus_fed_funds": [None] * len(rows),
    }, schema_overrides={"treasury_2y": pl.Float64, "treasury_2y_minus_fed_funds": pl.Float64})


def test_rate_backdrop_rates_are_fractions():
    assert validate_mart("rate_backdrop", _backdrop(0.01)).errors == []
    percent = _backdrop(1.0)  # percent left unconverted
    broken = validate_mart("rate_backdrop", percent).errors
    assert [c.column for c in broken] == ["fed_funds"]
    # the months whose rate in percent lies above the 0.30 bound (2020's near-zero months do not)
    assert broken[0].unexpected_count == sum(v > 0.30 for v in percent["fed_funds"]) > 0
