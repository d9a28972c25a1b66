"""Incremental publishing: a copy of the previous snapshot with only the run's rows replaced must be
the same snapshot a full publish of the same warehouse writes, and fall back to a full publish
whenever the published files are not the base the changes are relative to.

Every expectation is computed from the warehouse or from a separate full publish with plain SQL,
never from what ``publish`` returns.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from warehouse_variants import copy_warehouse, storage_version_number

from warehouse import publish as publish_module
from warehouse.publish import UNCHANGED, Delta, PublishError, publish

AS_OF = date(2025, 6, 11)
NEXT = AS_OF + timedelta(days=1)


@pytest.fixture()
def warehouse(home_2025_06_11, tmp_path) -> Path:
    home, proc = home_2025_06_11
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return copy_warehouse(home, tmp_path / "work")


def _tables(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [f"{s}.{t}" for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('core', 'marts', 'meta') "
            "ORDER BY 1, 2").fetchall()]
    finally:
        con.close()


def _differences(a: Path, b: Path) -> dict:
    """Per table: rows only in a, rows only in b (as multisets), and differing comments."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        out = {}
        names = {db: [tuple(r) for r in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1, 2", [db]
        ).fetchall()] for db in ("a", "b")}
        if names["a"] != names["b"]:
            out["tables"] = (names["a"], names["b"])
        for schema, table in names["a"]:
            t = f'"{schema}"."{table}"'
            only_a = con.execute(f"SELECT count(*) FROM (FROM a.{t} EXCEPT ALL FROM b.{t})").fetchall()[0][0]
            only_b = con.execute(f"SELECT count(*) FROM (FROM b.{t} EXCEPT ALL FROM a.{t})").fetchall()[0][0]
            if only_a or only_b:
                out[f"{schema}.{table}"] = (only_a, only_b)
        comments = {db: sorted(con.execute(
            "SELECT schema_name, table_name, column_name, comment, data_type FROM duckdb_columns() "
            "WHERE database_name = ? UNION ALL SELECT schema_name, table_name, NULL, comment, NULL "
            "FROM duckdb_tables() WHERE database_name = ?", [db, db]).fetchall(), key=str) for db in ("a", "b")}
        if comments["a"] != comments["b"]:
            out["comments"] = [x for x in comments["a"] if x not in comments["b"]]
        return out
    finally:
        con.close()


def _simulate_next_run(warehouse: Path, run_id: str) -> dict:
    """Change the warehouse as a nightly run would and return the changes it made (by hand)."""
    con = duckdb.connect(str(warehouse))
    try:
        last = con.execute("SELECT max(as_of_date) FROM marts.market_scoreboard").fetchall()[0][0]
        # scoreboard: the newest day's rows are revised, and a new day is added
        con.execute("UPDATE marts.market_scoreboard SET close = close + 1000 WHERE as_of_date = ?", [last])
        con.execute("INSERT INTO marts.market_scoreboard SELECT * REPLACE (as_of_date + 1 AS as_of_date) "
                    "FROM marts.market_scoreboard WHERE as_of_date = ?", [last])
        # core prices: a vendor correction of old closes (stamped known now) and a new session
        con.execute("UPDATE core.prices_daily SET close = close * 2, known_at = TIMESTAMPTZ '2030-01-01 00:00:00+00' "
                    "WHERE trade_date = (SELECT min(trade_date) FROM core.prices_daily)")
        con.execute("INSERT INTO core.prices_daily SELECT * REPLACE (trade_date + 1 AS trade_date, "
                    "TIMESTAMPTZ '2030-01-01 00:00:00+00' AS known_at) FROM core.prices_daily "
                    "WHERE trade_date = (SELECT max(trade_date) FROM core.prices_daily)")
        # index_weekly: the newest week rebuilt (fewer rows than before), matched by a predicate
        week = con.execute("SELECT max(week_end) FROM marts.index_weekly").fetchall()[0][0]
        con.execute("DELETE FROM marts.index_weekly WHERE week_end = ? AND symbol = "
                    "(SELECT min(symbol) FROM marts.index_weekly WHERE week_end = ?)", [week, week])
        con.execute("UPDATE marts.index_weekly SET up_streak = 99 WHERE week_end = ?", [week])
        con.execute(
            "INSERT INTO meta.runs BY NAME SELECT ? AS run_id, 'nightly' AS flow, 'sample' AS profile, "
            "CAST(? AS DATE) AS as_of_date, now() AS started_at, now() AS finished_at, 'success' AS status, "
            "0 AS exit_code, true AS published", [run_id, NEXT])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {
        "marts.market_scoreboard": Delta(f"as_of_date >= DATE '{last}'", key=["as_of_date", "symbol"]),
        "core.prices_daily": Delta("known_at >= TIMESTAMPTZ '2030-01-01 00:00:00+00'", key=("symbol", "trade_date")),
        "marts.index_weekly": Delta(f"week_end >= DATE '{week}'"),
        # meta.runs is not named: rewritten in full
    }


