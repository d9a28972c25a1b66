"""The brief on tiny snapshots: missing marts, stale data, down weeks, point-in-time cuts."""

from __future__ import annotations

import json
import re
from datetime import date

from conftest import run_cli
from tiny_marts import board, tiny_home

from capspread.brief import build_brief

WED = date(2025, 6, 11)
FRI = date(2025, 6, 13)


def _brief(tmp_path, tables, as_of=None, **kw):
    home = tiny_home(tmp_path, tables, **kw)
    return build_brief(home / "published" / "capspread.duckdb", as_of)


def _prices(day=WED, iwm_wtd=0.012, spy_wtd=0.004, up10=9, iwm_ytd=-0.05, spy_ytd=0.03, spy_record=None):
    return [
        board(day, "IWM", close=200.0, wtd=iwm_wtd, ytd=iwm_ytd, up10=up10),
        board(day, "SPY", close=600.0, wtd=spy_wtd, ytd=spy_ytd, up10=6, record=spy_record),
    ]


def test_all_marts_empty_gives_no_sentence_and_no_error(tmp_path):
    b = _brief(tmp_path, {}, date(2025, 6, 11))
    assert b.facts == []
    assert {o["topic"] for o in b.omitted} == {"prices", "short_interest", "cpi", "estimates"}
    assert b.text() == "No market data is available in the published snapshot for this date."


