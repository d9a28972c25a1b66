"""Replay rebuilds the warehouse from landing/ alone; full-history inbox files load point in time."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date

import duckdb
import pytest
from conftest import FIXTURES

from capspread.config import Home
from flows.nightly import run_pipeline
from flows.replay import replay


def _checksums(path) -> dict[str, tuple[int, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for schema, table in con.execute(
            "select schema_name, table_name from duckdb_tables() where schema_name in ('raw', 'core', 'marts') order by 1, 2"
        ).fetchall():
            rows = con.execute(f"select * from {schema}.{table} order by all").fetchall()
            out[f"{schema}.{table}"] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        return out
    finally:
        con.close()


def _fred_sp500_rows() -> dict[date, float]:
    """Non-blank rows of the real FRED SP500 download, read with plain string splitting."""
    out = {}
    for line in (FIXTURES / "prices" / "fred_SP500_daily_2016-2026.csv").read_text().splitlines()[1:]:
        day, value = line.split(",")
        if value.strip():
            out[date.fromisoformat(day)] = float(value)
    return out


@pytest.fixture(scope="module")
def replay_home(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("replay-home"))
    home.ensure()
    (home.inbox / "prices").mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "prices" / "fred_SP500_daily_2016-2026.csv", home.inbox / "prices" / "SP500.csv")
    # real Stooq rows of 2005 (dividend-adjusted): they disagree with the yfinance SPY closes
    shutil.copy(FIXTURES / "prices" / "stooq_spy.us_2005-02-25_2005-04-01.txt", home.inbox / "prices" / "spy.us.txt")
    first = run_pipeline(date(2025, 6, 11), "sample", home)
    after_first = _checksums(home.warehouse)
    second = run_pipeline(date(2026, 8, 21), "sample", home)
    return home, first, second, after_first


def test_a_full_history_file_loads_only_what_was_public_on_the_as_of_date(replay_home):
    home, first, second, after_first = replay_home
    fred = _fred_sp500_rows()
    assert first.exit_code == 0 and second.exit_code == 0
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        counts = dict(con.execute(
            "select _run_id, count(*) from raw.prices where symbol = '^GSPC' group by _run_id").fetchall())
        newest = con.execute("select max(trade_date) from core.prices_daily where symbol = '^GSPC'").fetchall()[0][0]
        close = con.execute("select close from core.prices_daily where symbol = '^GSPC' and trade_date = ?",
                            [date(2025, 6, 11)]).fetchall()[0][0]
        landing = con.execute("select loaded_through, newest_available from meta.landing_files "
                              "where original_name = 'SP500.csv'").fetchall()
    finally:
        con.close()
    assert counts[first.run_id] == sum(1 for d in fred if d <= date(2025, 6, 11))
    assert counts[second.run_id] == sum(1 for d in fred if d > date(2025, 6, 11))
    assert newest == max(fred)
    assert close == fred[date(2025, 6, 11)]
    assert landing == [(date(2026, 8, 21), max(fred))]
    assert any("become public after 2025-06-11" in w for w in first.datasets["prices"].warnings)


def test_replay_reproduces_the_warehouse(replay_home):
    home, *_ = replay_home
    before = _checksums(home.warehouse)
    result = replay(home)
    assert result.exit_code == 0
    assert _checksums(home.warehouse) == before


def test_replay_from_landing_alone_after_the_warehouse_is_lost(replay_home):
    home, *_ = replay_home
    before = _checksums(home.warehouse)
    home.warehouse.unlink()
    replay(home)
    assert _checksums(home.warehouse) == before
    con = duckdb.connect(str(home.snapshot), read_only=True)
    try:
        assert con.execute("select max(as_of_date) from marts.market_scoreboard").fetchall()[0][0] == date(2026, 8, 21)
    finally:
        con.close()


def test_replay_of_one_dataset_leaves_the_others(replay_home):
    home, *_ = replay_home
    before = _checksums(home.warehouse)
    replay(home, "cpi")
    assert _checksums(home.warehouse) == before
    with pytest.raises(ValueError, match="unknown dataset"):
        replay(home, "bananas")


def _stooq_closes() -> dict[date, float]:
    lines = (FIXTURES / "prices" / "stooq_spy.us_2005-02-25_2005-04-01.txt").read_text().splitlines()[1:]
    return {date(int(f[2][:4]), int(f[2][4:6]), int(f[2][6:])): float(f[7]) for f in (ln.split(",") for ln in lines)}


def test_the_preferred_source_wins_and_disagreements_are_reported(replay_home):
    from real_closes import closes as _unused  # noqa: F401  (the yfinance SPY fixture starts in 2024)

    home, *_ = replay_home
    stooq = _stooq_closes()
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        sample = dict(con.execute(
            "select r.trade_date, r.close from raw.prices r join meta.landing_files l on l.path = r._landing_file "
            "where l.source = 'sample' and r.symbol = 'SPY' and r.trade_date between ? and ?",
            [min(stooq), max(stooq)]).fetchall())
        core = dict(con.execute("select trade_date, close from core.prices_daily where symbol = 'SPY' "
                                "and trade_date between ? and ?", [min(stooq), max(stooq)]).fetchall())
        found = {r[0]: r[1:] for r in con.execute(
            "select observation_date, source_a, source_b, difference from meta.source_disagreements "
            "where symbol = 'SPY'").fetchall()}
        sources = dict(con.execute("select source, status from meta.source_health where dataset = 'prices'").fetchall())
    finally:
        con.close()
    # the sample (listed before the inbox in [source_priority]) keeps its closes in core
    assert core == sample and len(sample) == len(stooq)
    expected = {d: stooq[d] - sample[d] for d in stooq if abs(stooq[d] - sample[d]) > 0.01}
    assert expected, "the 2005 Stooq closes are dividend-adjusted and must differ"
    assert set(found) == set(expected)
    for d, (a, b, diff) in found.items():
        assert (a, b) == ("inbox:stooq_bulk", "sample")
        assert diff == pytest.approx(-expected[d], abs=1e-9)
    assert sources["sample"] == "ok"
