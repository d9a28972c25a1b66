"""Nightly runs rebuild the per-symbol price marts from the first day they changed; the marts
they leave are the marts a full build from all of history gives (the reference, computed here
in-process on the same warehouse)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import duckdb
import exchange_calendars
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capspread.config import Config
from flows.load import mart_since
from flows.marts import build_marts
from tests.conftest import run_cli

FIRST, SECOND = date(2023, 1, 10), date(2023, 3, 15)
KEYS = {"market_scoreboard": ["as_of_date", "symbol"], "index_weekly": ["week_end", "symbol"]}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("incremental")
    proc = run_cli(home, "run", "--as-of", FIRST.isoformat())
    assert proc.returncode == 0, proc.stderr
    return home


def _run(as_of: date, run_id: str = "probe") -> SimpleNamespace:
    return SimpleNamespace(as_of=as_of, run_id=run_id)


def test_when_the_marts_can_be_built_incrementally(home):
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        config = Config.load()
        # nothing loaded by the probe run: the days after the last run's as-of date
        assert mart_since(con, config, _run(SECOND)) == (date(2023, 1, 11), "incremental: from 2023-01-11")
        assert mart_since(con, config, _run(date(2022, 12, 1)))[0] is None  # going back in time
        renamed = Config(**{**config.__dict__, "universe": tuple(
            s if s.symbol != "SPY" else type(s)(**{**s.__dict__, "name": "renamed"}) for s in config.universe)})
        assert mart_since(con, renamed, _run(SECOND)) == (None, "full: the configured universe changed")
    finally:
        con.close()


def test_when_the_short_interest_by_bucket_can_be_built_incrementally(home):
    from flows.load import short_interest_since

    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        config = Config.load()
        con.execute("BEGIN TRANSACTION")  # the probes record the bucket funds: rolled back below
        # nothing new between the runs (the sample's one settlement, 2021-07-15, was public long
        # before; its holdings snapshots are of 2026): nothing to rebuild
        assert short_interest_since(con, config, _run(SECOND), date(2023, 1, 11)) == \
            (date(2023, 3, 16), "incremental: from 2023-03-16")
        assert short_interest_since(con, config, _run(SECOND), None)[0] is None  # marts in full
        # a holdings row loaded by the run (one of the sample's iShares rows): a new snapshot can
        # change the members of earlier settlement dates
        sample = Path(__file__).resolve().parents[2] / "sources" / "sample" / "data" / "holdings.parquet"
        con.execute(f"INSERT INTO raw.holdings BY NAME SELECT *, 'probe' AS _run_id FROM '{sample}' LIMIT 1")
        assert short_interest_since(con, config, _run(SECOND), date(2023, 1, 11)) == (None, "full: holdings changed")
        con.execute("DELETE FROM raw.holdings WHERE _run_id = 'probe'")
        # other bucket funds (the first-listed fund wins a symbol: their order counts too)
        swapped = Config(**{**config.__dict__, "bucket_funds": dict(reversed(list(config.bucket_funds.items())))})
        assert short_interest_since(con, swapped, _run(SECOND), date(2023, 1, 11)) == \
            (None, "full: the bucket funds are not the ones the mart was built with")
        # a short-interest row loaded by the run: from its settlement date on
        con.execute("INSERT INTO raw.short_interest BY NAME SELECT * REPLACE ('probe' AS _run_id) "
                    "FROM raw.short_interest LIMIT 1")
        # (the swapped funds are now the ones recorded, as a full build with them would leave)
        assert short_interest_since(con, swapped, _run(SECOND), date(2023, 1, 11)) == \
            (date(2021, 7, 15), "incremental: from 2021-07-15")
        assert short_interest_since(con, config, _run(SECOND), date(2023, 1, 11))[0] is None
        assert short_interest_since(con, config, _run(SECOND), date(2023, 1, 11)) == \
            (date(2021, 7, 15), "incremental: from 2021-07-15")
    finally:
        con.execute("ROLLBACK")
        con.close()


def test_second_run_leaves_the_marts_of_a_full_build(home):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    before = con.execute("SELECT count(*) FROM marts.market_scoreboard WHERE as_of_date <= ?", [FIRST]).fetchall()
    con.close()
    proc = run_cli(home, "run", "--as-of", SECOND.isoformat())
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        reference = build_marts(con, Config.load(), SECOND)  # all of history, in full
        new_days = con.execute("SELECT count(DISTINCT as_of_date) FROM marts.market_scoreboard WHERE as_of_date > ?",
                               [FIRST]).fetchall()[0][0]
        xnys = exchange_calendars.get_calendar("XNYS")
        assert new_days == len(xnys.sessions_in_range("2023-01-11", SECOND.isoformat())) == 44
        assert con.execute("SELECT count(*) FROM marts.market_scoreboard WHERE as_of_date <= ?",
                           [FIRST]).fetchall() == before
        for name, ref in reference.items():
            got = pl.from_arrow(con.sql(f"SELECT * FROM marts.{name}").to_arrow_table()).select(ref.columns)
            keys = KEYS.get(name, list(ref.columns[:2]))
            assert got.height == ref.height, name
            assert_frame_equal(got.sort(keys, nulls_last=True), ref.sort(keys, nulls_last=True),
                               check_exact=False, rel_tol=1e-12, check_dtypes=False)
        # the run's summary gives each mart's size, the ones rebuilt from a day on included
        printed = " ".join(proc.stdout.split()).split("marts: ", 1)[1].split(" published snapshot:")[0]
        said = {name: int(n.replace(",", "")) for name, n in re.findall(r"(\w+) ([\d,]+) rows", printed)}
        assert said == {name: ref.height for name, ref in reference.items()}
        # the record highs of QQQ (November 2021) lie before the window the run read (2022 on)
        qqq = con.execute("SELECT max(close) FROM core.prices_daily WHERE symbol = 'QQQ' AND trade_date < '2022-01-01'"
                          ).fetchall()[0][0]
        high = con.execute("SELECT record_high FROM marts.market_scoreboard WHERE symbol = 'QQQ' AND as_of_date = ?",
                           [SECOND]).fetchall()[0][0]
        assert high == qqq
    finally:
        con.close()
    # published on top of the first run's snapshot, and the same rows as the warehouse
    manifest = json.loads((home / "published" / "manifest.json").read_text())
    assert manifest["mode"] == "incremental", manifest.get("mode_reason")
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{home / 'warehouse.duckdb'}' AS wh (READ_ONLY)")
        con.execute(f"ATTACH '{home / 'published' / 'capspread.duckdb'}' AS snap (READ_ONLY)")
        for table in ("core.prices_daily", "core.cpi_observations", "marts.market_scoreboard", "marts.index_weekly",
                      "marts.size_spread_daily", "meta.runs"):
            for a, b in (("wh", "snap"), ("snap", "wh")):
                extra = con.execute(f"SELECT count(*) FROM (FROM {a}.{table} EXCEPT ALL FROM {b}.{table})").fetchall()
                assert extra == [(0,)], f"{table}: rows in {a} and not in {b}"
            parquet = home / "published" / "parquet" / table.split(".")[0] / f"{table.split('.')[1]}.parquet"
            assert con.execute(f"SELECT count(*) FROM (FROM wh.{table} EXCEPT ALL FROM read_parquet('{parquet}'))"
                               ).fetchall() == [(0,)], table
    finally:
        con.close()


def _config_with_universe(path, keep: set[str]):
    """The default configuration with only ``keep`` in the universe (the sample still loads every
    symbol it has, so the others have closes but no name or role)."""
    text = (Config.load().path).read_text()
    head, *blocks = text.split("[[universe]]")
    rest = blocks[-1].split("\n\n", 1)[1] if blocks else ""
    kept = [b for b in blocks if any(f'symbol = "{s}"' in b for s in keep)]
    kept = [b.split("\n\n", 1)[0] + "\n\n" for b in kept]
    path.write_text(head + "".join("[[universe]]" + b for b in kept) + rest)
    return path


def test_marts_built_in_symbol_parts_equal_one_build(tmp_path, monkeypatch):
    """Parts of one symbol each (the configured universe together in the first): the same marts."""
    config_file = _config_with_universe(tmp_path / "two.toml", {"SPY", "IWM"})
    config = Config.load(config_file)
    assert {s.symbol for s in config.universe} == {"SPY", "IWM"}
    monkeypatch.setenv("CAPSPREAD_CONFIG", str(config_file))
    monkeypatch.setenv("CAPSPREAD_MART_CHUNK_SYMBOLS", "1")
    home = tmp_path / "home"
    proc = run_cli(home, "run", "--as-of", FIRST.isoformat())
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        from flows.marts import symbol_chunks

        chunks = symbol_chunks(con, config, FIRST, None, 1)
        assert chunks[0] == ["IWM", "SPY"] and sorted(c[0] for c in chunks[1:]) == ["DIA", "QQQ"]  # MDY starts in 2024
        parts = con.execute("SELECT DISTINCT column_name FROM meta.validations WHERE landing_file LIKE "
                            "'marts.market_scoreboard (symbols %'").fetchall()
        assert parts  # the run did build in parts
        reference = build_marts(con, config, FIRST)
        for name in KEYS:
            got = pl.from_arrow(con.sql(f"SELECT * FROM marts.{name}").to_arrow_table()).select(reference[name].columns)
            assert_frame_equal(got.sort(KEYS[name]), reference[name].sort(KEYS[name]), check_exact=False, rel_tol=1e-12)
        ranks = con.execute("SELECT count(*) FROM marts.market_scoreboard WHERE wtd_rank IS NOT NULL AND symbol "
                            "NOT IN ('SPY', 'IWM')").fetchall()
        assert ranks == [(0,)]
    finally:
        con.close()
