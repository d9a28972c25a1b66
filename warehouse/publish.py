"""Publishing: a read-only snapshot of core, marts and meta for analysts and BI tools.

Everything a run publishes is written beside the live files first, then switched in with renames
(atomic on POSIX), so a reader sees the old snapshot or the new one, never a mix, and a reader that
keeps a file open never blocks a publish (the publisher never opens the live files):

``published/capspread.duckdb``
    the DuckDB snapshot, written as ``.capspread.duckdb.<run>.tmp`` in a storage version that older
    DuckDB readers can open (``CAPSPREAD_STORAGE_VERSION``, default ``v1.2.0``: DuckDB 1.2 and
    later), fsynced, then renamed over the old file. A reader that has the old file open keeps
    reading the old file until it reconnects.
``published/parquet/<schema>/<table>.parquet``
    ``parquet`` is a relative symbolic link to one generation directory
    ``published/.parquet/<generation>/``; a new generation is written in full, then the link is
    swapped with one rename, so every table under ``parquet/`` comes from the same run. The last
    ``KEEP_GENERATIONS`` generations stay in place, so a reader that resolved the link keeps a
    consistent set through the next publishes. Each file carries the run in its key-value
    metadata (``capspread_run_id``, ``capspread_as_of_date``).
``published/manifest.json``
    written last: which run and as-of date the snapshot holds, the storage version, the row count
    of every table and the Parquet generation.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

PUBLISHED_SCHEMAS = ("core", "marts", "meta")
DEFAULT_STORAGE_VERSION = "v1.2.0"
STORAGE_VERSION_ENV = "CAPSPREAD_STORAGE_VERSION"
SNAPSHOT = "capspread.duckdb"
PARQUET = "parquet"
GENERATIONS = ".parquet"
KEEP_GENERATIONS = 3

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_STORAGE_VERSION = re.compile(r"^(v\d+\.\d+\.\d+|latest)$")
_STALE = re.compile(r"^\.(capspread\.duckdb\..+\.tmp(\.wal)?|manifest\..+\.tmp|parquet\..+\.link)$")


class PublishError(RuntimeError):
    """The snapshot could not be published; the previous one is still in place."""


def resolve_storage_version(value: str | None = None) -> str:
    """The storage version to write: the argument, else ``CAPSPREAD_STORAGE_VERSION``, else the default."""
    version = (value or os.environ.get(STORAGE_VERSION_ENV) or DEFAULT_STORAGE_VERSION).strip()
    if not _STORAGE_VERSION.match(version):
        raise PublishError(
            f"{STORAGE_VERSION_ENV}={version!r} is not a DuckDB storage version; expected e.g. v1.0.0 "
            f"(readable by DuckDB 0.10 and later), v1.2.0 (DuckDB 1.2 and later) or latest"
        )
    return version


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _quote(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def _publish_lock(published: Path):
    """Publishes into one directory follow each other; readers never take this lock."""
    with (published / ".publish.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def publish(
    warehouse: Path,
    published: Path,
    *,
    run_id: str,
    as_of: date,
    storage_version: str | None = None,
) -> dict:
    """Write the snapshot and the Parquet files from the warehouse file; returns the manifest.

    Nothing under ``published/`` changes until everything is written; then the snapshot, the
    Parquet link and the manifest are switched in, in that order, with one rename each.
    """
    if not _RUN_ID.match(run_id):
        raise PublishError(f"run id {run_id!r} cannot name a file (letters, digits, '.', '_', '-')")
    version = resolve_storage_version(storage_version)
    warehouse, published = Path(warehouse), Path(published)
    if not warehouse.exists():
        raise PublishError(f"no warehouse at {warehouse}")
    published.mkdir(parents=True, exist_ok=True)
    with _publish_lock(published):
        _remove_stale(published)
        stamp = datetime.now(timezone.utc)
        generation = f"{stamp.strftime('%Y%m%dT%H%M%S%fZ')}-{run_id}"
        tmp = published / f".{SNAPSHOT}.{run_id}.tmp"
        gen_dir = published / GENERATIONS / generation
        try:
            con = duckdb.connect()  # in memory: reads the warehouse, writes the new files
            try:
                con.execute(f"ATTACH {_quote(str(warehouse))} AS wh (READ_ONLY)")
                tables, columns = _catalogue(con)
                counts = _write_snapshot(con, tmp, tables, columns, version)
                _write_parquet(con, gen_dir, tables, run_id, as_of)
            finally:
                con.close()
        except BaseException:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
            shutil.rmtree(gen_dir, ignore_errors=True)
            raise
        manifest = {
            "run_id": run_id,
            "as_of_date": as_of.isoformat(),
            "published_at": stamp.isoformat(timespec="seconds"),
            "snapshot": SNAPSHOT,
            "storage_version": version,
            "parquet": PARQUET,
            "parquet_generation": f"{GENERATIONS}/{generation}",
            "tables": counts,
        }
        # the switch: three renames in quick succession, the manifest last
        os.replace(tmp, published / SNAPSHOT)
        _swap_link(published, f"{GENERATIONS}/{generation}", run_id)
        mtmp = published / f".manifest.{run_id}.tmp"
        mtmp.write_text(json.dumps(manifest, indent=2) + "\n")
        _fsync(mtmp)
        os.replace(mtmp, published / "manifest.json")
        _fsync(published)
        _prune(published, keep=generation)
    return manifest


def _catalogue(con) -> tuple[list[tuple], list[tuple]]:
    schemas = ", ".join(_quote(s) for s in PUBLISHED_SCHEMAS)
    tables = con.execute(
        "SELECT schema_name, table_name, comment FROM duckdb_tables() "
        f"WHERE database_name = 'wh' AND schema_name IN ({schemas}) AND NOT temporary "
        "ORDER BY schema_name, table_name"
    ).fetchall()
    columns = con.execute(
        "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
        f"WHERE database_name = 'wh' AND schema_name IN ({schemas}) AND comment IS NOT NULL "
        "ORDER BY schema_name, table_name, column_index"
    ).fetchall()
    return tables, columns


def _write_snapshot(con, tmp: Path, tables: list[tuple], columns: list[tuple], version: str) -> dict[str, int]:
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con.execute(f"ATTACH {_quote(str(tmp))} AS snap (STORAGE_VERSION {_quote(version)})")
    counts: dict[str, int] = {}
    try:
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"CREATE SCHEMA snap.{_ident(schema)}")
        for schema, table, comment in tables:
            name = f"{_ident(schema)}.{_ident(table)}"
            con.execute(f"CREATE TABLE snap.{name} AS SELECT * FROM wh.{name}")
            if comment:
                con.execute(f"COMMENT ON TABLE snap.{name} IS {_quote(comment)}")
            counts[f"{schema}.{table}"] = con.execute(f"SELECT count(*) FROM snap.{name}").fetchone()[0]
        for schema, table, column, comment in columns:
            con.execute(f"COMMENT ON COLUMN snap.{_ident(schema)}.{_ident(table)}.{_ident(column)} IS {_quote(comment)}")
    finally:
        con.execute("DETACH snap")  # checkpoints: the file is complete and has no WAL beside it
    _fsync(tmp)
    return counts


def _write_parquet(con, gen_dir: Path, tables: list[tuple], run_id: str, as_of: date) -> None:
    for schema, table, comment in tables:
        target = gen_dir / schema / f"{table}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        kv = (
            f"capspread_run_id: {_quote(run_id)}, capspread_as_of_date: {_quote(as_of.isoformat())}, "
            f"capspread_table: {_quote(f'{schema}.{table}')}, capspread_comment: {_quote(comment or '')}"
        )
        con.execute(
            f"COPY wh.{_ident(schema)}.{_ident(table)} TO {_quote(str(target))} "
            f"(FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{kv}}})"
        )
        _fsync(target)
    for d in sorted({p.parent for p in gen_dir.rglob("*.parquet")} | {gen_dir}):
        _fsync(d)


def _swap_link(published: Path, target: str, run_id: str) -> None:
    """Point ``published/parquet`` at ``target`` with one rename (a link replaces a link atomically)."""
    link = published / PARQUET
    if link.exists() and not link.is_symlink():
        # the layout before generations: a real directory; move it aside once
        legacy = published / GENERATIONS / f"00000000T000000000000Z-legacy-{os.getpid()}"
        legacy.parent.mkdir(parents=True, exist_ok=True)
        os.replace(link, legacy)
    tmp_link = published / f".{PARQUET}.{run_id}.link"
    tmp_link.unlink(missing_ok=True)
    os.symlink(target, tmp_link, target_is_directory=True)
    os.replace(tmp_link, link)


def _remove_stale(published: Path) -> None:
    """Temporary files a crashed publish left behind (safe: we hold the publish lock)."""
    for p in published.iterdir():
        if _STALE.match(p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def _prune(published: Path, keep: str) -> None:
    """Keep the newest ``KEEP_GENERATIONS`` Parquet generations (names sort by time)."""
    root = published / GENERATIONS
    gens = sorted(p.name for p in root.iterdir() if p.is_dir())
    for name in gens[:-KEEP_GENERATIONS]:
        if name != keep:
            shutil.rmtree(root / name, ignore_errors=True)

