"""One MERGE per dataset and run gives the core rows that merging batch after batch gives.

The second method is the old way itself: the same batches merged one at a time
(``prefer_sources`` + ``merge_core`` per batch) into another real DuckDB file. Batches: real SPY
and IWM closes of the sample, delivered by a preferred and a non-preferred source in both orders,
two deliveries of one source (the later wins), and a day only the non-preferred source has.
The second source's closes are the real ones moved by a quarter: a test perturbation, not data.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import duckdb
import polars as pl
import pytest

from sources.sample import SampleSource
from warehouse import db

AS_OF = date(2024, 3, 28)
KNOWN = datetime(2024, 3, 28, 22, tzinfo=timezone.utc)
PRIORITY = ("yahoo", "sample", "stooq")


@pytest.fixture(scope="module")
def real():
    frame = pl.concat([b.frame for b in SampleSource().fetch("prices", AS_OF, None)], how="diagonal_relaxed")
    frame = frame.filter(pl.col("symbol").is_in(["SPY", "IWM"]) & (pl.col("trade_date") >= date(2024, 1, 2)))
    assert frame.height > 100
    return frame


def _conformed(rows: pl.DataFrame, source: str) -> pl.DataFrame:
    return db.conform_core("prices", rows, source, KNOWN, {})


def _table(con) -> list[tuple]:
    return con.execute("SELECT symbol, trade_date, close, source FROM core.prices_daily ORDER BY ALL").fetchall()


def _both_ways(tmp_path, frames: list[pl.DataFrame]) -> tuple[list, list]:
    one = duckdb.connect(str(tmp_path / "one.duckdb"))
    each = duckdb.connect(str(tmp_path / "each.duckdb"))
    try:
        for con in (one, each):
            db.create_schema(con)
        for f in frames:
            db.merge_core(each, "prices", db.prefer_sources(each, "prices", f, PRIORITY))
        merged = db.one_per_key("prices", frames, PRIORITY)
        db.merge_core(one, "prices", db.prefer_sources(one, "prices", merged, PRIORITY))
        return _table(one), _table(each)
    finally:
        one.close()
        each.close()
        for name in ("one.duckdb", "each.duckdb"):
            (tmp_path / name).unlink()


def test_same_core_rows_as_batch_after_batch(real, tmp_path):
    sample = _conformed(real, "sample")
    moved = real.with_columns(pl.col("close") + 0.25)
    stooq = _conformed(moved.filter(pl.col("trade_date") >= date(2024, 2, 1)), "stooq")
    stooq_only = _conformed(moved.filter(pl.col("trade_date") < date(2024, 1, 10)), "stooq")
    yahoo_first = _conformed(moved.filter(pl.col("symbol") == "SPY"), "yahoo")
    yahoo_again = _conformed(real.filter(pl.col("symbol") == "SPY"), "yahoo")
    cases = [
        [stooq, sample],
        [sample, stooq],
        [stooq_only, sample.filter(pl.col("trade_date") >= date(2024, 1, 10))],
        [yahoo_first, sample, yahoo_again],
        [yahoo_again, stooq, yahoo_first, sample],
    ]
    for i, frames in enumerate(cases):
        one, each = _both_ways(tmp_path, frames)
        assert one == each, f"case {i}"
    # the preferred source wins whatever the order; the later delivery of one source wins
    one, _ = _both_ways(tmp_path, cases[3])
    spy = {(d, c) for s, d, c, src in one if s == "SPY"}
    assert {src for s, d, c, src in one if s == "SPY"} == {"yahoo"}
    assert spy == {(d, c) for d, c in real.filter(pl.col("symbol") == "SPY").select("trade_date", "close").rows()}
