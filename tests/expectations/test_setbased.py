"""The set-based engine and GX's pandas engine give the same checks on the same suites.

GX's engine is the reference: each case runs one suite through both and compares every check
(expectation, column, severity, success, counts, examples). Cases: every dataset of the real sample,
the same batches broken in the ways the landing suites exist for, and the marts of a sample run.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from expectations import landing, setbased
from expectations.marts import SUITES as MART_SUITES
from expectations.marts import suite as mart_suite
from expectations.runner import _context, engine_for, run_suite, validate
from sources.sample import SampleSource

AS_OF = date(2026, 8, 21)  # the sample's last day: every dataset has a batch


def _facts(c) -> tuple:
    examples = c.examples if c.unexpected_count else None
    counts = (c.element_count, c.unexpected_count) if c.unexpected_count is not None else None
    return (c.expectation, c.column or "", c.severity, c.success, counts, repr(examples))


def _compare(suite, frame: pl.DataFrame) -> list:
    gx = run_suite(suite.name, suite, frame, engine="gx").checks
    mine = setbased.checks(suite, frame)
    assert len(gx) == len(mine) == len(suite.expectations)
    assert sorted(map(_facts, mine)) == sorted(map(_facts, gx))
    return gx


@pytest.fixture(scope="module")
def sample_batches():
    _context()  # GX suites need a data context
    src = SampleSource()
    batches = [b for d in src.datasets() for b in src.fetch(d, AS_OF, None) if b.frame is not None]
    assert {b.dataset for b in batches} >= {"prices", "cpi", "short_interest", "holdings", "estimates", "factors"}
    return batches


def _suite(dataset: str, frame: pl.DataFrame, **options):
    return landing.SUITES[dataset](frame, AS_OF, **options)


def test_every_sample_batch_gives_the_same_checks(sample_batches):
    for b in sample_batches:
        suite, derived = _suite(b.dataset, b.frame)
        checks = _compare(suite, derived)
        assert checks, b.dataset


def _prices(sample_batches) -> pl.DataFrame:
    return next(b.frame for b in sample_batches if b.dataset == "prices")


def _broken_prices(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    first = frame.head(1)
    later = frame.slice(40, 1)
    return {
        "negative close": frame.with_columns(
            close=pl.when(pl.int_range(pl.len()) == 7).then(-1.0).otherwise(pl.col("close"))),
        "same day twice with another close": pl.concat([frame, first.with_columns(close=pl.col("close") + 1)]),
        "null symbol": frame.with_columns(
            symbol=pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("symbol"))),
        "a day after the run": pl.concat([frame, later.with_columns(trade_date=pl.lit(AS_OF + timedelta(days=9)))]),
        "a 60 % move": frame.with_columns(
            close=pl.when(pl.int_range(pl.len()) == 100).then(pl.col("close") * 1.6).otherwise(pl.col("close"))),
        "high below low": frame.with_columns(
            high=pl.when(pl.int_range(pl.len()) == 5).then(pl.col("low") - 1).otherwise(pl.col("high"))),
    }


def test_broken_prices_fail_the_same_checks_in_both_engines(sample_batches):
    for what, frame in _broken_prices(_prices(sample_batches)).items():
        suite, derived = _suite("prices", frame)
        checks = _compare(suite, derived)
        assert [c for c in checks if not c.success], f"{what}: nothing failed"


def test_broken_cpi_and_short_interest(sample_batches):
    cpi = next(b.frame for b in sample_batches if b.dataset == "cpi")
    si = next(b.frame for b in sample_batches if b.dataset == "short_interest")
    value = "value" if "value" in cpi.columns else cpi.columns[-1]
    cases = [
        ("cpi", cpi.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(-5.0).otherwise(pl.col(value)).alias(value))),
        ("cpi", pl.concat([cpi, cpi.head(2)])),
        ("short_interest", pl.concat([si, si.head(3)])),
    ]
    for dataset, frame in cases:
        suite, derived = _suite(dataset, frame)
        checks = _compare(suite, derived)
        assert [c for c in checks if not c.success], dataset


@pytest.fixture(scope="module")
def marts(home_2025_06_11):
    home, proc = home_2025_06_11
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        frames = {name: pl.from_arrow(con.sql(f"SELECT * FROM marts.{name}").to_arrow_table())
                  for name in MART_SUITES}
        latest = frames["market_scoreboard"]["as_of_date"].max()
        with_prices = sorted({r[0] for r in con.execute(
            "SELECT DISTINCT symbol FROM core.prices_daily WHERE trade_date = ?", [latest]).fetchall()})
    finally:
        con.close()
    return frames, with_prices


def test_every_mart_of_a_sample_run_gives_the_same_checks(marts):
    frames, with_prices = marts
    assert sum(f.height > 0 for f in frames.values()) >= 6  # no holdings before 2026: no size buckets
    for name, frame in frames.items():
        options = {"symbols_with_prices": with_prices} if name == "market_scoreboard" else {}
        suite, derived = mart_suite(name, frame, **options)
        _compare(suite, derived)
    # a row condition (the scoreboard's latest day) and a set the frame does not contain
    suite, derived = mart_suite("market_scoreboard", frames["market_scoreboard"],
                                symbols_with_prices=with_prices + ["NOT-LOADED"])
    checks = _compare(suite, derived)
    missing = [c for c in checks if c.expectation == "expect_column_distinct_values_to_contain_set"]
    assert missing and not missing[0].success


def test_broken_mart_fails_the_same_checks(marts):
    frames, _ = marts
    spread = frames["size_spread_daily"]
    broken = spread.with_columns(spread=pl.col("spread") + pl.when(pl.int_range(pl.len()) == 4).then(0.01).otherwise(0))
    suite, derived = mart_suite("size_spread_daily", broken)
    checks = _compare(suite, derived)
    failed = [c for c in checks if not c.success]
    assert failed and failed[0].unexpected_count == 1


def test_engine_choice(monkeypatch):
    monkeypatch.delenv("CAPSPREAD_VALIDATION_ENGINE", raising=False)
    monkeypatch.delenv("CAPSPREAD_GX_MAX_ROWS", raising=False)
    assert engine_for(1_000) == "gx" and engine_for(10_000_000) == "setbased"
    monkeypatch.setenv("CAPSPREAD_GX_MAX_ROWS", "10")
    assert engine_for(11) == "setbased"
    monkeypatch.setenv("CAPSPREAD_VALIDATION_ENGINE", "gx")
    assert engine_for(10_000_000) == "gx"
    monkeypatch.setenv("CAPSPREAD_VALIDATION_ENGINE", "fast")
    with pytest.raises(ValueError, match="CAPSPREAD_VALIDATION_ENGINE"):
        engine_for(1)


def test_set_based_outcome_feeds_data_docs(sample_batches, monkeypatch):
    monkeypatch.setenv("CAPSPREAD_VALIDATION_ENGINE", "setbased")
    frame = _broken_prices(_prices(sample_batches))["negative close"]
    outcome = validate("prices", frame, AS_OF)
    assert not outcome.passed
    assert outcome.result.success is False
    assert len(outcome.result.results) == len(outcome.checks)
    failed = [r for r in outcome.result.results if not r.success]
    assert any(r.result.get("partial_unexpected_list") == [-1.0] for r in failed)


def test_mart_suites_run_set_based_unless_an_engine_is_forced(marts, monkeypatch):
    from expectations.runner import validate_mart

    frames, _ = marts
    frame = frames["size_spread_monthly"]
    calls = []
    original = setbased.checks
    monkeypatch.setattr(setbased, "checks", lambda suite, f: calls.append(suite.name) or original(suite, f))
    monkeypatch.delenv("CAPSPREAD_VALIDATION_ENGINE", raising=False)
    auto = validate_mart("size_spread_monthly", frame)
    assert calls == ["marts.size_spread_monthly"] and frame.height < 60_000  # small, still set-based
    monkeypatch.setenv("CAPSPREAD_VALIDATION_ENGINE", "gx")
    forced = validate_mart("size_spread_monthly", frame)
    assert calls == ["marts.size_spread_monthly"]  # GX's engine this time
    assert [(c.expectation, c.column, c.success, c.unexpected_count) for c in auto.checks] == \
        [(c.expectation, c.column, c.success, c.unexpected_count) for c in forced.checks]


def test_duplicate_keys_in_a_frame_sorted_by_them_and_in_one_that_is_not(marts):
    """A mart frame sorted by its key is searched for duplicates by comparing neighbours; any other
    order by hashing every key. Both find what GX finds: every row of a repeated key, the same
    counts and the same examples (duplicates twice and three times over, at the frame's edges)."""
    frames, with_prices = marts
    board = frames["market_scoreboard"].sort("as_of_date", "symbol")
    key = ["as_of_date", "symbol"]
    assert setbased._sorted_without_nulls(board, key)
    n = board.height
    # rows 0, 7 (twice more) and the last one repeated right after themselves: still sorted
    picks = [0, 0, *range(1, 8), 7, 7, *range(8, n), n - 1]
    doubled = board[picks]
    shuffled = doubled.sample(fraction=1.0, shuffle=True, seed=3)
    assert setbased._sorted_without_nulls(doubled, key) and not setbased._sorted_without_nulls(shuffled, key)
    for frame in (board, doubled, shuffled):
        suite, derived = mart_suite("market_scoreboard", frame, symbols_with_prices=with_prices)
        checks = _compare(suite, derived)
        unique = next(c for c in checks if c.expectation == "expect_compound_columns_to_be_unique")
        assert unique.unexpected_count == (0 if frame is board else 2 + 3 + 2)
    # a null in the key: the hashing search, which GX's null handling matches
    assert not setbased._sorted_without_nulls(doubled.with_columns(symbol=pl.when(pl.int_range(pl.len()) == 3)
                                                                    .then(None).otherwise(pl.col("symbol"))), key)


def test_examples_show_missing_values_and_dates_plainly(sample_batches):
    """The real IWM holdings file lists a ticker twice and has lines without a ticker. The warning's
    examples show its keys as the file has them: ISO dates (not pandas' midnight timestamps),
    None for a missing ticker (not NaN), each distinct key once."""
    batch = next(b for b in sample_batches if b.dataset == "holdings" and "IWM" in b.frame["fund"].to_list())
    suite, derived = _suite("holdings", batch.frame)
    key = ["fund", "as_of_date", "symbol"]
    # the first five repeated rows, found by Polars on the frame GX's engine is given
    repeated = derived.filter(pl.struct(key).is_duplicated()).select(key).head(5)
    expected = []
    for row in repeated.iter_rows(named=True):
        plain = {**row, "as_of_date": row["as_of_date"].isoformat()}
        if plain not in expected:
            expected.append(plain)
    assert None in [e["symbol"] for e in expected] and len(expected) >= 2
    for engine in ("gx", "setbased"):
        checks = run_suite(suite.name, suite, derived, engine=engine).checks
        unique = next(c for c in checks if c.expectation == "expect_compound_columns_to_be_unique")
        assert unique.examples == expected, engine
        assert "nan" not in unique.describe() and "00:00:00" not in unique.describe()


def test_plain_examples_by_hand():
    """Values as GX's pandas engine hands them over, against what a message should show."""
    import numpy as np
    import pandas as pd

    from expectations.runner import plain_examples

    given = [np.float64("nan"), None, pd.NaT, pd.NA,  # missing, four ways: one None
             pd.Timestamp("2026-05-05"), np.datetime64("2026-05-05"), date(2026, 5, 5),  # one day, three ways
             pd.Timestamp("2026-05-05 00:00:00.000000001"),  # not midnight
             pd.Timestamp("2026-05-05 14:30", tz="UTC"), np.int64(7), 7, np.bool_(True),
             pd.Timedelta(seconds=90), np.array([1.5, 2.0]), {"high": np.float64(76.5), "low": 77}]
    assert plain_examples(given) == [
        None, "2026-05-05", "2026-05-05T00:00:00.000000001", "2026-05-05T14:30:00+00:00", 7, True, "0:01:30",
        [1.5, 2.0], {"high": 76.5, "low": 77}]
