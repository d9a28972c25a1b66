"""How BI tools and notebooks reach the published snapshot: the SQLAlchemy URL through
duckdb-engine (read-only), pandas.read_sql, duckdb.connect(read_only=True), the Parquet export
with Polars and DuckDB globbing, and which run a snapshot holds (manifest.json, meta.runs)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from conftest import REPO
from real_closes import closes
from sqlalchemy.pool import NullPool
from warehouse_variants import copy_warehouse, make_variant, storage_version_number

from warehouse.publish import publish

AS_OF = date(2025, 6, 11)


@pytest.fixture(scope="module")
def home(home_2025_06_11) -> Path:
    home, proc = home_2025_06_11
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return home


def read_only_url(snapshot: Path) -> str:
    """The URL documented in docs/bi.md."""
    return f"duckdb:///{snapshot}?access_mode=read_only"


def test_manifest_and_meta_runs_name_the_run_and_as_of_date(home_2025_06_11):
    home, proc = home_2025_06_11
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first_run = re.search(r"capspread run (\S+)", proc.stdout).group(1)  # as the run printed it
    published = home / "published"
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["storage_version"] == "v1.2.0"
    assert storage_version_number(published / "capspread.duckdb") == 65

    con = duckdb.connect(str(published / "capspread.duckdb"), read_only=True)
    try:
        runs = con.execute(
            "SELECT run_id, as_of_date, status, published, finished_at FROM meta.runs ORDER BY finished_at"
        ).fetchall()
        counts = {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in manifest["tables"]}
        names = {f"{s}.{t}" for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    # the run that the command printed is recorded with the --as-of date it was given
    assert (first_run, AS_OF, True) in {(r[0], r[1], r[3]) for r in runs}
    # the snapshot holds the newest run (later tests may run again on this home), and the manifest says so
    newest = runs[-1]
    assert newest[3] is True and newest[2] in ("success", "quarantined")
    assert manifest["run_id"] == newest[0]
    assert manifest["as_of_date"] == newest[1].isoformat()
    assert datetime.fromisoformat(manifest["published_at"]) >= newest[4].replace(microsecond=0)
    assert names == set(manifest["tables"]) and counts == manifest["tables"]
    # each Parquet file names the run that wrote it, as the manifest says: this run for every table
    # it changed, an earlier published run for a table it left unchanged (the file is kept)
    published_runs = {r[0]: r[1].isoformat() for r in runs if r[3]}
    assert set(manifest["parquet_files"]) == set(manifest["tables"])
    for name in manifest["tables"]:
        schema, table = name.split(".")
        meta = pq.read_schema(published / "parquet" / schema / f"{table}.parquet").metadata
        writer = meta[b"capspread_run_id"].decode()
        assert writer == manifest["parquet_files"][name] and writer in published_runs, name
        assert meta[b"capspread_as_of_date"].decode() == published_runs[writer]
    assert manifest["parquet_files"]["meta.runs"] == manifest["run_id"]  # rewritten by every run
    # the scoreboard's file is this run's unless the run changed none of its rows (a run again on
    # the same as-of date): then the previous file stays, and the manifest says why
    if manifest.get("parquet_appended", {}).get("marts.market_scoreboard") == "unchanged":
        assert manifest["parquet_files"]["marts.market_scoreboard"] != manifest["run_id"]
    else:
        assert manifest["parquet_files"]["marts.market_scoreboard"] == manifest["run_id"]


def test_sqlalchemy_url_through_duckdb_engine_is_read_only(home):
    snapshot = home / "published" / "capspread.duckdb"
    c = closes("IWM")
    for engine in (
        sa.create_engine(read_only_url(snapshot), poolclass=NullPool),
        sa.create_engine(f"duckdb:///{snapshot}", connect_args={"read_only": True}, poolclass=NullPool),
    ):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_setting('access_mode')").scalar() == "read_only"
            close = conn.execute(sa.text(
                "SELECT close FROM marts.market_scoreboard WHERE symbol = :s AND as_of_date = :d"),
                {"s": "IWM", "d": AS_OF}).scalar()
            assert close == pytest.approx(c[AS_OF])
            with pytest.raises(sa.exc.DBAPIError, match="read-only"):
                conn.exec_driver_sql("CREATE TABLE marts.scratch AS SELECT 1 AS x")
        frame = pd.read_sql(
            "SELECT as_of_date, symbol, close FROM marts.market_scoreboard "
            "WHERE symbol = 'IWM' AND as_of_date BETWEEN '2025-06-02' AND '2025-06-11' ORDER BY as_of_date",
            engine,
        )
        want = {d: v for d, v in c.items() if date(2025, 6, 2) <= d <= AS_OF}
        assert [pd.Timestamp(d).date() for d in frame["as_of_date"]] == sorted(want)
        assert frame["close"].tolist() == pytest.approx([want[d] for d in sorted(want)])
        # what a BI tool's schema browser asks for
        inspector = sa.inspect(engine)
        assert {"factor_monthly", "market_scoreboard"} <= set(inspector.get_table_names(schema="marts"))
        assert inspector.get_table_comment("factor_monthly", schema="marts")["text"].startswith("Grain:")
        assert [col["name"] for col in inspector.get_columns("market_scoreboard", schema="marts")][:2] == [
            "as_of_date", "symbol"]
        engine.dispose()


def test_a_pooled_connection_keeps_its_snapshot_and_a_new_one_sees_the_next(home, tmp_path):
    warehouse = copy_warehouse(home, tmp_path / "work")
    published = tmp_path / "published"
    first = make_variant(warehouse, "bi-first", AS_OF)
    publish(warehouse, published, run_id="bi-first", as_of=AS_OF)
    url = read_only_url(published / "capspread.duckdb")
    per_query = sa.create_engine(url, poolclass=NullPool)  # what Superset does by default
    pooled = sa.create_engine(url)  # SQLAlchemy's default QueuePool keeps the connection open
    newest = "SELECT run_id FROM meta.runs ORDER BY finished_at DESC LIMIT 1"
    count = "SELECT count(*) FROM marts.market_scoreboard"
    try:
        with per_query.connect() as conn:
            assert conn.exec_driver_sql(newest).scalar() == "bi-first"
        with pooled.connect() as conn:
            assert conn.exec_driver_sql(newest).scalar() == "bi-first"
        # the pool keeps that connection open while the next run publishes
        second = make_variant(warehouse, "bi-second", AS_OF, cut_days=20)
        publish(warehouse, published, run_id="bi-second", as_of=AS_OF)
        with pooled.connect() as conn:  # the same pooled connection: still the whole old snapshot
            assert conn.exec_driver_sql(newest).scalar() == "bi-first"
            assert conn.exec_driver_sql(count).scalar() == first["scoreboard"]
        # in the same process DuckDB hands every new connection to that path the database already
        # open there, so even the per-query engine sees the old snapshot while the pool holds it
        with per_query.connect() as conn:
            assert conn.exec_driver_sql(newest).scalar() == "bi-first"
        pooled.dispose()  # nothing holds the old file any more: every new connection opens the new one
        with per_query.connect() as conn:
            assert conn.exec_driver_sql(newest).scalar() == "bi-second"
            assert conn.exec_driver_sql(count).scalar() == second["scoreboard"]
        with pooled.connect() as conn:
            assert conn.exec_driver_sql(newest).scalar() == "bi-second"
    finally:
        pooled.dispose()
        per_query.dispose()


def test_parquet_export_reads_with_polars_and_duckdb_globbing(home):
    published = home / "published"
    manifest = json.loads((published / "manifest.json").read_text())
    parquet = published / "parquet"
    con = duckdb.connect(str(published / "capspread.duckdb"), read_only=True)
    try:
        snapshot_frame = con.sql("SELECT * FROM marts.size_spread_monthly ORDER BY month, pair").pl()
        # DuckDB globbing: every file, its rows and its run, against the manifest
        files = con.execute(
            f"SELECT file_name, num_rows FROM parquet_file_metadata('{parquet}/*/*.parquet')").fetchall()
        kv = con.execute(
            f"SELECT DISTINCT decode(value) FROM parquet_kv_metadata('{parquet}/**/*.parquet') "
            "WHERE decode(key) = 'capspread_run_id'").fetchall()
        spread_files = con.execute(
            f"SELECT parse_filename(filename, true) AS t, count(*) FROM read_parquet('{parquet}/marts/size_spread_*.parquet', "
            "union_by_name = true, filename = true) GROUP BY ALL ORDER BY 1").fetchall()
    finally:
        con.close()
    by_table = {f"{Path(f).parent.name}.{Path(f).stem}": n for f, n in files}
    assert by_table == manifest["tables"]
    assert sorted(kv) == sorted((r,) for r in set(manifest["parquet_files"].values()))
    assert (manifest["run_id"],) in kv
    assert spread_files == [("size_spread_daily", manifest["tables"]["marts.size_spread_daily"]),
                            ("size_spread_monthly", manifest["tables"]["marts.size_spread_monthly"])]

    frame = pl.read_parquet(parquet / "marts" / "size_spread_monthly.parquet").sort("month", "pair")
    assert frame.equals(snapshot_frame)
    lazy = pl.scan_parquet(parquet / "marts" / "market_scoreboard.parquet")
    iwm = lazy.filter((pl.col("symbol") == "IWM") & (pl.col("as_of_date") == AS_OF)).collect()
    assert iwm["close"].item() == pytest.approx(closes("IWM")[AS_OF])


def _doc_blocks(language: str) -> list[str]:
    text = (REPO / "docs" / "bi.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


RUN_BLOCKS = """
import sys, traceback
failed = 0
for path in sys.argv[1:]:
    code = open(path).read()
    try:
        exec(compile(code, path, "exec"), {"__name__": "__main__"})
    except BaseException:
        failed += 1
        print("--- " + path + " ---\\n" + code, file=sys.stderr)
        traceback.print_exc()
sys.exit(1 if failed else 0)
"""


def test_the_python_examples_in_docs_bi_run(home, tmp_path):
    blocks = _doc_blocks("python")
    assert len(blocks) >= 4
    paths = []
    for i, block in enumerate(blocks):
        paths.append(tmp_path / f"example_{i}.py")
        paths[-1].write_text(block)
    env = {**os.environ, "CAPSPREAD_HOME": str(home)}
    # one interpreter for all blocks (each in a namespace of its own): the imports cost seconds
    proc = subprocess.run([sys.executable, "-c", RUN_BLOCKS, *map(str, paths)], env=env, capture_output=True,
                          text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert read_only_url(Path("/x")).split("/x")[1] in (REPO / "docs" / "bi.md").read_text()


def test_the_sql_examples_in_docs_bi_run_on_the_snapshot(home):
    """The SQL blocks are written for a `duckdb` shell started in CAPSPREAD_HOME."""
    blocks = _doc_blocks("sql")
    assert blocks
    con = duckdb.connect()
    cwd = os.getcwd()
    os.chdir(home)
    try:
        for block in blocks:
            for statement in con.extract_statements(block):
                con.execute(statement.query).fetchall()
    finally:
        os.chdir(cwd)
        con.close()
