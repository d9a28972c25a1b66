"""Bringing a batch into core: a batch of new keys is appended (no join against core), any batch
that touches a key core holds takes the priority check and the MERGE, and the rows staged for
DuckDB are not kept alive by the run's open transaction.

Data: the real yfinance daily CSVs of SPY and IWM (tests/fixtures/prices, provenance in NOTICE),
split by date into an older and a newer delivery. Expected closes are read from the CSVs with the
``csv`` module (``tests/real_closes.py``); ``REVISED`` is a test value, not market data.
"""

from __future__ import annotations

import gc
import sys
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from capspread.config import Config
from sources import formats
from tests.real_closes import closes
from warehouse import db

PRICES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"
KNOWN_AT = datetime(2026, 8, 24, 1, 0, tzinfo=timezone.utc)
SPLIT = "2025-06-30"  # older delivery: up to this day; newer: after it
REVISED = 1.25  # added to one close of the older delivery (a test value)


def parsed(symbol: str) -> pl.DataFrame:
    path = next(PRICES.glob(f"yf_{symbol}_daily_*.csv"))
    return formats.parse(path.read_bytes(), path.name, "prices")


def conformed(frame: pl.DataFrame, source: str = "yahoo") -> pl.DataFrame:
    return db.conform_core("prices", frame, source, KNOWN_AT, Config.load().publication_lag)


def halves(symbol: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = parsed(symbol)
    cut = pl.col("trade_date") <= pl.lit(SPLIT).str.to_date()
    return frame.filter(cut), frame.filter(~cut)


@pytest.fixture
def con(tmp_path):
    con = db.connect(tmp_path / "warehouse.duckdb")
    db.create_schema(con)
    yield con
    con.close()


def core_closes(con, symbol: str) -> dict:
    return dict(con.execute("SELECT trade_date, close FROM core.prices_daily WHERE symbol = ?", [symbol]).fetchall())


def test_new_keys_are_appended_and_equal_the_merge_path(con, tmp_path):
    priority = Config.load().source_priority
    other = db.connect(tmp_path / "merged.duckdb")
    db.create_schema(other)
    for symbol in ("SPY", "IWM"):
        for part in halves(symbol):
            batch = conformed(part)
            assert not db.holds_any_key(con, "prices", batch)
            assert db.load_core(con, "prices", batch, priority) == batch.height
            db.merge_core(other, "prices", db.prefer_sources(other, "prices", batch, priority))
    for symbol in ("SPY", "IWM"):
        assert core_closes(con, symbol) == pytest.approx(closes(symbol))
    order = "ORDER BY symbol, trade_date"
    assert con.execute(f"SELECT * FROM core.prices_daily {order}").fetchall() == \
        other.execute(f"SELECT * FROM core.prices_daily {order}").fetchall()
    other.close()


def test_holds_any_key_finds_one_overlapping_key(con):
    older, newer = halves("SPY")
    db.load_core(con, "prices", conformed(older), ())
    middle = older[older.height // 2]
    assert not db.holds_any_key(con, "prices", conformed(newer))
    assert db.holds_any_key(con, "prices", conformed(pl.concat([newer, middle])))
    # the same day under another symbol is a new key
    assert not db.holds_any_key(con, "prices", conformed(middle.with_columns(symbol=pl.lit("IWM"))))


def test_a_batch_touching_held_keys_is_merged_not_appended(con):
    older, newer = halves("SPY")
    db.load_core(con, "prices", conformed(older), ())
    day = older["trade_date"][10]
    revised = older.filter(pl.col("trade_date") == day).with_columns(pl.col("close") + REVISED)
    changed = db.load_core(con, "prices", conformed(pl.concat([revised, newer])), ())
    assert changed == newer.height + 1
    expected = closes("SPY")
    expected[day] += REVISED
    got = core_closes(con, "SPY")
    assert con.execute("SELECT count(*) FROM core.prices_daily").fetchall()[0][0] == len(expected)
    assert got == pytest.approx(expected)


def test_a_lower_ranked_source_does_not_replace_held_keys(con):
    priority = Config.load().source_priority
    assert priority.index("yahoo") < priority.index("stooq")
    older, _ = halves("SPY")
    db.load_core(con, "prices", conformed(older), priority)
    again = conformed(older.with_columns(pl.col("close") + REVISED), source="stooq")
    assert db.load_core(con, "prices", again, priority) == 0
    assert core_closes(con, "SPY") == pytest.approx({d: c for d, c in closes("SPY").items() if str(d) <= SPLIT})


def test_staged_rows_are_released_inside_an_open_transaction(con):
    table = pa.table({"a": list(range(1000)), "b": ["x"] * 1000})
    held_before = sys.getrefcount(table)
    con.execute("BEGIN TRANSACTION")
    db._staged(con, "CREATE TABLE main.staged AS SELECT * FROM stage", frame=table)
    gc.collect()
    assert sys.getrefcount(table) == held_before
    assert con.execute("SELECT count(*), sum(a) FROM main.staged").fetchall() == [(1000, sum(range(1000)))]
    con.execute("ROLLBACK")


def test_appends_do_not_keep_row_order_and_leave_the_connection_as_they_found_it(con):
    """Raw rows and a new batch's core rows are appended without DuckDB keeping their order (so
    that they fill whole row groups), and only for that statement."""
    spy = parsed("SPY")
    con.execute("BEGIN TRANSACTION")
    db.insert_raw(con, "prices", spy, "landing/yahoo/prices/SPY.csv", "run-1", KNOWN_AT)
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0] is True
    db.load_core(con, "prices", conformed(spy), Config.load().source_priority)
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0] is True
    con.execute("COMMIT")
    # every row arrived, whatever the order: the closes are the CSV's
    assert core_closes(con, "SPY") == closes("SPY")
    assert con.execute("SELECT count(*) FROM raw.prices").fetchall()[0][0] == len(closes("SPY"))


@pytest.mark.parametrize("loaded_at", [KNOWN_AT, KNOWN_AT.replace(tzinfo=None)], ids=["utc", "naive-is-utc"])
def test_raw_rows_carry_their_lineage(con, loaded_at):
    """Each raw row holds the parsed values and the batch's landing file, load time and run id
    (filled in by DuckDB, not copied row by row from the frame); a load time without a time zone
    is UTC, whatever the session's time zone."""
    spy = parsed("SPY")
    con.execute("SET TimeZone = 'America/New_York'")
    con.execute("BEGIN TRANSACTION")
    assert db.insert_raw(con, "prices", spy, "landing/yahoo/prices/SPY.csv", "run-7", loaded_at) == spy.height
    con.execute("COMMIT")
    lineage = con.execute("SELECT DISTINCT _landing_file, epoch(_loaded_at), _run_id FROM raw.prices").fetchall()
    assert lineage == [("landing/yahoo/prices/SPY.csv", KNOWN_AT.timestamp(), "run-7")]
    stored = dict(con.execute("SELECT trade_date, close FROM raw.prices").fetchall())
    assert stored == closes("SPY")