def _changes_with_rest_unchanged(warehouse: Path, deltas: dict) -> dict:
    return {name: deltas.get(name, UNCHANGED) for name in _tables(warehouse) if name != "meta.runs"}


def _generation(published: Path, manifest: dict) -> Path:
    return published / manifest["parquet_generation"]


def _kv(path: Path) -> dict:
    con = duckdb.connect()
    try:
        return {k.decode(): v.decode() for k, v in con.execute(
            "SELECT key, value FROM parquet_kv_metadata(?)", [str(path)]).fetchall()}
    finally:
        con.close()


def test_incremental_publish_equals_a_full_publish(warehouse, tmp_path):
    published = tmp_path / "published"
    first = publish(warehouse, published, run_id="base-run", as_of=AS_OF)
    assert first["mode"] == "full"
    deltas = _simulate_next_run(warehouse, "next-run")
    changes = _changes_with_rest_unchanged(warehouse, deltas)

    second = publish(warehouse, published, run_id="next-run", as_of=NEXT, changes=changes, base_run_id="base-run")
    assert second["mode"] == "incremental", second["mode_reason"]
    assert second["base_run_id"] == "base-run"
    fresh = publish(warehouse, tmp_path / "fresh", run_id="fresh-run", as_of=NEXT)
    assert fresh["mode"] == "full"

    # the same rows in every table (as multisets) and the same comments as a fresh full publish
    assert _differences(published / "capspread.duckdb", tmp_path / "fresh" / "capspread.duckdb") == {}
    # true row counts, computed from the warehouse itself
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        truth = {name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] for name in _tables(warehouse)}
    finally:
        con.close()
    assert second["tables"] == truth
    assert json.loads((published / "manifest.json").read_text()) == second
    assert storage_version_number(published / "capspread.duckdb") == 65  # still readable by DuckDB 1.2+

    snap = duckdb.connect(str(published / "capspread.duckdb"), read_only=True)
    try:
        # key path: revised rows replaced, not duplicated
        assert snap.execute("SELECT count(*) FROM (SELECT as_of_date, symbol FROM marts.market_scoreboard "
                            "GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0] == 0
        assert snap.execute("SELECT count(*) FROM (SELECT symbol, trade_date FROM core.prices_daily "
                            "GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0] == 0
        assert snap.execute("SELECT count(*) FROM meta.runs WHERE run_id = 'next-run'").fetchall()[0][0] == 1
        # predicate path: the deleted symbol's row of the newest week is gone, the others updated
        week = snap.execute("SELECT max(week_end) FROM marts.index_weekly").fetchall()[0][0]
        assert {r[0] for r in snap.execute(
            "SELECT DISTINCT up_streak FROM marts.index_weekly WHERE week_end = ?", [week]).fetchall()} == {99}
    finally:
        snap.close()

    # Parquet: unchanged tables are hard links to the previous generation, the others rewritten
    old_gen, new_gen = _generation(published, first), _generation(published, second)
    for name, change in changes.items():
        schema, table = name.split(".")
        old, new = old_gen / schema / f"{table}.parquet", new_gen / schema / f"{table}.parquet"
        if change == UNCHANGED:
            assert os.stat(new).st_ino == os.stat(old).st_ino, name
            assert second["parquet_files"][name] == "base-run"
            assert _kv(new)["capspread_run_id"] == "base-run"
        else:
            assert os.stat(new).st_ino != os.stat(old).st_ino, name
            assert second["parquet_files"][name] == "next-run"
            assert _kv(new)["capspread_run_id"] == "next-run"
    assert second["parquet_files"]["meta.runs"] == "next-run"
    # every Parquet file of the generation holds exactly its warehouse table
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
        for name in truth:
            schema, table = name.split(".")
            path = published / "parquet" / schema / f"{table}.parquet"
            for q in (f"FROM read_parquet('{path}') EXCEPT ALL FROM wh.{name}",
                      f"FROM wh.{name} EXCEPT ALL FROM read_parquet('{path}')"):
                assert con.execute(f"SELECT count(*) FROM ({q})").fetchall()[0][0] == 0, name
    finally:
        con.close()

    # a third run on top of the second: still identical to a full publish
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("DELETE FROM marts.market_scoreboard WHERE as_of_date = (SELECT max(as_of_date) "
                    "FROM marts.market_scoreboard) AND symbol = (SELECT min(symbol) FROM marts.market_scoreboard)")
        con.execute("INSERT INTO meta.runs BY NAME SELECT 'third-run' AS run_id, 'nightly' AS flow")
    finally:
        con.close()
    unchanged = next(n for n, c in changes.items() if c == UNCHANGED)
    schema, table = unchanged.split(".")
    first_file = os.stat(old_gen / schema / f"{table}.parquet").st_ino
    third = publish(warehouse, published, run_id="third-run", as_of=NEXT, base_run_id="next-run",
                    changes={**changes, "marts.market_scoreboard": Delta(f"as_of_date >= DATE '{NEXT}'")})
    assert third["mode"] == "incremental", third["mode_reason"]
    # the second publish kept the base snapshot as the spare; the third started from it, brought
    # it up to the second's state from the live file, then applied its own changes
    assert second["spare"]["run_id"] == "base-run"
    assert "spare snapshot" in third["mode_reason"] and "copy" not in third["mode_reason"], third["mode_reason"]
    assert third["spare"]["run_id"] == "next-run"
    publish(warehouse, tmp_path / "fresh3", run_id="fresh-third", as_of=NEXT)
    assert _differences(published / "capspread.duckdb", tmp_path / "fresh3" / "capspread.duckdb") == {}
    # a file unchanged twice still links to the file the first run wrote, and names that run
    assert third["parquet_files"][unchanged] == "base-run"
    assert os.stat(_generation(published, third) / schema / f"{table}.parquet").st_ino == first_file
    # two generations are kept: the third run's and the second's
    assert sorted(p.name for p in (published / ".parquet").iterdir()) == \
        sorted(Path(m["parquet_generation"]).name for m in (second, third))


def test_full_publish_when_the_base_is_not_the_published_run(warehouse, tmp_path):
    published = tmp_path / "published"
    publish(warehouse, published, run_id="base-run", as_of=AS_OF)
    changes = _changes_with_rest_unchanged(warehouse, _simulate_next_run(warehouse, "next-run"))

    m = publish(warehouse, published, run_id="next-run", as_of=NEXT, changes=changes, base_run_id="some-other-run")
    assert m["mode"] == "full" and "not the base" in m["mode_reason"]
    m = publish(warehouse, published, run_id="run-3", as_of=NEXT, changes=changes)
    assert m["mode"] == "full" and "no base run" in m["mode_reason"]
    m = publish(warehouse, published, run_id="run-4", as_of=NEXT, changes=changes, base_run_id="run-3",
                storage_version="v1.0.0")
    assert m["mode"] == "full" and "storage version" in m["mode_reason"]
    assert storage_version_number(published / "capspread.duckdb") == 64
    m = publish(warehouse, published, run_id="run-5", as_of=NEXT, changes={"marts.no_such_table": UNCHANGED},
                base_run_id="run-4", storage_version="v1.0.0")
    assert m["mode"] == "full" and "marts.no_such_table" in m["mode_reason"]
    # a snapshot replaced behind the manifest's back (a publish that died between its renames)
    os.utime(published / "capspread.duckdb", ns=(1, 1))
    m = publish(warehouse, published, run_id="run-6", as_of=NEXT, changes=changes, base_run_id="run-5",
                storage_version="v1.0.0")
    assert m["mode"] == "full" and "not the one the manifest describes" in m["mode_reason"]
    publish(warehouse, tmp_path / "fresh", run_id="fresh-run", as_of=NEXT, storage_version="v1.0.0")
    assert _differences(published / "capspread.duckdb", tmp_path / "fresh" / "capspread.duckdb") == {}


def test_full_publish_when_a_table_or_column_was_added(warehouse, tmp_path):
    published = tmp_path / "published"
    publish(warehouse, published, run_id="base-run", as_of=AS_OF)
    changes = _changes_with_rest_unchanged(warehouse, {})
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("CREATE TABLE marts.brand_new AS SELECT 1 AS x")
        con.execute("COMMENT ON TABLE marts.brand_new IS 'Grain: one row.'")
    finally:
        con.close()
    m = publish(warehouse, published, run_id="with-table", as_of=NEXT, changes=changes, base_run_id="base-run")
    assert m["mode"] == "full" and "new marts.brand_new" in m["mode_reason"], m["mode_reason"]
    assert m["tables"]["marts.brand_new"] == 1
    assert (published / "parquet" / "marts" / "brand_new.parquet").is_file()
    assert not list(published.glob(".capspread.duckdb.*"))

    con = duckdb.connect(str(warehouse))
    try:
        con.execute("ALTER TABLE marts.brand_new ADD COLUMN y INTEGER")
    finally:
        con.close()
    changes = _changes_with_rest_unchanged(warehouse, {})
    m = publish(warehouse, published, run_id="with-column", as_of=NEXT, changes=changes, base_run_id="with-table")
    assert m["mode"] == "full" and "columns differ" in m["mode_reason"] and "marts.brand_new" in m["mode_reason"]
    publish(warehouse, tmp_path / "fresh", run_id="fresh-run", as_of=NEXT)
    assert _differences(published / "capspread.duckdb", tmp_path / "fresh" / "capspread.duckdb") == {}

    # and with nothing changed in between, the next run is incremental again, comments included
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("COMMENT ON TABLE marts.brand_new IS 'Grain: one row, revised.'")
        con.execute("COMMENT ON COLUMN marts.brand_new.y IS 'A new column.'")
    finally:
        con.close()
    m = publish(warehouse, published, run_id="again", as_of=NEXT, changes=changes, base_run_id="with-column")
    assert m["mode"] == "incremental", m["mode_reason"]
    publish(warehouse, tmp_path / "fresh2", run_id="fresh-run2", as_of=NEXT)
    assert _differences(published / "capspread.duckdb", tmp_path / "fresh2" / "capspread.duckdb") == {}


def _published_state(published: Path) -> dict:
    return {
        "snapshot": (published / "capspread.duckdb").read_bytes(),
        "manifest": (published / "manifest.json").read_text(),
        "link": os.readlink(published / "parquet"),
        "entries": sorted(p.name for p in published.iterdir()),
        "generations": sorted(p.name for p in (published / ".parquet").iterdir()),
    }


def test_a_failed_incremental_publish_changes_nothing(warehouse, tmp_path, monkeypatch):
    published = tmp_path / "published"
    publish(warehouse, published, run_id="base-run", as_of=AS_OF)
    deltas = _simulate_next_run(warehouse, "next-run")
    changes = _changes_with_rest_unchanged(warehouse, deltas)
    before = _published_state(published)

    # a broken predicate fails inside the snapshot's transaction
    bad = {**changes, "marts.index_weekly": Delta("no_such_column > 0")}
    with pytest.raises(duckdb.Error):
        publish(warehouse, published, run_id="next-run", as_of=NEXT, changes=bad, base_run_id="base-run")
    assert _published_state(published) == before

    # the Parquet files fail after the snapshot copy was complete
    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(publish_module, "_write_parquet", broken)
    with pytest.raises(OSError, match="simulated"):
        publish(warehouse, published, run_id="next-run", as_of=NEXT, changes=changes, base_run_id="base-run")
    monkeypatch.undo()
    assert _published_state(published) == before

    with pytest.raises(PublishError, match="Delta or 'unchanged'"):
        publish(warehouse, published, run_id="next-run", as_of=NEXT, changes={"marts.index_weekly": "same"},
                base_run_id="base-run")
    with pytest.raises(PublishError, match="predicate"):
        Delta("  ")
    assert _published_state(published) == before

    # the failed attempts did not spoil the base: the retry is incremental and right
    m = publish(warehouse, published, run_id="next-run", as_of=NEXT, changes=changes, base_run_id="base-run")
    assert m["mode"] == "incremental", m["mode_reason"]
    publish(warehouse, tmp_path / "fresh", run_id="fresh-run", as_of=NEXT)
    assert _differences(published / "capspread.duckdb", tmp_path / "fresh" / "capspread.duckdb") == {}


def _years(gen: Path, name: str) -> dict[int, list[Path]]:
    schema, table = name.split(".")
    return {int(d.name.removeprefix("year=")): sorted(d.glob("*.parquet"))
            for d in sorted((gen / schema / table).iterdir())}


def _parquet_equals_warehouse(warehouse: Path, gen: Path, layout: str) -> None:
    """Every table of the generation holds exactly its warehouse rows; under the year layout each
    year folder holds the rows of its year."""
    dated = {"core.prices_daily": "trade_date", "marts.market_scoreboard": "as_of_date",
             "marts.index_weekly": "week_end"}
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
        for name in _tables(warehouse):
            schema, table = name.split(".")
            if layout == "year" and name in dated:
                assert not (gen / schema / f"{table}.parquet").exists()
                source = f"read_parquet('{gen / schema / table}/*/*.parquet', hive_partitioning = true)"
                assert con.execute(f"SELECT count(*) FROM {source} WHERE year <> year({dated[name]})"
                                   ).fetchall()[0][0] == 0, name
                source = f"(SELECT * EXCLUDE (year) FROM {source})"
            else:
                source = f"read_parquet('{gen / schema / f'{table}.parquet'}')"
            for q in (f"FROM {source} EXCEPT ALL FROM wh.{name}", f"FROM wh.{name} EXCEPT ALL FROM {source}"):
                assert con.execute(f"SELECT count(*) FROM ({q})").fetchall()[0][0] == 0, name
    finally:
        con.close()


def test_year_layout_rewrites_only_the_years_a_run_touched(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSPREAD_PARQUET_LAYOUT", "year")
    published = tmp_path / "published"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        last_board = con.execute("SELECT max(as_of_date) FROM marts.market_scoreboard").fetchall()[0][0]
        last_week = con.execute("SELECT max(week_end) FROM marts.index_weekly").fetchall()[0][0]
        price_years = {r[0] for r in con.execute("SELECT DISTINCT year(trade_date) FROM core.prices_daily").fetchall()}
    finally:
        con.close()
    first = publish(warehouse, published, run_id="base-run", as_of=AS_OF)
    assert first["parquet_layout"] == "year"
    assert set(_years(_generation(published, first), "core.prices_daily")) == price_years
    _parquet_equals_warehouse(warehouse, _generation(published, first), "year")

    deltas = _simulate_next_run(warehouse, "next-run")
    changes = _changes_with_rest_unchanged(warehouse, deltas)
    second = publish(warehouse, published, run_id="next-run", as_of=NEXT, changes=changes, base_run_id="base-run")
    assert second["mode"] == "incremental", second["mode_reason"]
    old_gen, new_gen = _generation(published, first), _generation(published, second)
    _parquet_equals_warehouse(warehouse, new_gen, "year")
    # the first year each table's changes touch (worked out from the simulated run): the newest
    # scoreboard day, the newest week, and for prices a correction of the oldest day (all years)
    touched = {"marts.market_scoreboard": last_board.year, "marts.index_weekly": last_week.year,
               "core.prices_daily": min(price_years)}
    for name, first_year in touched.items():
        old, new = _years(old_gen, name), _years(new_gen, name)
        assert set(new) >= set(old)
        for year, files in new.items():
            linked = year in old and [os.stat(f).st_ino for f in files] == [os.stat(f).st_ino for f in old[year]]
            assert linked == (year < first_year), (name, year)
            assert second["parquet_files"][f"{name}/year={year}"] == ("base-run" if linked else "next-run")
            assert {_kv(f)["capspread_run_id"] for f in files} == {second["parquet_files"][f"{name}/year={year}"]}
    assert len(_years(new_gen, "marts.market_scoreboard")) > 10  # the linking was exercised

    # back to one file per table: written in full, not linked from the folders
    monkeypatch.setenv("CAPSPREAD_PARQUET_LAYOUT", "table")
    third = publish(warehouse, published, run_id="third-run", as_of=NEXT, base_run_id="next-run",
                    changes={name: UNCHANGED for name in changes})
    assert third["parquet_layout"] == "table" and third["mode"] == "incremental", third["mode_reason"]
    _parquet_equals_warehouse(warehouse, _generation(published, third), "table")
    assert third["parquet_files"]["marts.market_scoreboard"] == "third-run"
    # and to folders again on top of files: written in full
    monkeypatch.setenv("CAPSPREAD_PARQUET_LAYOUT", "year")
    fourth = publish(warehouse, published, run_id="fourth-run", as_of=NEXT, base_run_id="third-run",
                     changes={name: UNCHANGED for name in changes})
    _parquet_equals_warehouse(warehouse, _generation(published, fourth), "year")
    assert {w for k, w in fourth["parquet_files"].items() if k.startswith("marts.market_scoreboard/")} == {"fourth-run"}


def test_an_unknown_parquet_layout_is_refused(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSPREAD_PARQUET_LAYOUT", "by-month")
    with pytest.raises(PublishError, match="CAPSPREAD_PARQUET_LAYOUT='by-month'.*table, year"):
        publish(warehouse, tmp_path / "published", run_id="run", as_of=AS_OF)
    assert not (tmp_path / "published" / "manifest.json").exists()


def _row_groups(path: Path) -> list[tuple[date, date, int]]:
    """(first day, last day, end of the chunk bytes) of each row group of a big table's file, read
    by DuckDB's own footer reader (the publish reads footers with pyarrow and its own codec)."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT row_group_id, min(CASE WHEN path_in_schema IN ('trade_date', 'as_of_date', 'week_end') "
            "THEN stats_min_value END), max(CASE WHEN path_in_schema IN ('trade_date', 'as_of_date', 'week_end') "
            "THEN stats_max_value END), max(coalesce(least(dictionary_page_offset, data_page_offset), "
            "data_page_offset) + total_compressed_size) FROM parquet_metadata(?) GROUP BY 1 ORDER BY 1",
            [str(path)]).fetchall()
    finally:
        con.close()
    return [(date.fromisoformat(lo), date.fromisoformat(hi), end) for _, lo, hi, end in rows]


def test_a_nightly_appends_to_the_files_of_the_tables_that_grow_by_day(warehouse, tmp_path, monkeypatch):
    # small row groups, so that the sample's tables have many
    monkeypatch.setattr(publish_module, "APPEND_OPTIONS", "WRITE_BLOOM_FILTER false, ROW_GROUP_SIZE 2048")
    monkeypatch.setattr(publish_module, "MERGE_BELOW_ROWS", 0)  # small groups merged: the next test
    published = tmp_path / "published"
    first = publish(warehouse, published, run_id="base-run", as_of=AS_OF)
    con = duckdb.connect(str(warehouse))
    try:
        last = con.execute("SELECT max(as_of_date) FROM marts.market_scoreboard").fetchall()[0][0]
        day = last + timedelta(days=1)
        # a new day: the newest day's scoreboard and price rows copied one day on
        con.execute("INSERT INTO marts.market_scoreboard SELECT * REPLACE (as_of_date + 1 AS as_of_date) "
                    "FROM marts.market_scoreboard WHERE as_of_date = ?", [last])
        con.execute("INSERT INTO core.prices_daily SELECT * REPLACE (trade_date + 1 AS trade_date, "
                    "TIMESTAMPTZ '2030-01-01 00:00:00+00' AS known_at) FROM core.prices_daily "
                    "WHERE trade_date = (SELECT max(trade_date) FROM core.prices_daily)")
        new_session = con.execute("SELECT max(trade_date) FROM core.prices_daily").fetchall()[0][0]
        con.execute("INSERT INTO meta.runs BY NAME SELECT 'next-run' AS run_id, 'nightly' AS flow")
    finally:
        con.close()
    deltas = {"marts.market_scoreboard": Delta(f"as_of_date >= DATE '{day}'"),
              "core.prices_daily": Delta("known_at >= TIMESTAMPTZ '2030-01-01 00:00:00+00'",
                                         key=("symbol", "trade_date")),
              # selects nothing: the file is the previous one
              "marts.index_weekly": Delta("week_end > DATE '2100-01-01'")}
    changes = _changes_with_rest_unchanged(warehouse, deltas)
    second = publish(warehouse, published, run_id="next-run", as_of=NEXT, changes=changes, base_run_id="base-run")
    assert second["mode"] == "incremental", second["mode_reason"]
    old_gen, new_gen = _generation(published, first), _generation(published, second)
    _parquet_equals_warehouse(warehouse, new_gen, "table")
    for name, new_day in (("marts.market_scoreboard", day), ("core.prices_daily", new_session)):
        schema, table = name.split(".")
        old, new = old_gen / schema / f"{table}.parquet", new_gen / schema / f"{table}.parquet"
        groups = _row_groups(old)
        assert len(groups) > 5 and all(hi < new_day for _, hi, _ in groups)  # every old row is older
        assert second["parquet_appended"][name] == \
            f"kept {len(groups)} of {len(groups)} row groups (rows before {new_day.isoformat()})"
        kept_end = max(end for _, _, end in groups)
        assert new.read_bytes()[:kept_end] == old.read_bytes()[:kept_end]
        assert _row_groups(new)[:len(groups)] == groups
        assert _kv(new)["capspread_run_id"] == "next-run" and second["parquet_files"][name] == "next-run"
    weekly = ("marts", "index_weekly.parquet")
    assert second["parquet_appended"]["marts.index_weekly"] == UNCHANGED
    assert os.stat(new_gen.joinpath(*weekly)).st_ino == os.stat(old_gen.joinpath(*weekly)).st_ino
    assert second["parquet_files"]["marts.index_weekly"] == "base-run"

    # the newest day revised: the groups before it are kept, the appended ones rewritten
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("UPDATE marts.market_scoreboard SET close = close + 1 WHERE as_of_date = ?", [day])
    finally:
        con.close()
    scoreboard = ("marts", "market_scoreboard.parquet")
    first_file = os.stat(old_gen.joinpath(*scoreboard)).st_ino
    third = publish(warehouse, published, run_id="third-run", as_of=NEXT, base_run_id="next-run",
                    changes={**{n: UNCHANGED for n in changes}, "marts.market_scoreboard": Delta(f"as_of_date >= DATE '{day}'")})
    groups = _row_groups(new_gen.joinpath(*scoreboard))
    before = sum(1 for _, hi, _ in groups if hi < day)
    assert 0 < before < len(groups)
    # the first run's file (its generation is removed by this publish) begins with the same row
    # groups: it is cut after them and appended to in place, not copied
    assert third["parquet_appended"]["marts.market_scoreboard"] == \
        f"kept {before} of {len(groups)} row groups (rows before {day.isoformat()}), " \
        f"in place: the file of {first['parquet_generation']}"
    assert os.stat(_generation(published, third).joinpath(*scoreboard)).st_ino == first_file
    assert not old_gen.exists() and new_gen.exists()
    _parquet_equals_warehouse(warehouse, _generation(published, third), "table")
    # the second run's file, which the next publish could recycle, also has another name now
    held = tmp_path / "held.parquet"
    os.link(new_gen.joinpath(*scoreboard), held)
    held_bytes = held.read_bytes()

    # a revision years back: whatever is kept holds only days before it, and before every day
    # the rest of the file holds, as the very bytes of the previous file
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("UPDATE marts.market_scoreboard SET close = close + 1 WHERE as_of_date = "
                    "(SELECT min(as_of_date) FROM marts.market_scoreboard WHERE year(as_of_date) = 2010)")
    finally:
        con.close()
    fourth = publish(warehouse, published, run_id="fourth-run", as_of=NEXT, base_run_id="third-run",
                     changes={**{n: UNCHANGED for n in changes},
                              "marts.market_scoreboard": Delta("as_of_date >= DATE '2010-01-01'")})
    _parquet_equals_warehouse(warehouse, _generation(published, fourth), "table")
    # a file with another name is left alone: copied from, not written over
    assert "in place" not in fourth["parquet_appended"]["marts.market_scoreboard"]
    assert held.read_bytes() == held_bytes
    previous = _generation(published, third) / "marts" / "market_scoreboard.parquet"
    new = _generation(published, fourth) / "marts" / "market_scoreboard.parquet"
    kept = int(fourth["parquet_appended"]["marts.market_scoreboard"].split()[1])
    groups = _row_groups(new)
    assert 0 < kept < len(groups)
    assert max(hi for _, hi, _ in groups[:kept]) < min([date(2010, 1, 1)] + [lo for lo, _, _ in groups[kept:]])
    assert groups[:kept] == _row_groups(previous)[:kept]
    kept_end = max(end for _, _, end in groups[:kept])
    assert new.read_bytes()[:kept_end] == previous.read_bytes()[:kept_end]

    def revise(run_id: str, base: str) -> dict:
        con = duckdb.connect(str(warehouse))
        try:
            con.execute("UPDATE marts.market_scoreboard SET close = close + 1 WHERE as_of_date = ?", [day])
        finally:
            con.close()
        return publish(warehouse, published, run_id=run_id, as_of=NEXT, base_run_id=base,
                       changes={**{n: UNCHANGED for n in changes},
                                "marts.market_scoreboard": Delta(f"as_of_date >= DATE '{day}'")})

    # a file some process has open (here: this one) is left alone, and its reader reads on
    candidate = _generation(published, third).joinpath(*scoreboard)
    with candidate.open("rb") as reader:
        before_bytes = reader.read()
        fifth = revise("fifth-run", "fourth-run")
        assert "in place" not in fifth["parquet_appended"]["marts.market_scoreboard"]
        reader.seek(0)
        assert reader.read() == before_bytes
    _parquet_equals_warehouse(warehouse, _generation(published, fifth), "table")
    sixth = revise("sixth-run", "fifth-run")  # nothing has the fourth run's file open: reused
    assert "in place: the file of " + fourth["parquet_generation"] in sixth["parquet_appended"]["marts.market_scoreboard"]
    _parquet_equals_warehouse(warehouse, _generation(published, sixth), "table")

    # a publish that fails after moving the file it reuses leaves the live files as they were;
    # the next one copies (the file it would have reused is gone with the failed generation)
    import warehouse.parquet_append as splice

    real = splice.append_row_groups

    def failing(old, keep, tail, out):
        if out is None:
            raise RuntimeError("disk full (simulated)")
        return real(old, keep, tail, out)

    def live(state: dict) -> dict:  # the spare snapshot is not live: a failed publish may use it up
        return {**state, "entries": [e for e in state["entries"] if e != ".capspread.duckdb.spare"]}

    before = _published_state(published)
    monkeypatch.setattr(splice, "append_row_groups", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        revise("failed-run", "sixth-run")
    assert live(_published_state(published)) == live(before)
    monkeypatch.setattr(splice, "append_row_groups", real)
    retried = revise("retried-run", "sixth-run")
    assert retried["mode"] == "incremental", retried["mode_reason"]
    assert "in place" not in retried["parquet_appended"]["marts.market_scoreboard"]
    _parquet_equals_warehouse(warehouse, _generation(published, retried), "table")
    assert sorted(p.name for p in (published / ".parquet").iterdir()) == \
        sorted(Path(m["parquet_generation"]).name for m in (sixth, retried))


def test_small_tail_finds_the_trailing_appended_groups_that_hold_less_than_a_group_together(monkeypatch):
    monkeypatch.setattr(publish_module, "MERGE_BELOW_ROWS", 1000)
    d = date
    # three groups of a backfill (each spans every day), then four nightly appends in day order
    bounds = [(d(2001, 1, 2), d(2026, 1, 5)), (d(2001, 1, 2), d(2026, 1, 5)), (d(2001, 1, 3), d(2026, 1, 5)),
              (d(2026, 1, 6), d(2026, 1, 6)), (d(2026, 1, 7), d(2026, 1, 7)), (d(2026, 1, 8), d(2026, 1, 8)),
              (d(2026, 1, 9), d(2026, 1, 9))]
    rows = [5000, 5000, 700, 300, 300, 300, 300]
    # keeping all seven: the last three appends hold 900 < 1000 rows; four would hold 1200
    assert publish_module._small_tail(bounds, rows, 7) == 4
    # keeping five: the two appends before the cut hold 600; the backfill's short last group spans
    # every day and is never merged
    assert publish_module._small_tail(bounds, rows, 5) == 3
    assert publish_module._small_tail(bounds, rows, 3) == 3
    # a group that starts on the day the one before it ends is not in day order: nothing merged
    assert publish_module._small_tail(bounds[:5] + [(d(2026, 1, 7), d(2026, 1, 8))], rows[:6], 6) == 6


def test_nightly_appends_keep_the_file_from_ending_in_ever_more_small_groups(warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(publish_module, "APPEND_OPTIONS", "WRITE_BLOOM_FILTER false, ROW_GROUP_SIZE 2048")
    monkeypatch.setattr(publish_module, "MERGE_BELOW_ROWS", 4096)
    published = tmp_path / "published"
    manifest = publish(warehouse, published, run_id="night-0", as_of=AS_OF)
    scoreboard = ("marts", "market_scoreboard.parquet")
    con = duckdb.connect(str(warehouse))
    try:
        base_last = con.execute("SELECT max(as_of_date) FROM marts.market_scoreboard").fetchall()[0][0]
    finally:
        con.close()
    counts = []
    for night in range(1, 5):
        con = duckdb.connect(str(warehouse))
        try:
            last = con.execute("SELECT max(as_of_date) FROM marts.market_scoreboard").fetchall()[0][0]
            con.execute("INSERT INTO marts.market_scoreboard SELECT * REPLACE (as_of_date + 1 AS as_of_date) "
                        "FROM marts.market_scoreboard WHERE as_of_date = ?", [last])
            day_rows = con.execute("SELECT count(*) FROM marts.market_scoreboard WHERE as_of_date = ?",
                                   [last]).fetchall()[0][0]
        finally:
            con.close()
        changes = {n: UNCHANGED for n in _changes_with_rest_unchanged(warehouse, {})}
        changes["marts.market_scoreboard"] = Delta(f"as_of_date > DATE '{last}'")
        manifest = publish(warehouse, published, run_id=f"night-{night}", as_of=NEXT, changes=changes,
                           base_run_id=f"night-{night - 1}")
        assert manifest["mode"] == "incremental", manifest["mode_reason"]
        _parquet_equals_warehouse(warehouse, _generation(published, manifest), "table")
        groups = _row_groups(_generation(published, manifest).joinpath(*scoreboard))
        counts.append(len(groups))
        # the days after the base file's groups sit in one group: earlier nights' were rewritten
        assert groups[-1][0] == min(lo for lo, _, _ in groups if lo > groups[-2][1]) and groups[-1][1] == last + timedelta(days=1)
        # every night's day is in that last group, not in a group of its own
        assert groups[-1][0] <= base_last + timedelta(days=1)
    assert day_rows * 4 < 4096  # four nights' rows fit one merged group
    assert counts == [counts[0]] * 4, counts


def test_a_spare_snapshot_with_another_name_is_left_alone(warehouse, tmp_path):
    """A spare snapshot that is also a file elsewhere (a backup made with hard links) is not
    written over: the next publish copies the live snapshot instead."""
    published = tmp_path / "published"
    publish(warehouse, published, run_id="base-run", as_of=AS_OF)
    changes = _changes_with_rest_unchanged(warehouse, _simulate_next_run(warehouse, "next-run"))
    second = publish(warehouse, published, run_id="next-run", as_of=NEXT, changes=changes, base_run_id="base-run")
    assert second["mode"] == "incremental" and second["spare"]["run_id"] == "base-run"
    backup = tmp_path / "backup.duckdb"
    os.link(published / ".capspread.duckdb.spare", backup)
    kept = backup.read_bytes()
    delta = {n: UNCHANGED for n in changes}
    third = publish(warehouse, published, run_id="third-run", as_of=NEXT, changes=delta, base_run_id="next-run")
    assert third["mode_reason"] == ("changed rows applied to a copy of the previous snapshot "
                                    "(the spare snapshot has another name (a hard link))")
    assert backup.read_bytes() == kept


def test_a_spare_snapshot_a_reader_still_has_open_is_left_alone(warehouse, tmp_path):
    """A DuckDB reader that opened the snapshot keeps reading the very rows it opened, through two
    more publishes: the second finds the reader's file (now the spare) locked and copies instead."""
    import subprocess
    import sys

    published = tmp_path / "published"
    publish(warehouse, published, run_id="base-run", as_of=AS_OF)
    changes = _changes_with_rest_unchanged(warehouse, _simulate_next_run(warehouse, "next-run"))
    second = publish(warehouse, published, run_id="next-run", as_of=NEXT, changes=changes, base_run_id="base-run")
    assert second["mode"] == "incremental", second["mode_reason"]
    query = "SELECT count(*), sum(close) FROM marts.market_scoreboard"
    reader = subprocess.Popen(
        [sys.executable, "-c", (
            "import duckdb, sys\n"
            f"con = duckdb.connect({str(published / 'capspread.duckdb')!r}, read_only=True)\n"
            f"print(con.execute({query!r}).fetchall(), flush=True)\n"
            "sys.stdin.readline()\n"
            f"print(con.execute({query!r}).fetchall(), flush=True)\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        opened = reader.stdout.readline().strip()
        con = duckdb.connect(str(warehouse))
        try:
            con.execute("UPDATE marts.market_scoreboard SET close = close + 1 WHERE as_of_date = "
                        "(SELECT max(as_of_date) FROM marts.market_scoreboard)")
            last = con.execute("SELECT max(as_of_date) FROM marts.market_scoreboard").fetchall()[0][0]
        finally:
            con.close()
        delta = {**{n: UNCHANGED for n in changes}, "marts.market_scoreboard": Delta(f"as_of_date >= DATE '{last}'")}
        third = publish(warehouse, published, run_id="third-run", as_of=NEXT, changes=delta, base_run_id="next-run")
        # the spare (the base snapshot) is free: used
        assert "spare snapshot" in third["mode_reason"], third["mode_reason"]
        fourth = publish(warehouse, published, run_id="fourth-run", as_of=NEXT, changes=delta, base_run_id="third-run")
        # the spare now is the file the reader opened: copied instead
        assert fourth["mode_reason"] == ("changed rows applied to a copy of the previous snapshot "
                                         "(a reader has the spare snapshot open)")
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == opened
    finally:
        reader.stdin.close()
        assert reader.wait(timeout=60) == 0
    fifth = publish(warehouse, published, run_id="fifth-run", as_of=NEXT, changes=delta, base_run_id="fourth-run")
    assert "spare snapshot" in fifth["mode_reason"], fifth["mode_reason"]
    publish(warehouse, tmp_path / "fresh", run_id="fresh-run", as_of=NEXT)
    assert _differences(published / "capspread.duckdb", tmp_path / "fresh" / "capspread.duckdb") == {}
