"""The floor: the least work any pipeline that validates these files must do.

1. a Polars scan of the same SYNTHETIC Parquet files the pipeline loads;
2. one Arrow insert per dataset into a DuckDB file (``CREATE TABLE … AS SELECT * FROM frame``);
3. the landing suites' rules (``expectations/landing.py``) as one DuckDB aggregate query per
   dataset: null keys, duplicate keys, ranges, high >= low, nothing after the as-of date,
   XNYS sessions, day-over-day moves.

Measured for the backfill (the history files) and for the nightly files (appended to the same
database; the move rule looks back at each symbol's previous close).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

PRICES_RULES = """
WITH p AS (
    SELECT *, lag(trade_date) OVER w AS prev_date, lag(close) OVER w AS prev_close
    FROM {table} WINDOW w AS (PARTITION BY symbol ORDER BY trade_date)
)
SELECT
    count(*) AS rows,
    count(*) FILTER (WHERE p.trade_date = p.prev_date) AS duplicate_keys,
    count(*) FILTER (WHERE p.symbol IS NULL OR p.trade_date IS NULL) AS null_keys,
    count(*) FILTER (WHERE p.close IS NULL) AS null_close,
    count(*) FILTER (WHERE p.close <= 0) AS close_not_positive,
    count(*) FILTER (WHERE p.open <= 0) AS open_not_positive,
    count(*) FILTER (WHERE p.volume < 0) AS volume_negative,
    max(p.trade_date) > $as_of AS after_as_of,
    count(*) FILTER (WHERE p.high < p.low) AS high_below_low,
    count(*) FILTER (WHERE abs(p.close / p.prev_close - 1) > $max_move) AS large_moves,
    count(*) FILTER (WHERE s.trade_date IS NULL) AS not_sessions
FROM p LEFT JOIN sessions AS s ON s.trade_date = p.trade_date
{where}
"""

SHORT_INTEREST_RULES = """
WITH p AS (
    SELECT *, lag(settlement_date) OVER (PARTITION BY symbol ORDER BY settlement_date) AS prev_date FROM {table}
)
SELECT
    count(*) AS rows,
    count(*) FILTER (WHERE settlement_date = prev_date) AS duplicate_keys,
    count(*) FILTER (WHERE symbol IS NULL OR settlement_date IS NULL) AS null_keys,
    count(*) FILTER (WHERE short_interest < 0) AS short_negative,
    count(*) FILTER (WHERE prior_short_interest < 0) AS prior_negative,
    count(*) FILTER (WHERE avg_daily_volume < 0) AS volume_negative,
    count(*) FILTER (WHERE days_to_cover < 0 OR days_to_cover >= 999) AS days_to_cover_out_of_range,
    max(settlement_date) > $as_of AS after_as_of
FROM p {where}
"""

HOLDINGS_RULES = """
SELECT count(*) AS rows,
    count(*) FILTER (WHERE fund IS NULL OR as_of_date IS NULL OR symbol IS NULL) AS null_keys,
    count(*) - count(DISTINCT (fund, as_of_date, symbol)) AS duplicate_keys,
    count(*) FILTER (WHERE weight < -1 OR weight > 1) AS weight_out_of_range,
    max(as_of_date) > $as_of AS after_as_of,
    (SELECT count(*) FROM (SELECT sum(weight) FILTER (WHERE asset_class = 'Equity') AS w FROM {table}
                           GROUP BY fund, as_of_date) WHERE w < 0.9 OR w > 1.05) AS weight_sums_off
