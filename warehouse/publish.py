"""Publishing: a read-only snapshot of core, marts and meta for analysts and BI tools.

The snapshot is written beside the published file under a temporary name, in a storage version
that older DuckDB readers can open, then renamed over the old one (atomic on POSIX): a reader
sees the old snapshot or the new one, never a mix, and an open reader never blocks a publish.
Parquet copies of every table go to ``published/parquet/<schema>/<table>.parquet`` the same way.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

PUBLISHED_SCHEMAS = ("core", "marts", "meta")
DEFAULT_STORAGE_VERSION = "v1.2.0"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _quote(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def publish(
    warehouse: Path,
    published: Path,
    *,
    run_id: str,
    as_of: date,
    storage_version: str | None = None,
) -> dict:
    """Write the snapshot and Parquet files from the warehouse file; returns the manifest."""
    storage_version = storage_version or os.environ.get("CAPSPREAD_STORAGE_VERSION", DEFAULT_STORAGE_VERSION)
    published.mkdir(parents=True, exist_ok=True)
    final = published / "capspread.duckdb"
    tmp = published / f".capspread.duckdb.{run_id}.tmp"
    tmp.unlink(missing_ok=True)

    con = duckdb.connect()  # in memory: reads the warehouse, writes the snapshot
    try:
        con.execute(f"ATTACH {_quote(str(warehouse))} AS wh (READ_ONLY)")
        con.execute("USE wh")
        return _publish(con, published, final, tmp, run_id, as_of, storage_version)
    finally:
        con.close()


def _publish(con, published: Path, final: Path, tmp: Path, run_id: str, as_of: date, storage_version: str) -> dict:
    tables = con.execute(
        "SELECT schema_name, table_name, comment FROM duckdb_tables() "
        "WHERE database_name = 'wh' AND schema_name IN ('core', 'marts', 'meta') "
        "ORDER BY schema_name, table_name"
    ).fetchall()
    columns = con.execute(
        "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
        "WHERE database_name = 'wh' AND schema_name IN ('core', 'marts', 'meta') AND comment IS NOT NULL"
    ).fetchall()

    con.execute(f"ATTACH {_quote(str(tmp))} AS snap (STORAGE_VERSION {_quote(storage_version)})")
    counts: dict[str, int] = {}
    try:
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"CREATE SCHEMA snap.{schema}")
        for schema, table, comment in tables:
            con.execute(f"CREATE TABLE snap.{schema}.{table} AS SELECT * FROM wh.{schema}.{table}")
            if comment:
                con.execute(f"COMMENT ON TABLE snap.{schema}.{table} IS {_quote(comment)}")
            counts[f"{schema}.{table}"] = con.execute(f"SELECT count(*) FROM snap.{schema}.{table}").fetchone()[0]
        for schema, table, column, comment in columns:
            con.execute(f'COMMENT ON COLUMN snap.{schema}.{table}."{column}" IS {_quote(comment)}')
    finally:
        con.execute("DETACH snap")
    _fsync(tmp)
    os.replace(tmp, final)

    parquet_root = published / "parquet"
    for schema, table, _ in tables:
        target = parquet_root / schema / f"{table}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{table}.{run_id}.tmp.parquet")
        con.execute(f"COPY wh.{schema}.{table} TO {_quote(str(part))} (FORMAT parquet, COMPRESSION zstd)")
        os.replace(part, target)

    manifest = {
        "run_id": run_id,
        "as_of_date": as_of.isoformat(),
        "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "snapshot": "capspread.duckdb",
        "storage_version": storage_version,
        "tables": counts,
    }
    mtmp = published / f".manifest.{run_id}.tmp"
    mtmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(mtmp, published / "manifest.json")
    return manifest