def test_cli_on_an_empty_snapshot_exits_zero(tmp_path):
    home = tiny_home(tmp_path, {})
    proc = run_cli(home, "brief", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["facts"] == {}


def test_prices_only_leaves_the_other_topics_out(tmp_path):
    b = _brief(tmp_path, {"marts.market_scoreboard": _prices()})
    assert b.session_date == WED and (b.small_symbol, b.large_symbol) == ("IWM", "SPY")
    topics = [f.topic for f in b.facts]
    assert topics == ["week_to_date", "leader", "winning_weeks", "year_to_date", "record_high"]
    assert {o["topic"] for o in b.omitted} == {"short_interest", "cpi", "estimates"}
    text = b.text()
    assert "CPI" not in text and "Short interest" not in text and "estimates" not in text
    assert "the iShares Russell 2000 ETF (IWM) rose 1.2% and the SPDR S&P 500 ETF Trust (SPY) 0.4%." in text
    assert "IWM led, outpacing SPY; its margin over SPY is 0.8 percentage points." in text
    # no session in the snapshot closed at the record: its date is not invented
    assert text.endswith("SPY closed at 600.00, 4.8% below its record close of 630.00.")
    assert "IWM is on track for its ninth winning week in the last 10, up 1.2% so far this week." in text
    # 200 / (1 - 0.05) = 210.526...; needs 5.3% to get back there
    assert "IWM is down 5.0% since the end of 2024 and needs to gain 5.3% to erase its year-to-date loss" in text


def test_missing_tables_are_read_as_empty(tmp_path):
    b = _brief(tmp_path, {"marts.market_scoreboard": _prices()}, ddl=False)
    assert [f.topic for f in b.facts][:2] == ["week_to_date", "leader"]
    assert {o["topic"] for o in b.omitted} == {"short_interest", "cpi", "estimates"}


def test_a_down_week_that_ended_and_a_record_close(tmp_path):
    rows = _prices(day=FRI, iwm_wtd=-0.0217, spy_wtd=-0.001, up10=7, iwm_ytd=0.021, spy_record=600.0)
    weekly = [{"week_end": FRI, "symbol": s, "week_start": date(2025, 6, 9), "close": 1.0, "weekly_return": -0.01,
               "is_up_week": False, "up_weeks_last_10": 7, "up_streak": 0, "is_complete": True} for s in ("IWM", "SPY")]
    b = _brief(tmp_path, {"marts.market_scoreboard": rows, "marts.index_weekly": weekly})
    text = b.text()
    assert text.startswith("For the week ended Friday, June 13, 2025, the SPDR S&P 500 ETF Trust (SPY) fell 0.1% "
                           "and the iShares Russell 2000 ETF (IWM) 2.2%.")
    assert "SPY held up best. IWM trailed SPY; its shortfall against SPY is 2.1 percentage points." in text
    assert "IWM ended the week down 2.2%, leaving it with seven winning weeks in the last 10." in text
    assert "IWM is up 2.1% since the end of 2024, against a 3.0% gain for SPY." in text
    assert "SPY closed at a record 600.00." in text


def test_a_weekend_date_reads_the_friday_and_a_far_date_says_prices_are_stale(tmp_path):
    tiny_home(tmp_path, {"marts.market_scoreboard": _prices(day=FRI)})
    db = tmp_path / "published" / "capspread.duckdb"
    sunday = build_brief(db, date(2025, 6, 15))
    assert sunday.session_date == FRI and sunday.fact("week_to_date") is not None
    later = build_brief(db, date(2025, 7, 1))
    assert [f.topic for f in later.facts] == ["prices"]
    assert later.facts[0].status == "stale"
    assert later.text() == "Price data is stale: the latest close on file is from June 13, 2025."


def _si(day, small_change, large_change):
    return [{"settlement_date": day, "bucket": b, "symbols": 10, "short_interest": 5_000_000,
             "prior_short_interest": 4_900_000, "short_interest_change": c, "median_days_to_cover": dtc,
             "vw_days_to_cover": dtc, "pct_symbols_decreasing": 0.4, "holdings_as_of": day,
             "membership_flag": "in_force"} for b, c, dtc in (("small", small_change, 4.26), ("large", large_change, 1.5))]


def test_short_interest_fresh_and_stale(tmp_path):
    fresh = _brief(tmp_path / "a", {"marts.market_scoreboard": _prices(),
                                    "marts.short_interest_by_bucket": _si(date(2025, 5, 30), 0.0234, -0.011)})
    assert fresh.fact("short_interest").sentence == (
        "Short interest at the May 30, 2025 settlement rose 2.3% in small caps (median days to cover 4.3) "
        "and fell 1.1% in large caps (median days to cover 1.5).")
    later = _si(date(2025, 5, 30), 0.0234, -0.011)
    for row in later:
        row.update(membership_flag="later_snapshot", holdings_as_of=date(2026, 5, 5))
    caveat = _brief(tmp_path / "c", {"marts.market_scoreboard": _prices(), "marts.short_interest_by_bucket": later})
    assert caveat.fact("short_interest").sentence.endswith(
        "(size buckets from holdings of May 5, 2026, after the settlement).")
    stale = _brief(tmp_path / "b", {"marts.market_scoreboard": _prices(),
                                    "marts.short_interest_by_bucket": _si(date(2025, 1, 15), 0.0234, -0.011)})
    fact = stale.fact("short_interest")
    assert fact.status == "stale"
    assert fact.sentence == "Short-interest data is stale: the latest settlement on file, January 15, 2025, is 147 days old."
    assert "%" not in fact.sentence  # a stale reading is not told as news


def _cpi(month, yoy, core, core3m, regime):
    return {"ref_month": month, "headline_index": 100.0, "core_index": 100.0, "headline_yoy": yoy, "core_yoy": core,
            "headline_mom_annualized": None, "core_mom_annualized": None, "headline_3m_annualized": None,
            "core_3m_annualized": core3m, "headline_nsa_yoy": yoy, "core_nsa_yoy": None, "regime": regime}


def test_history_from_a_later_snapshot_uses_only_what_was_public(tmp_path):
    later_run = [{"run_id": "r", "flow": "nightly", "profile": "sample", "as_of_date": date(2025, 9, 1),
                  "status": "success", "exit_code": 0, "published": True}]
    tables = {
        "meta.runs": later_run,
        "marts.market_scoreboard": _prices() + _prices(day=date(2025, 8, 29)),
        "marts.inflation_monthly": [_cpi(date(2025, 4, 1), 0.0233, 0.0278, 0.021, "disinflation"),
                                    _cpi(date(2025, 5, 1), 0.0238, 0.0277, 0.017, "stable")],
        "marts.short_interest_by_bucket": _si(date(2025, 5, 30), 0.0234, -0.011) + _si(date(2025, 6, 6), 0.5, 0.5),
        "marts.earnings_outlook": [{"as_of_date": date(2025, 6, 30), "index_code": "SP500", "operating_pe": 22.0}],
    }
    b = _brief(tmp_path, tables, WED)
    assert b.snapshot_as_of_date == date(2025, 9, 1)
    # May CPI is released on the 15th of June by the configured lag: April is the print of June 11
    assert b.fact("cpi").sentence.startswith("April 2025 CPI rose 2.3% from a year earlier, with core prices up 2.8%")
    # the June 6 settlement is published nine days later: May 30 is the latest public one
    assert "May 30, 2025 settlement" in b.fact("short_interest").sentence
    assert b.fact("estimates") is None and "estimates" in {o["topic"] for o in b.omitted}
    db = tmp_path / "published" / "capspread.duckdb"
    assert "May 30, 2025 settlement" in build_brief(db, date(2025, 6, 14)).fact("short_interest").sentence
    assert "June 6, 2025 settlement rose 50.0%" in build_brief(db, date(2025, 6, 15)).fact("short_interest").sentence
    # a snapshot published for the brief's own date is taken as it is
    own = _brief(tmp_path / "own", {k: v for k, v in tables.items() if k != "meta.runs"} | {
        "marts.market_scoreboard": _prices()}, WED)
    assert own.snapshot_as_of_date == WED
    assert "June 6, 2025 settlement" in own.fact("short_interest").sentence


def test_cpi_regime_and_staleness(tmp_path):
    tables = {"marts.market_scoreboard": _prices(),
              "marts.inflation_monthly": [_cpi(date(2025, 4, 1), 0.0233, 0.0278, 0.021, "disinflation")]}
    fact = _brief(tmp_path / "a", tables).fact("cpi")
    assert fact.sentence == ("April 2025 CPI rose 2.3% from a year earlier, with core prices up 2.8%; over three "
                             "months core ran at a 2.1% annualized pace. The inflation regime is disinflation: core "
                             "inflation is above the target band but slowing.")
    tables["marts.inflation_monthly"] = [_cpi(date(2025, 1, 1), 0.03, 0.033, 0.038, "reheating")]
    later = _si(date(2025, 5, 30), 0.0234, -0.011)
    for row in later:
        row.update(membership_flag="later_snapshot", holdings_as_of=date(2026, 5, 5))
    caveat = _brief(tmp_path / "c", {"marts.market_scoreboard": _prices(), "marts.short_interest_by_bucket": later})
    assert caveat.fact("short_interest").sentence.endswith(
        "(size buckets from holdings of May 5, 2026, after the settlement).")
    stale = _brief(tmp_path / "b", tables).fact("cpi")
    assert stale.status == "stale" and stale.sentence == "CPI data is stale: the latest month on file is January 2025."


def test_estimates_with_revisions_since_the_prior_snapshot(tmp_path):
    def row(day, code, pe, rev):
        return {"as_of_date": day, "index_code": code, "operating_pe": pe, "revision_since_prior": rev}
    tables = {"marts.market_scoreboard": _prices(), "marts.earnings_outlook": [
        row(date(2025, 5, 1), "SP500", 21.0, None), row(date(2025, 5, 1), "SP600", 15.0, None),
        row(date(2025, 6, 1), "SP500", 21.94, 0.0123), row(date(2025, 6, 1), "SP600", 15.05, -0.0049),
    ]}
    fact = _brief(tmp_path, tables).fact("estimates")
    assert fact.sentence == (
        "In the estimates of June 1, 2025, the S&P 600 traded at 15.1 times operating earnings, the S&P 500 at 21.9. "
        "Next-year operating EPS estimates were revised since the prior snapshot of May 1, 2025: "
        "the S&P 600 down 0.5% and the S&P 500 up 1.2%.")
    assert fact.fields["prior_edition"] == date(2025, 5, 1)
    one = _brief(tmp_path / "one", {"marts.earnings_outlook": tables["marts.earnings_outlook"][:2]}, date(2025, 5, 2))
    assert one.fact("estimates").sentence.endswith("There is no earlier estimates snapshot to measure revisions against.")
    assert not re.search(r"revised", one.text())