FROM {table} {where}
"""

DATE_COLUMN = {"prices": "trade_date", "short_interest": "settlement_date", "holdings": "as_of_date"}
RULES = {"prices": PRICES_RULES, "short_interest": SHORT_INTEREST_RULES, "holdings": HOLDINGS_RULES}


def run(spec: dict) -> dict:
    import duckdb
    import polars as pl

    from benchmarks.measure import Recorder
    from benchmarks.synthetic import MANIFEST, files_of
    from transforms.calendar import sessions

    folder = Path(spec["data"])
    manifest = json.loads((folder / MANIFEST).read_text())
    as_of, nightly = date.fromisoformat(manifest["end"]), date.fromisoformat(manifest["nightly"])
    db_path = Path(spec["work"]) / "SYNTHETIC_floor.duckdb"
    for p in (db_path, db_path.with_name(db_path.name + ".wal")):
        p.unlink(missing_ok=True)
    rec = Recorder().start()
    out: dict = {"checks": {}, "rows": {}}
    con = duckdb.connect(str(db_path))
    cal = sessions(date.fromisoformat(manifest["start"]), nightly)
    con.register("sessions", cal.select("trade_date").to_arrow())
    for phase, role, day in (("backfill", "history", as_of), ("nightly", "nightly", nightly)):
        frames = {}
        with rec.stage(f"{phase}: Polars scan of the files") as h:
            for dataset in RULES:
                files = files_of(manifest, folder, dataset, role)
                if files:
                    frames[dataset] = pl.scan_parquet(files).collect()
            h["rows"] = sum(f.height for f in frames.values())
        with rec.stage(f"{phase}: Arrow insert into DuckDB") as h:
            for dataset, frame in frames.items():
                if phase == "backfill":
                    con.execute(f"CREATE TABLE {dataset} AS SELECT * FROM frame")
                else:
                    con.execute(f"INSERT INTO {dataset} SELECT * FROM frame")
            h["rows"] = sum(f.height for f in frames.values())
        with rec.stage(f"{phase}: rules as one aggregate query per dataset") as h:
            for dataset, frame in frames.items():
                table, where = dataset, ""
                if phase == "nightly":  # the new rows, with a bounded look-back for the previous close
                    column = DATE_COLUMN[dataset]
                    first = frame[column].min()
                    table = f"(SELECT * FROM {dataset} WHERE {column} >= DATE '{first - timedelta(days=40)}')"
                    where = f"WHERE {'p.' if dataset != 'holdings' else ''}{column} >= DATE '{first}'"
                params = {"as_of": day, "max_move": 0.35} if dataset == "prices" else {"as_of": day}
                cur = con.execute(RULES[dataset].format(table=table, where=where), params)
                names = [d[0] for d in cur.description]
                out["checks"][f"{phase}:{dataset}"] = dict(zip(names, cur.fetchone()))
            h["rows"] = sum(f.height for f in frames.values())
        out["rows"][phase] = {d: f.height for d, f in frames.items()}
        con.execute("CHECKPOINT")
        del frames
    con.close()
    rec.stop()
    out["stages"] = rec.as_dicts()
    out["db_bytes"] = db_path.stat().st_size
    db_path.unlink(missing_ok=True)
    return out


def outputs(spec: dict) -> dict:
    """The least work of writing what the contract asks a backfill to leave behind, on the rows the
    pipeline's backfill produced (``spec["warehouse"]``, opened read-only): no parsing, validation,
    transforms or orchestration, each output written once from DuckDB tables by DuckDB.

    1. the warehouse's second copy of the landed rows (``core`` beside ``raw``; the floor above
       writes the first) and its mart rows, into a scratch DuckDB file;
    2. the snapshot: ``core``, ``marts`` and ``meta`` into another scratch DuckDB file, in the
       snapshot's storage version;
    3. the Parquet file of every published table, with the publish's writer options.

    Added to the floor (scan, one insert, rules), this is what a pipeline with no overhead at all
    would take to leave the same files: the reference for the backfill's overhead beyond what the
    contract's outputs cost by themselves."""
    import shutil

    import duckdb

    from benchmarks.measure import Recorder
    from warehouse.db import memory_limit
    from warehouse.publish import (
        APPEND_OPTIONS,
        APPENDABLE,
        DEFAULT_STORAGE_VERSION,
        PARQUET_OPTIONS,
        PUBLISHED_SCHEMAS,
    )

    work = Path(spec["work"]) / "SYNTHETIC_outputs"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rec = Recorder().start()
    con = duckdb.connect(config={"memory_limit": memory_limit()})  # capped as the pipeline's connections are
    con.execute(f"ATTACH '{spec['warehouse']}' AS wh (READ_ONLY)")
    schemas = ", ".join(f"'{s}'" for s in PUBLISHED_SCHEMAS)
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() "
        f"WHERE database_name = 'wh' AND schema_name IN ({schemas}) ORDER BY schema_name, table_name").fetchall()
    rows = {f"{s}.{t}": con.execute(f"SELECT count(*) FROM wh.{s}.{t}").fetchone()[0] for s, t in tables}

    def copy_into(alias: str, picked: list[tuple]) -> int:
        for s in sorted({s for s, _ in picked}):
            con.execute(f"CREATE SCHEMA {alias}.{s}")
        for s, t in picked:
            con.execute(f"CREATE TABLE {alias}.{s}.{t} AS SELECT * FROM wh.{s}.{t}")
        con.execute(f"DETACH {alias}")  # checkpoints
        return sum(rows[f"{s}.{t}"] for s, t in picked)

    with rec.stage("warehouse: core and mart rows, written once") as h:
        con.execute(f"ATTACH '{work / 'warehouse.duckdb'}' AS w")
        h["rows"] = copy_into("w", [x for x in tables if x[0] in ("core", "marts")])
    with rec.stage("snapshot: core, marts and meta into a new file") as h:
        con.execute(f"ATTACH '{work / 'snapshot.duckdb'}' AS s (STORAGE_VERSION '{DEFAULT_STORAGE_VERSION}')")
        h["rows"] = copy_into("s", tables)
    with rec.stage("Parquet: one file per published table") as h:
        for s, t in tables:
            options = f"{PARQUET_OPTIONS}, {APPEND_OPTIONS}" if f"{s}.{t}" in APPENDABLE else PARQUET_OPTIONS
            con.execute(f"COPY wh.{s}.{t} TO '{work / f'{s}.{t}.parquet'}' (FORMAT parquet, {options})")
        h["rows"] = sum(rows.values())
    con.close()
    rec.stop()
    shutil.rmtree(work, ignore_errors=True)
    return {"stages": rec.as_dicts(), "rows": rows}
