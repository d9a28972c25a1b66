"""`capspread brief` on the real sample as of 2025-06-11: every number against the marts (recomputed
here with SQL from closes and index levels, not read from the derived columns) and IWM against the
real yfinance closes."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pytest
from conftest import run_cli
from real_closes import closes, last_close_before

AS_OF = date(2025, 6, 11)


def pct(fraction: float) -> str:
    """Reference formatting for the tests: |x| in percent, one decimal, half up."""
    d = (abs(Decimal(str(fraction))) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{d}%"


@pytest.fixture(scope="module")
def sample(home_2025_06_11):
    home, proc = home_2025_06_11
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = run_cli(home, "brief", "--as-of", "2025-06-11")
    assert text.returncode == 0, text.stderr
    js = run_cli(home, "brief", "--as-of", "2025-06-11", "--format", "json")
    assert js.returncode == 0, js.stderr
    con = duckdb.connect(str(home / "published" / "capspread.duckdb"), read_only=True)
    yield text.stdout, json.loads(js.stdout), con
    con.close()


def _q(con, sql, *params):
    return con.execute(sql, list(params)).fetchone()


def _close_on(con, symbol, day):
    return _q(con, "select close from marts.market_scoreboard where symbol = ? and as_of_date = ?", symbol, day)[0]


def _last_close_before(con, symbol, day):
    return _q(con, "select close from marts.market_scoreboard where symbol = ? and as_of_date < ? "
                   "order by as_of_date desc limit 1", symbol, day)[0]


def test_week_to_date_moves_and_who_was_outpaced(sample):
    text, js, con = sample
    monday = AS_OF - timedelta(days=AS_OF.weekday())
    symbols = [r[0] for r in con.execute(
        "select distinct symbol from marts.market_scoreboard where as_of_date = ?", [AS_OF]).fetchall()]
    wtd = {s: _close_on(con, s, AS_OF) / _last_close_before(con, s, monday) - 1 for s in symbols}
    assert set(wtd) == {"SPY", "IWM", "QQQ", "DIA", "MDY"}  # no index in the sample: the ETFs
    first = text.split(". ")[0]
    assert first.startswith("Week to date through Wednesday, June 11, 2025")
    for s, r in wtd.items():
        assert re.search(rf"\({s}\) (rose |fell )?{re.escape(pct(r))}", first), (s, pct(r), first)
    ranked = sorted(wtd, key=wtd.get, reverse=True)
    assert [f["symbol"] for f in js["facts"]["week_to_date"]["symbols"]] == ranked
    # IWM led the group: it outpaced every other symbol
    assert ranked[0] == "IWM"
    assert "IWM led, outpacing QQQ, SPY, DIA and MDY" in text
    assert js["facts"]["leader"]["outpaced"] == ranked[1:]
    gap = wtd["IWM"] - wtd["SPY"]
    assert f"its margin over SPY is {pct(gap)[:-1]} percentage points" in text


def test_winning_weeks_of_the_small_cap_counted_from_weekly_closes(sample):
    text, js, con = sample
    count = _q(con, """
        with c as (select as_of_date d, close from marts.market_scoreboard where symbol = 'IWM' and as_of_date <= ?),
             w as (select date_trunc('week', d) wk, arg_max(close, d) close from c group by 1),
             r as (select wk, close / lag(close) over (order by wk) - 1 ret from w)
        select count(*) filter (where ret > 0) from (select * from r order by wk desc limit 10)""", AS_OF)[0]
    assert count == 9
    assert "IWM is on track for its ninth winning week in the last 10, up 0.8% so far this week." in text
    fact = js["facts"]["winning_weeks"]
    assert fact["up_weeks_last_10"] == count and fact["week_complete"] is False


def test_winning_weeks_and_ytd_against_the_real_iwm_closes(sample):
    text, js, _ = sample
    c = closes("IWM")
    # ISO weeks from the real CSV: the last 10 weeks ending with the as-of week
    weeks = {}
    for d in sorted(c):
        if d <= AS_OF:
            weeks[d.isocalendar()[:2]] = c[d]
    keys = sorted(weeks)
    rets = [weeks[k] / weeks[p] - 1 for p, k in zip(keys, keys[1:])][-10:]
    assert sum(r > 0 for r in rets) == 9
    wtd = c[AS_OF] / last_close_before(c, date(2025, 6, 9)) - 1
    ytd = c[AS_OF] / c[date(2024, 12, 31)] - 1
    needed = c[date(2024, 12, 31)] / c[AS_OF] - 1
    assert (pct(wtd), pct(ytd), pct(needed)) == ("0.8%", "3.3%", "3.4%")
    assert (f"IWM is down {pct(ytd)} since the end of 2024 and needs to gain {pct(needed)} "
            "to erase its year-to-date loss") in text
    assert js["facts"]["year_to_date"]["ytd_return"] == pytest.approx(ytd, abs=1e-12)
    assert js["facts"]["year_to_date"]["gain_to_erase_loss"] == pytest.approx(needed, abs=1e-12)


def test_year_to_date_of_the_large_cap_and_its_record_high(sample):
    text, js, con = sample
    spy = _close_on(con, "SPY", AS_OF)
    ytd = spy / _last_close_before(con, "SPY", date(2025, 1, 1)) - 1
    assert f"against a {pct(ytd)} gain for SPY" in text
    record, when = _q(con, "select max(close), arg_max(as_of_date, close) from marts.market_scoreboard "
                           "where symbol = 'SPY' and as_of_date <= ?", AS_OF)
    below = spy / record - 1
    assert f"SPY closed at {spy:,.2f}, {pct(below)} below its record close of {record:,.2f} set on February 19, 2025." in text
    assert when == date(2025, 2, 19)
    fact = js["facts"]["record_high"]
    assert fact["record_date"] == "2025-02-19" and fact["record_high"] == pytest.approx(record)


def test_cpi_sentence_is_the_latest_print_public_on_the_date(sample):
    text, js, con = sample
    # May's CPI is released after June 11 by the conservative rule: April is the latest print
    month, level, core = _q(con, "select max(ref_month), arg_max(headline_index, ref_month), "
                                 "arg_max(core_index, ref_month) from marts.inflation_monthly "
                                 "where headline_index is not null")
    assert month == date(2025, 4, 1)
    level_ago, core_ago = _q(con, "select headline_index, core_index from marts.inflation_monthly "
                                  "where ref_month = date '2024-04-01'")
    headline_yoy, core_yoy = level / level_ago - 1, core / core_ago - 1
    assert (f"April 2025 CPI rose {pct(headline_yoy)} from a year earlier, with core prices up {pct(core_yoy)}"
            in text)
    assert "The inflation regime is disinflation" in text
    assert js["facts"]["cpi"]["regime"] == "disinflation"


def test_missing_marts_leave_their_sentences_out(sample):
    text, js, con = sample
    # no holdings and no estimates edition are public on 2025-06-11 in the sample
    assert _q(con, "select count(*) from marts.short_interest_by_bucket")[0] == 0
    assert _q(con, "select count(*) from marts.earnings_outlook")[0] == 0
    assert "Short interest" not in text and "estimates" not in text.lower()
    assert {o["topic"] for o in js["omitted"]} == {"short_interest", "estimates"}


def test_json_gives_the_same_facts_as_the_text(sample):
    text, js, _ = sample
    assert js["text"] == text.rstrip("\n")
    assert " ".join(js["sentences"]) == text.replace("\n\n", " ").strip()
    assert [f["sentence"] for f in js["facts"].values()] == js["sentences"]
    assert js["as_of_date"] == js["session_date"] == "2025-06-11"
    assert (js["small_symbol"], js["large_symbol"]) == ("IWM", "SPY")
    # every return in the fields is told in its sentence, rounded the reporter's way
    for s in js["facts"]["week_to_date"]["symbols"]:
        assert pct(s["wtd_return"]) in js["facts"]["week_to_date"]["sentence"]
    ww = js["facts"]["winning_weeks"]
    assert pct(ww["wtd_return"]) in ww["sentence"]
    ytd = js["facts"]["year_to_date"]
    for key in ("ytd_return", "gain_to_erase_loss", "large_ytd_return"):
        assert pct(ytd[key]) in ytd["sentence"], key
    rh = js["facts"]["record_high"]
    assert pct(rh["pct_from_record_high"]) in rh["sentence"]
    cpi = js["facts"]["cpi"]
    for key in ("headline_yoy", "core_yoy", "core_3m_annualized"):
        assert pct(cpi[key]) in cpi["sentence"], key
    # percentages in the text have exactly one decimal
    assert re.findall(r"\d%", text) and not re.findall(r"\d\.\d\d+%", text)
    assert all(re.fullmatch(r"\d+\.\d", p) for p in re.findall(r"([\d.]+)%", text))
