"""The scale benchmark's machinery on a tiny SYNTHETIC universe (20 symbols x 1 year).

Runs ``benchmarks.run`` in smoke mode (every workload in this process, the pipeline's Prefect
tasks as plain functions, so no Prefect server starts): the universe generator, the floor, the
real ``run_pipeline`` backfill and nightly on the synthetic source, and the report. Checks the
report's format and the SYNTHETIC label; no timing is asserted. The naive baseline (GX and
row-wise inserts on subsets) is left out for time; its extrapolation is checked on its own.
"""

from __future__ import annotations

import json
import re

import duckdb
import polars as pl
import pyarrow.parquet as pq
from polars.testing import assert_frame_equal

from benchmarks import SYNTHETIC
from benchmarks.baseline import extrapolate
from benchmarks.run import main
from benchmarks.synthetic import MANIFEST

SUMMARY = re.compile(
    r"^summary backfill_s=(\S+) floor_s=(\S+) pipeline_over_floor=(\S+) baseline_over_pipeline=(\S+) "
    r"nightly_s=(\S+) peak_rss_gib=(\S+)$"
)


def test_bench_smoke(tmp_path):
    out = tmp_path / "RESULTS.md"
    code = main([
        "--symbols", "20", "--years", "1", "--smoke", "--workdir", str(tmp_path / "work"), "--output", str(out),
        "--no-scaling", "--no-sample", "--no-prototypes", "--no-baseline", "--keep-homes",
    ])
    assert code == 0
    text = out.read_text()
    lines = text.rstrip("\n").splitlines()
    match = SUMMARY.match(lines[-1])
    assert match, lines[-1]
    values = dict(zip(("backfill", "floor", "ratio", "baseline", "nightly", "rss"), match.groups()))
    assert values.pop("baseline") == "NA"  # skipped here
    for value in values.values():
        assert float(value) >= 0
    assert SYNTHETIC in lines[0]
    for heading in ("## Machine", "## Universe", "## Targets", "## Backfill", "## Floor", "## Nightly",
                    "## First nightly after the backfill"):
        assert heading in text
    assert "| run_pipeline (total) |" in text
    # what the outputs cost by themselves: the snapshot written once holds the rows the backfill's
    # full publish counted in its snapshot
    def rows_of(section: str, stage: str) -> int:
        found = re.search(rf"^\| (?:› )*{re.escape(stage)} \| [^|]+ \| [^|]+ \| ([\d,]+) \|", section, re.M)
        assert found, (stage, section)
        return int(found[1].replace(",", ""))

    outputs = text.split("## The contract's outputs, written once", 1)[1].split("\n## ", 1)[0]
    backfill = text.split("## Backfill —", 1)[1].split("\n## ", 1)[0]
    assert rows_of(outputs, "snapshot: core, marts and meta into a new file") == \
        rows_of(backfill, "publish: DuckDB snapshot, full") > 0
    assert "What the outputs cost by themselves" in text
    assert "validation, landing (GX or set-based) |" in text and "validation, marts |" in text
    # the nightly run's mart mode (RunResult.mart_mode) and publish mode (the manifest's "mode") are reported
    assert re.search(r"nightly: marts (full|incremental), publish (full|incremental)\.", text), text

    # every generated file is labelled, by name and in its Parquet metadata
    data = next((tmp_path / "work").glob(f"{SYNTHETIC}_sym20_yr1_*"))
    files = sorted(data.iterdir())
    assert (data / MANIFEST).exists() and len(files) > 3
    for f in files:
        assert f.name.startswith(f"{SYNTHETIC}_"), f.name
        if f.suffix == ".parquet":
            assert pq.read_metadata(f).metadata[b"capspread_synthetic"] == b"true"
    nightly = [f for f in files if "_nightly_" in f.name]
    assert {f.name.split("_nightly_")[0] for f in nightly} == {f"{SYNTHETIC}_prices", f"{SYNTHETIC}_short_interest"}
    settlement = pl.read_parquet(next(f for f in nightly if "short_interest" in f.name))
    assert settlement["market"].unique().to_list() == [SYNTHETIC]

    # the backfill and the nightly run loaded the synthetic rows through the pipeline
    home = next((tmp_path / "work").glob(f"{SYNTHETIC}_home_main"))
    con = duckdb.connect(str(home / "published" / "capspread.duckdb"), read_only=True)
    try:
        sources = {r[0] for r in con.execute("SELECT DISTINCT source FROM core.prices_daily").fetchall()}
        symbols = con.execute("SELECT count(DISTINCT symbol), min(symbol) FROM core.prices_daily").fetchone()
        runs = con.execute("SELECT count(*), min(profile) FROM meta.runs").fetchone()
    finally:
        con.close()
    assert sources == {"synthetic"}
    assert symbols == (20, "SYN00000")
    assert runs == (3, "synthetic")  # the backfill, the first nightly, the nightly
    # the second nightly after the backfill started from the spare snapshot and appended to the
    # Parquet files of the tables that grow by day: in place, to the backfill's file (whose
    # generation it removed), keeping the backfill's row groups and rewriting the first nightly's
    manifest = json.loads((home / "published" / "manifest.json").read_text())
    assert manifest["mode"] == "incremental" and "spare snapshot" in manifest["mode_reason"], manifest["mode_reason"]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        for name, column in (("core.prices_daily", "trade_date"), ("marts.market_scoreboard", "as_of_date")):
            found = re.fullmatch(r"kept (\d+) of (\d+) row groups \(rows before (\S+)\), in place: the file of "
                                 r"(\.parquet/\S+)", manifest["parquet_appended"][name])
            assert found, manifest["parquet_appended"]
            kept, of, before = int(found[1]), int(found[2]), found[3]
            assert 0 < kept < of and not (home / "published" / found[4]).exists()
            path = home / "published" / "parquet" / f"{name.replace('.', '/')}.parquet"
            # the kept groups hold the days before the first nightly's day; the file, the warehouse's rows
            assert before == str(con.execute(f"SELECT max({column}) FROM {name} WHERE {column} < "
                                             f"(SELECT max({column}) FROM {name})").fetchall()[0][0])
            assert con.execute(f"SELECT count(*) FROM (FROM {name} EXCEPT ALL FROM read_parquet('{path}'))"
                               ).fetchall()[0][0] == 0
            assert con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchall() == \
                con.execute(f"SELECT count(*) FROM {name}").fetchall()
        # the short interest file too: the nightly's settlement appended to the backfill's rows
        assert re.fullmatch(r"kept \d+ of \d+ row groups \(rows before \S+\)(, in place: .*)?",
                            manifest["parquet_appended"]["core.short_interest"]), manifest["parquet_appended"]
        # every published table, in the incremental snapshot and in its Parquet file, holds exactly
        # the warehouse's rows (the run's changes described everything that differs)
        con.execute(f"ATTACH '{home / 'published' / 'capspread.duckdb'}' AS snap (READ_ONLY)")
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'snap' "
                             "AND schema_name IN ('core', 'marts')").fetchall()
        assert len(tables) > 10
        for schema, table in tables:
            path = home / "published" / "parquet" / schema / f"{table}.parquet"
            for copy in (f"snap.{schema}.{table}", f"read_parquet('{path}')"):
                for a, b in ((f"{schema}.{table}", copy), (copy, f"{schema}.{table}")):
                    assert con.execute(f"SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})").fetchall()[0][0] == 0, \
                        (schema, table, copy)
    finally:
        con.close()
    # the nightly rebuilt the short interest by bucket from its new settlement only, and the marts
    # it left are those of a full build from all of history
    from capspread.config import Config
    from flows.marts import other_marts

    nightly_section = text.split("## Nightly —", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"short interest by bucket incremental: from \d{4}-\d\d-\d\d", nightly_section), nightly_section
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        settlements = con.execute("SELECT max(settlement_date) FROM core.short_interest").fetchall()[0][0]
        as_of = con.execute("SELECT max(as_of_date) FROM meta.runs").fetchall()[0][0]
        config = Config.load(next(home.glob(f"{SYNTHETIC}_capspread.toml")))
        full = other_marts(con, config, as_of)
        for name in ("short_interest_by_bucket", "etf_short_interest", "factor_monthly"):
            got = con.sql(f"SELECT * FROM marts.{name}").pl().select(full[name].columns)
            keys = list(full[name].columns[:2])
            assert_frame_equal(got.sort(keys), full[name].sort(keys), check_exact=False, rel_tol=1e-12,
                               check_dtypes=False)
        assert full["short_interest_by_bucket"].height > 0
        assert full["short_interest_by_bucket"]["settlement_date"].max() == settlements
    finally:
        con.close()

    # the prototype that is not applied yet (one MERGE per dataset) runs and agrees with today's load
    from benchmarks.prototypes import run as prototypes

    found = prototypes({"data": str(data), "work": str(tmp_path / "work"),
                        "config": str(home / f"{SYNTHETIC}_capspread.toml")})
    assert not found["errors"], found["errors"]
    assert [c["name"] for c in found["changes"]] == ["One core MERGE per dataset"]
    assert found["changes"][0]["check"] == "same core rows and sums"
    assert found["applied"]


def test_baseline_extrapolation():
    seconds, per_row = extrapolate([(1000, 1.5), (2000, 2.5)], 10_000)
    assert abs(per_row - 0.001) < 1e-12 and abs(seconds - 10.5) < 1e-9
    seconds, per_row = extrapolate([(1000, 2.0), (2000, 1.0)], 10_000)  # noise: proportional from the larger point
    assert abs(seconds - 5.0) < 1e-9
