"""transforms.consensus: per-company forward EPS aggregated by holdings weight, numbers by hand.

The small frames are written here (two funds, five companies); every expected number is worked
out below with plain arithmetic. One check uses the recorded Yahoo AAPL answer (tests/fixtures/api2,
provenance in NOTICE), and the last ones run the project's DDL and merge SQL on a real DuckDB.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest

from sources.formats import yahoo_earnings_trend as fmt
from transforms.consensus import OUTLOOK_COLUMNS, consensus_outlook, forward_eps, with_bottom_up
from warehouse import db

D1, D2 = date(2026, 6, 22), date(2026, 6, 23)
FY0_END, FY1_END = date(2026, 9, 3), date(2027, 9, 3)  # 73 days after D1: the current year weighs 73/365 = 0.2
BUCKETS = {"IWM": "small", "IVV": "large"}
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "api2" / "yahoo" / "quoteSummary-earningsTrend-AAPL.json"


def holdings() -> pl.LazyFrame:
    rows = [
        # fund, day, symbol, asset class, market value, weight, shares  (price = value / shares)
        ("IVV", date(2026, 6, 19), "AAPL", "Equity", 600.0, 0.6, 3.0),  # price 200
        ("IVV", date(2026, 6, 19), "MSFT", "Equity", 400.0, 0.4, 1.0),  # price 400
        ("IVV", date(2026, 6, 19), "USD", "Cash", 5.0, 0.001, 5.0),  # not a member
        ("IWM", date(2026, 6, 19), "BE", "Equity", 500.0, 0.5, 10.0),  # price 50
        ("IWM", date(2026, 6, 19), "CRDO", "Equity", 300.0, 0.3, 10.0),  # price 30
        ("IWM", date(2026, 6, 19), "XYZ", "Equity", 200.0, 0.2, 20.0),  # price 10, estimate too old
        ("IWM", date(2026, 6, 30), "BE", "Equity", 1.0, 1.0, 1.0),  # a later snapshot: not in force yet
        ("IJH", date(2026, 6, 19), "MID", "Equity", 1.0, 1.0, 1.0),  # not a bucket fund here
    ]
    return pl.LazyFrame(
        [{"fund": f, "as_of_date": d, "symbol": s, "name": s, "sector": "x", "asset_class": a, "market_value": v,
          "weight": w, "shares": n} for f, d, s, a, v, w, n in rows])


def estimate(symbol: str, day: date, fy0: tuple, fy1: tuple) -> list[dict]:
    """Rows for 0y and +1y: (now, 7 days ago, 30 days ago) each; 60/90 days ago unknown."""
    out = []
    for period, end, (now, d7, d30) in (("0y", FY0_END, fy0), ("+1y", FY1_END, fy1)):
        out.append({"symbol": symbol, "as_of_date": day, "period": period, "period_end": end, "eps_avg": now,
                    "eps_7d_ago": d7, "eps_30d_ago": d30, "eps_60d_ago": None, "eps_90d_ago": None})
    out.append({"symbol": symbol, "as_of_date": day, "period": "0q", "period_end": date(2026, 6, 30), "eps_avg": 99.0,
                "eps_7d_ago": 1.0, "eps_30d_ago": 1.0, "eps_60d_ago": None, "eps_90d_ago": None})  # quarters: unused
    return out


def estimates() -> pl.LazyFrame:
    rows = (
        estimate("AAPL", D1, (10.0, 10.0, 10.0), (12.0, 12.0, 12.2))
        + estimate("MSFT", D1, (8.0, 8.0, 8.5), (10.0, 10.0, 10.5))
        + estimate("BE", D1, (-1.0, -1.0, -1.0), (2.0, 2.0, 2.5))
        + estimate("CRDO", D1, (3.0, 3.0, 3.0), (4.0, 4.0, 4.5))
        + estimate("XYZ", date(2026, 6, 1), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))  # 21 days before D1: stale
        + estimate("BE", D2, (-1.0, -1.0, -1.0), (3.0, 2.0, 2.5))  # BE observed again the next day
    )
    return pl.LazyFrame(rows, schema_overrides={"eps_60d_ago": pl.Float64, "eps_90d_ago": pl.Float64})


def row(frame: pl.DataFrame, day: date, fund: str) -> dict:
    (r,) = frame.filter((pl.col("as_of_date") == day) & (pl.col("index_code") == fund)).iter_rows(named=True)
    return r


def test_forward_eps_blend_of_the_recorded_aapl_answer():
    body = json.dumps(json.loads(FIX.read_text())["response"]["bodyJson"]).encode()
    (r,) = forward_eps(fmt.parse_json(body, "AAPL_2021-04-07.json").lazy()).collect().iter_rows(named=True)
    # fiscal 2021 ends 2021-09-30: 176 of 365 days still ahead of 2021-04-07
    w = 176 / 365
    assert r["fy0_weight"] == pytest.approx(w)
    assert r["forward_eps"] == pytest.approx(w * 4.46 + (1 - w) * 4.70)  # 0y and +1y avg
    assert r["forward_eps_7d_ago"] == pytest.approx(w * 4.45 + (1 - w) * 4.69)
    assert r["forward_eps_90d_ago"] == pytest.approx(w * 3.99 + (1 - w) * 4.36)


def test_large_bucket_by_hand():
    out = consensus_outlook(estimates(), holdings(), BUCKETS, min_coverage=0.75).collect()
    ivv = row(out, D1, "IVV")
    # AAPL fwd = 0.2*10 + 0.8*12 = 11.6, 30 days before 0.2*10 + 0.8*12.2 = 11.76; price 200, weight 0.6
    # MSFT fwd = 0.2*8 + 0.8*10 = 9.6, 30 days before 0.2*8.5 + 0.8*10.5 = 10.1; price 400, weight 0.4
    yield_ = (0.6 * 11.6 / 200 + 0.4 * 9.6 / 400) / 1.0  # 0.0444
    assert (ivv["bucket"], ivv["holdings_as_of"]) == ("large", date(2026, 6, 19))
    assert (ivv["names"], ivv["names_covered"]) == (2, 2)
    assert ivv["coverage"] == pytest.approx(1.0) and ivv["suppressed"] is False
    assert ivv["forward_earnings_yield"] == pytest.approx(0.0444)
    assert ivv["forward_pe"] == pytest.approx(1 / yield_) == pytest.approx(22.5225225)
    change = 0.6 * (11.6 - 11.76) / 200 + 0.4 * (9.6 - 10.1) / 400  # -0.00098
    base = 0.6 * 11.76 / 200 + 0.4 * 10.1 / 400  # 0.04538
    assert ivv["eps_revision_30d"] == pytest.approx(change / base) == pytest.approx(-0.0215954)
    assert (ivv["up_share_30d"], ivv["down_share_30d"]) == (0.0, 1.0)  # both revised down
    assert ivv["eps_revision_7d"] == pytest.approx(0.0) and (ivv["up_share_7d"], ivv["down_share_7d"]) == (0.0, 0.0)
    assert ivv["eps_revision_60d"] is None and ivv["up_share_90d"] is None  # no values that far back
    assert ivv["forward_pe_gap_vs_large"] == pytest.approx(0.0)


def test_small_bucket_by_hand_with_a_loss_maker_and_a_stale_name():
    out = consensus_outlook(estimates(), holdings(), BUCKETS, min_coverage=0.75).collect()
    iwm = row(out, D1, "IWM")
    # BE fwd = 0.2*(-1) + 0.8*2 = 1.4 (30 days before: -0.2 + 0.8*2.5 = 1.8); price 50, weight 0.5
    # CRDO fwd = 0.2*3 + 0.8*4 = 3.8 (30 days before: 0.6 + 0.8*4.5 = 4.2); price 30, weight 0.3
    # XYZ (weight 0.2): its only estimate is 21 days old, more than the 10 allowed: not covered
    assert (iwm["names"], iwm["names_covered"]) == (3, 2)
    assert iwm["coverage"] == pytest.approx(0.8)
    yield_ = (0.5 * 1.4 / 50 + 0.3 * 3.8 / 30) / 0.8  # (0.014 + 0.038) / 0.8 = 0.065
    assert iwm["forward_earnings_yield"] == pytest.approx(0.065) == pytest.approx(yield_)
    assert iwm["forward_pe"] == pytest.approx(1 / 0.065)
    change = 0.5 * (1.4 - 1.8) / 50 + 0.3 * (3.8 - 4.2) / 30  # -0.008
    base = 0.5 * 1.8 / 50 + 0.3 * 4.2 / 30  # 0.06
    assert iwm["eps_revision_30d"] == pytest.approx(change / base) == pytest.approx(-0.1333333)
    assert (iwm["up_share_30d"], iwm["down_share_30d"]) == (0.0, 1.0)
    assert iwm["forward_pe_gap_vs_large"] == pytest.approx(1 / 0.065 - 1 / 0.0444)
    assert iwm["oldest_estimate"] == D1
    # "estimates revised down for both small and large caps, small to a greater extent"
    ivv = row(out, D1, "IVV")
    assert iwm["eps_revision_30d"] < ivv["eps_revision_30d"] < 0


def test_next_day_uses_the_newest_estimate_of_each_name():
    out = consensus_outlook(estimates(), holdings(), BUCKETS, min_coverage=0.75).collect()
    # 2026-06-01 (XYZ's observation) has no row: no holdings snapshot was in force yet
    assert out.filter(pl.col("index_code") == "IWM")["as_of_date"].to_list() == [D1, D2]
    iwm = row(out, D2, "IWM")
    # BE re-observed on D2: 72 of 365 days of fiscal 2026 left; CRDO still from D1 (one day old, fresh)
    be = 72 / 365 * -1.0 + 293 / 365 * 3.0
    be_7d = 72 / 365 * -1.0 + 293 / 365 * 2.0
    assert iwm["forward_earnings_yield"] == pytest.approx((0.5 * be / 50 + 0.3 * 3.8 / 30) / 0.8)
    assert iwm["up_share_7d"] == pytest.approx(0.5) and iwm["down_share_7d"] == pytest.approx(0.0)  # BE up, CRDO flat
    assert iwm["eps_revision_7d"] == pytest.approx((0.5 * (be - be_7d) / 50) / (0.5 * be_7d / 50 + 0.3 * 3.8 / 30))
    assert iwm["oldest_estimate"] == D1
    # IVV's names were observed on D1 only: still fresh on D2, same aggregate
    assert row(out, D2, "IVV")["forward_pe"] == pytest.approx(row(out, D1, "IVV")["forward_pe"])


def test_suppressed_below_the_configured_coverage_and_fresh_window():
    out = consensus_outlook(estimates(), holdings(), BUCKETS, min_coverage=0.85).collect()
    iwm, ivv = row(out, D1, "IWM"), row(out, D1, "IVV")
    assert iwm["suppressed"] is True and iwm["coverage"] == pytest.approx(0.8)
    assert all(iwm[c] is None for c in ("forward_earnings_yield", "forward_pe", "eps_revision_7d", "up_share_30d"))
    assert ivv["suppressed"] is False and ivv["forward_pe"] == pytest.approx(22.5225225)
    # allow 21-day-old estimates: XYZ counts (fwd 1.0 at price 10)
    wide = row(consensus_outlook(estimates(), holdings(), BUCKETS, max_age_days=21).collect(), D1, "IWM")
    assert wide["coverage"] == pytest.approx(1.0)
    assert wide["forward_earnings_yield"] == pytest.approx(0.5 * 1.4 / 50 + 0.3 * 3.8 / 30 + 0.2 * 1.0 / 10)


def test_weights_come_from_market_values_not_the_rounded_percentages():
    # iShares rounds "Weight (%)" to 0.01 %: a small holding shows 0.00 but has a market value
    small = pl.LazyFrame([
        {"fund": "IWM", "as_of_date": date(2026, 6, 19), "symbol": "BIG", "name": "b", "sector": "x",
         "asset_class": "Equity", "market_value": 999.0, "weight": 0.999, "shares": 100.0},  # price 9.99
        {"fund": "IWM", "as_of_date": date(2026, 6, 19), "symbol": "TINY", "name": "t", "sector": "x",
         "asset_class": "Equity", "market_value": 1.0, "weight": 0.0, "shares": 1.0},  # price 1
    ])
    est = estimates().filter(pl.col("symbol") == "CRDO").with_columns(symbol=pl.lit("TINY"))  # fwd 3.8
    r = row(consensus_outlook(est, small, {"IWM": "small"}, min_coverage=0.0).collect(), D1, "IWM")
    assert (r["names"], r["names_covered"]) == (2, 1)
    assert r["coverage"] == pytest.approx(1.0 / 1000.0)  # TINY's share of the market value
    assert r["forward_earnings_yield"] == pytest.approx(3.8 / 1.0)


def test_earnings_outlook_gains_the_bottom_up_rows():
    editions = pl.LazyFrame({"as_of_date": [date(2025, 9, 30)] * 2, "index_code": ["SP500", "SP600"],
                             "operating_pe": [22.47, 20.48]})
    out = with_bottom_up(editions, consensus_outlook(estimates(), holdings(), BUCKETS, min_coverage=0.75)).collect()
    assert out.filter(pl.col("method") == "edition")["index_code"].to_list() == ["SP500", "SP600"]
    bottom = out.filter((pl.col("method") == "bottom_up") & (pl.col("as_of_date") == D1)).sort("index_code")
    assert bottom["index_code"].to_list() == ["IVV", "IWM"] and bottom["bucket"].to_list() == ["large", "small"]
    assert bottom["operating_pe"].to_list() == [None, None]  # a forward P/E is not the edition's P/E
    assert bottom["forward_pe"].to_list() == pytest.approx([1 / 0.0444, 1 / 0.065])
    assert set(OUTLOOK_COLUMNS) <= set(out.columns)
    # the question of the issue is one query over a date range
    both_down = out.filter((pl.col("method") == "bottom_up") & pl.col("as_of_date").is_between(D1, D1)).select(
        "index_code", "eps_revision_30d", "down_share_30d")
    assert both_down.filter(pl.col("eps_revision_30d") < 0).height == 2


def test_ddl_and_merge_sql_fit_the_frames():
    con = duckdb.connect()
    db.create_schema(con)
    db.create_schema(con)  # idempotent
    out = consensus_outlook(estimates(), holdings(), BUCKETS).collect()
    cols = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = 'consensus_outlook' "
        "ORDER BY column_index").fetchall()]
    assert cols == out.columns
    con.register("stage", out.to_arrow())
    con.execute("INSERT INTO marts.consensus_outlook BY NAME SELECT * FROM stage")
    con.unregister("stage")
    editions = pl.DataFrame({"as_of_date": [date(2025, 9, 30)], "index_code": ["SP500"], "operating_pe": [22.47]})
    db.replace_mart(con, "earnings_outlook", with_bottom_up(editions.lazy(), out.lazy()).collect())
    bottom_up = con.execute("SELECT count(*) FROM marts.earnings_outlook WHERE method = 'bottom_up'").fetchone()[0]
    assert bottom_up == out.height
    # every table and column of the new objects carries a comment
    missing = con.execute(
        "SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
        "WHERE (table_name IN ('company_estimates', 'consensus_outlook') AND schema_name IN ('core', 'marts') "
        "OR table_name = 'earnings_outlook') AND comment IS NULL").fetchall()
    assert missing == []
    # core.company_estimates: the recorded AAPL rows merge, and merging again changes nothing
    body = json.dumps(json.loads(FIX.read_text())["response"]["bodyJson"]).encode()
    frame = fmt.parse_json(body, "AAPL_2021-04-07.json").with_columns(
        available_on=pl.col("as_of_date"), source=pl.lit("consensus"),
        known_at=pl.lit(datetime(2021, 4, 7, 22, tzinfo=timezone.utc)).cast(pl.Datetime("us", "UTC")))
    con.register("stage", frame.to_arrow())
    assert con.execute(db.sql_file("core/company_estimates.sql")).fetchone()[0] == 4
    assert con.execute(db.sql_file("core/company_estimates.sql")).fetchone()[0] == 0
    con.unregister("stage")
    got = con.execute("SELECT eps_avg, eps_90d_ago FROM core.company_estimates WHERE period = '+1y'").fetchone()
    assert got == (4.7, 4.36)
