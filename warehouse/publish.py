"""Publishing: a read-only snapshot of core, marts and meta for analysts and BI tools.

Everything a run publishes is written beside the live files first, then switched in with renames
(atomic on POSIX), so a reader sees the old snapshot or the new one, never a mix, and a reader that
keeps a file open never blocks a publish (the publisher opens a live file only to read it):

``published/capspread.duckdb``
    the DuckDB snapshot, written as ``.capspread.duckdb.<run>.tmp`` in a storage version that older
    DuckDB readers can open (``CAPSPREAD_STORAGE_VERSION``, default ``v1.2.0``: DuckDB 1.2 and
    later), fsynced, then renamed over the old file. A reader that has the old file open keeps
    reading the old file until it reconnects.
``published/parquet/<schema>/<table>.parquet``
    ``parquet`` is a relative symbolic link to one generation directory
    ``published/.parquet/<generation>/``; a new generation is complete before the link is swapped
    with one rename, so every table under ``parquet/`` comes from the same run. The new and the
    previous generation stay in place, so a reader that resolved the link keeps a consistent set
    through the next publish; older ones are removed (``_prune``), and their files of the tables
    that grow by day may first be reused (never one a process has open). Each file carries the run
    in its key-value metadata (``capspread_run_id``, ``capspread_as_of_date``).
``published/manifest.json``
    written last: which run and as-of date the snapshot holds, the storage version, the row count
    of every table and the Parquet generation.

Incremental publishing (``changes=``): a run that knows which rows it wrote names them per table
(``Delta``) or marks a table ``UNCHANGED``; the new snapshot is then a copy of the previous one
(still written beside the live file, under the temporary name, and renamed over it) with only
those rows replaced, in one transaction, and the new Parquet generation hard-links the previous
generation's files of the unchanged tables. Instead of a copy, the snapshot the previous publish
replaced is reused when no reader has it open (``_take_spare``; kept as ``.capspread.duckdb.spare``,
the manifest's ``spare`` says what brings it up to date): the previous run's changes are applied
to it from the live snapshot, then this run's from the warehouse. Every guarantee above holds as
in a full publish. It is done only when the previous publish is provably the base the changes are relative to (the
manifest names ``base_run_id``, the same storage version, the snapshot file is the one that
manifest describes, and its tables and columns are the warehouse's); otherwise the run publishes
in full. The manifest says which (``mode``, ``mode_reason``). A linked Parquet file keeps the key-
value metadata of the run that wrote it; the manifest's ``parquet_files`` names that run per table.
The Parquet file of a table that grows by day (``APPENDABLE``) whose changes start on a known day is
a new file that begins with the previous file's row groups of the days before, copied byte for
byte, and ends with the warehouse's rows from that day on, in day order
(``warehouse.parquet_append``); the manifest's ``parquet_appended`` says how many row groups each
such file kept. Where the generation this publish removes holds a file that begins with those row
groups (recorded in the previous manifest's ``parquet_prefix``), that file is moved into the new
generation and appended to in place instead, and only the new rows are written.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from warehouse.db import memory_limit

PUBLISHED_SCHEMAS = ("core", "marts", "meta")
DEFAULT_STORAGE_VERSION = "v1.2.0"
STORAGE_VERSION_ENV = "CAPSPREAD_STORAGE_VERSION"
SNAPSHOT = "capspread.duckdb"
# the snapshot the last publish replaced, kept to become the next snapshot (``_take_spare``)
SPARE = ".capspread.duckdb.spare"
PARQUET = "parquet"
GENERATIONS = ".parquet"
# Parquet writer settings. Measured on 11M-row tables (prices_daily, market_scoreboard): snappy costs
# ~40 % less CPU than zstd (default level) for files ~1.3-1.5x larger; zstd level 1 and lz4_raw fall
# in between, and larger row groups or a single thread only made the writes slower.
PARQUET_OPTIONS = "COMPRESSION snappy"
# the tables that grow with history (``APPENDABLE``) are written without bloom filters: those sit
# outside the row groups and would stop a nightly from appending to the file
# (``warehouse.parquet_append``). Little is lost: a row group of symbol-ordered rows (a backfill's)
# is skipped by its min/max statistics of the symbol already, and a row group of appended rows (in
# day order) holds every symbol, which no filter could skip
APPEND_OPTIONS = "WRITE_BLOOM_FILTER false"
# an append rewrites the small row groups earlier appends left at the file's end while they hold
# fewer rows than this together (DuckDB's row group size): see ``_small_tail``
MERGE_BELOW_ROWS = 122_880
# ``published/parquet`` layouts (``CAPSPREAD_PARQUET_LAYOUT``): ``table`` (default, contract §1) is
# one file per table; ``year`` splits the tables that grow with history by calendar year, so that a
# nightly run rewrites the current year's file instead of the whole history
PARQUET_LAYOUT_ENV = "CAPSPREAD_PARQUET_LAYOUT"
PARQUET_LAYOUTS = ("table", "year")
BY_YEAR = {"core.prices_daily": "trade_date", "marts.market_scoreboard": "as_of_date", "marts.index_weekly": "week_end"}
# the tables whose file a publish appends to (``_append_table``), by the date column their rows
# grow by: the three above, and the short interest (1.75M rows at 3,000 symbols x 25 years)
APPENDABLE = {**BY_YEAR, "core.short_interest": "settlement_date"}

_F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)  # Linux's fcntl command (1024 where Python lacks the name)
_FICLONE = 0x40049409  # ioctl(dst, FICLONE, src): share the blocks of src (Btrfs, XFS)

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


def resolve_parquet_layout(value: str | None = None) -> str:
    """The Parquet layout to write: the argument, else ``CAPSPREAD_PARQUET_LAYOUT``, else ``table``."""
    layout = (value or os.environ.get(PARQUET_LAYOUT_ENV) or "table").strip().lower()
    if layout not in PARQUET_LAYOUTS:
        raise PublishError(f"{PARQUET_LAYOUT_ENV}={layout!r} is not a Parquet layout; expected one of "
                           f"{', '.join(PARQUET_LAYOUTS)}")
    return layout


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


@dataclass(frozen=True)
class Delta:
    """The rows of one table that a run wrote, for an incremental publish.

    ``where`` is an SQL predicate over the warehouse table's columns selecting those rows (a
    subquery in it names tables as ``wh.<schema>.<table>``, the warehouse). With ``key`` (column
    names), the snapshot's rows whose key appears among the delta rows are deleted and the delta
    rows inserted: ``where`` must then select every warehouse row of each key it touches. Without
    ``key``, the snapshot's rows matching ``where`` (evaluated on the snapshot table) are deleted
    and the warehouse's rows matching it inserted.
    """

    where: str
    key: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.where, str) or not self.where.strip():
            raise PublishError("Delta.where must be a non-empty SQL predicate")
        if self.key is not None:
            key = (self.key,) if isinstance(self.key, str) else tuple(self.key)
            if not key or not all(isinstance(k, str) and k for k in key):
                raise PublishError(f"Delta.key must name at least one column, got {self.key!r}")
            object.__setattr__(self, "key", key)


UNCHANGED = "unchanged"


def publish(
    warehouse: Path,
    published: Path,
    *,
    run_id: str,
    as_of: date,
    storage_version: str | None = None,
    changes: Mapping[str, Delta | str] | None = None,
    base_run_id: str | None = None,
    parquet_layout: str | None = None,
) -> dict:
    """Write the snapshot and the Parquet files from the warehouse file; returns the manifest.

    Nothing under ``published/`` changes until everything is written; then the snapshot, the
    Parquet link and the manifest are switched in, in that order, with one rename each.

    ``changes`` (``"schema.table"`` → ``Delta`` or ``UNCHANGED``; tables not named are rewritten
    in full) asks for an incremental publish on top of the publish of ``base_run_id``: the run
    whose warehouse state the changes are relative to (the previous committed run, not whatever
    the manifest says). Without ``changes``, or when the published files are not that base, the
    publish is full.
    """
    if not _RUN_ID.match(run_id):
        raise PublishError(f"run id {run_id!r} cannot name a file (letters, digits, '.', '_', '-')")
    version = resolve_storage_version(storage_version)
    layout = resolve_parquet_layout(parquet_layout)
    if changes is not None:
        for name, change in changes.items():
            if not (isinstance(change, Delta) or change == UNCHANGED):
                raise PublishError(f"changes[{name!r}] must be a Delta or {UNCHANGED!r}, got {change!r}")
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
        previous = _read_manifest(published)
        try:
            # in memory: reads the warehouse, writes the new files; capped like the pipeline's own
            con = duckdb.connect(config={"memory_limit": memory_limit()})
            try:
                con.execute(f"ATTACH {_quote(str(warehouse))} AS wh (READ_ONLY)")
                tables, columns = _catalogue(con)
                if changes is None:
                    mode, reason = "full", "no changes given"
                else:
                    mode, reason = _incremental_base(published, previous, base_run_id, version, tables, changes)
                if mode == "incremental":
                    replay, spare_note = _take_spare(published, previous, tmp)
                    counts, reason = _update_snapshot(con, published / SNAPSHOT, tmp, tables, columns, changes,
                                                      replay)
                    if counts is not None and replay is None:
                        reason += f" ({spare_note})"
                    if counts is None:
                        mode = "full"
                if mode == "full":
                    counts = _write_snapshot(con, tmp, tables, columns, version)
                link_from = None
                if mode == "incremental":
                    link_from = _Previous(published / previous["parquet_generation"], previous.get("parquet_files", {}),
                                          previous["run_id"], previous.get("parquet_layout", "table"), changes,
                                          previous.get("parquet_prefix", {}))
                appended: dict[str, str] = {}
                prefix: dict[str, dict] = {}
                written_by = _write_parquet(con, gen_dir, tables, run_id, as_of, link_from, layout, appended, prefix)
            finally:
                con.close()
            snapshot_file = _file_identity(tmp)
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
            "mode": mode,
            "mode_reason": reason,
            "base_run_id": previous.get("run_id") if mode == "incremental" else None,
            "snapshot_file": snapshot_file,
            "parquet_files": written_by,
            "parquet_layout": layout,
            "parquet_appended": appended,
            "parquet_prefix": prefix,
        }
        spare_link = published / f".{SNAPSHOT}.{run_id}.spare.tmp"
        spare_link.unlink(missing_ok=True)
        (published / SPARE).unlink(missing_ok=True)
        if mode == "incremental" and (published / SNAPSHOT).is_file():
            # the snapshot about to be replaced stays as the spare, with what takes it to this one
            try:
                os.link(published / SNAPSHOT, spare_link)
            except OSError:  # no hard links here: the next publish copies the live file
                pass
            else:
                manifest["spare"] = {"run_id": previous.get("run_id"), "file": _file_identity(spare_link),
                                     "changes": _changes_json(changes)}
        # the switch: three renames in quick succession, the manifest last
        os.replace(tmp, published / SNAPSHOT)
        if spare_link.exists():
            os.replace(spare_link, published / SPARE)
        linked = os.readlink(published / PARQUET) if (published / PARQUET).is_symlink() else ""
        _swap_link(published, f"{GENERATIONS}/{generation}", run_id)
        mtmp = published / f".manifest.{run_id}.tmp"
        mtmp.write_text(json.dumps(manifest, indent=2) + "\n")
        _fsync(mtmp)
        os.replace(mtmp, published / "manifest.json")
        _fsync(published)
        _prune(published, keep={generation, Path(previous.get("parquet_generation") or "").name, Path(linked).name})
    return manifest


def _read_manifest(published: Path) -> dict:
    try:
        manifest = json.loads((published / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _file_identity(path: Path) -> dict:
    """What tells a file apart from its replacement: a rename keeps all three, a rewrite does not."""
    st = os.stat(path)
    return {"inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _incremental_base(published: Path, previous: dict, base_run_id: str | None, version: str,
                      tables: list[tuple], changes: Mapping[str, Delta | str]) -> tuple[str, str]:
    """("incremental", why) when the published files are the base the changes are relative to,
    else ("full", why not). The tables and columns are compared later, on the copy."""
    names = {f"{schema}.{table}" for schema, table, _ in tables}
    unknown = sorted(set(changes) - names)
    if unknown:
        return "full", f"changes name tables the warehouse does not have: {', '.join(unknown)}"
    if not base_run_id:
        return "full", "no base run given"
    if not previous:
        return "full", "no previous manifest"
    if previous.get("run_id") != base_run_id:
        return "full", f"the published snapshot is of run {previous.get('run_id')!r}, not the base {base_run_id!r}"
    if previous.get("storage_version") != version:
        return "full", f"storage version {previous.get('storage_version')!r} published, {version!r} asked"
    snapshot = published / SNAPSHOT
    if not snapshot.is_file():
        return "full", "no previous snapshot file"
    if not previous.get("snapshot_file") or _file_identity(snapshot) != previous["snapshot_file"]:
        return "full", "the snapshot file is not the one the manifest describes"
    generation = previous.get("parquet_generation")
    if not generation or not (published / generation).is_dir():
        return "full", "the previous Parquet generation is gone"
    return "incremental", f"on top of run {base_run_id}"


def _copy_file(src: Path, dst: Path) -> None:
    """A reflink where the file system has them (instant, shares blocks until written), else a copy."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def _changes_json(changes: Mapping[str, Delta | str]) -> dict:
    return {name: change if change == UNCHANGED else {"where": change.where, "key": list(change.key or []) or None}
            for name, change in sorted(changes.items())}


def _changes_from_json(data) -> dict[str, Delta | str] | None:
    try:
        return {name: change if change == UNCHANGED else Delta(change["where"], tuple(change["key"]) if change["key"] else None)
                for name, change in data.items()}
    except (AttributeError, KeyError, TypeError, PublishError):
        return None


def _take_spare(published: Path, previous: dict, tmp: Path) -> tuple[dict | None, str]:
    """Make the spare snapshot the new snapshot's starting point, when it can be: rename it to
    ``tmp`` and return the changes that bring it to the live snapshot (its successor), else None.

    The spare is the snapshot the previous publish replaced (``SPARE``). Starting from it instead
    of a copy of the live file saves copying the whole snapshot (1.5 GB at 25 years of 3,000
    symbols: seconds of disk writes) every night. It is written in place, so only when it has no
    other name (a hard link) and no process has it open: a DuckDB reader holds a shared lock on its
    file for as long as it has it open, and an exclusive lock is refused while it does (then the
    live file is copied, as before)."""
    record = previous.get("spare") if isinstance(previous.get("spare"), dict) else None
    spare = published / SPARE
    if record is None or not spare.is_file():
        return None, "no spare snapshot"
    replay = _changes_from_json(record.get("changes"))
    if replay is None or _file_identity(spare) != record.get("file"):
        return None, "the spare snapshot is not the one the manifest describes"
    if spare.stat().st_nlink != 1:  # a backup made with hard links, say: never written over
        return None, "the spare snapshot has another name (a hard link)"
    fd = os.open(spare, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None, "a reader has the spare snapshot open"
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        os.replace(spare, tmp)
        fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return replay, f"started from the spare snapshot of run {record.get('run_id')}"


def _update_snapshot(con, live: Path, tmp: Path, tables: list[tuple], columns: list[tuple],
                     changes: Mapping[str, Delta | str],
                     replay: Mapping[str, Delta | str] | None = None) -> tuple[dict[str, int] | None, str]:
    """Bring ``tmp`` to the warehouse's state and return (row counts, why), or (None, why not)
    when its tables or columns differ from the warehouse's (``tmp`` is then removed and the
    caller publishes in full). ``tmp`` is a copy of the live snapshot with ``changes`` applied;
    or, with ``replay``, it already holds the spare snapshot (``_take_spare``): first ``replay``
    is applied to it from the live snapshot, which makes it the live snapshot's equal, then
    ``changes`` from the warehouse. The live file is only read, and by DuckDB only read-only."""
    if replay is None:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        _copy_file(live, tmp)  # the live file is only read, never opened by DuckDB
    else:
        # the live snapshot plays the warehouse of the run that wrote it
        prev = duckdb.connect(config={"memory_limit": memory_limit()})
        try:
            prev.execute(f"ATTACH {_quote(str(live))} AS wh (READ_ONLY)")
            counts, why = _apply_changes(prev, tmp, *_catalogue(prev), replay)
        finally:
            prev.close()
        if counts is None:
            return None, f"the spare snapshot: {why}"
    counts, why = _apply_changes(con, tmp, tables, columns, changes)
    if counts is None:
        return None, why
    if replay is None:
        return counts, "changed rows applied to a copy of the previous snapshot"
    return counts, "changed rows applied to the spare snapshot, brought up to the previous one first"


def _apply_changes(con, tmp: Path, tables: list[tuple], columns: list[tuple],
                   changes: Mapping[str, Delta | str]) -> tuple[dict[str, int] | None, str]:
    """Apply ``changes`` from ``wh`` to the snapshot file ``tmp`` in one transaction."""
    con.execute(f"ATTACH {_quote(str(tmp))} AS snap")
    counts: dict[str, int] = {}
    differs = ""
    try:
        differs = _shape_differs(con)
        if differs:
            return None, differs
        con.execute("BEGIN TRANSACTION")
        try:
            for schema, table, comment in tables:
                name = f"{_ident(schema)}.{_ident(table)}"
                change = changes.get(f"{schema}.{table}")
                if isinstance(change, Delta):
                    where = f"({change.where})"
                    if change.key:
                        keys = ", ".join(_ident(k) for k in change.key)
                        match = " AND ".join(f"_t.{_ident(k)} IS NOT DISTINCT FROM _d.{_ident(k)}" for k in change.key)
                        ranges = _key_ranges(con, f"wh.{name}", where, change.key)
                        con.execute(f"DELETE FROM snap.{name} AS _t USING (SELECT DISTINCT {keys} FROM wh.{name} "
                                    f"WHERE {where}) AS _d WHERE {match}{ranges}")
                    else:
                        con.execute(f"DELETE FROM snap.{name} WHERE {where}")
                    con.execute(f"INSERT INTO snap.{name} SELECT * FROM wh.{name} WHERE {where}")
                elif change != UNCHANGED:
                    con.execute(f"DROP TABLE snap.{name}")
                    con.execute(f"CREATE TABLE snap.{name} AS SELECT * FROM wh.{name}")
                counts[f"{schema}.{table}"] = con.execute(f"SELECT count(*) FROM snap.{name}").fetchone()[0]
            _sync_comments(con, tables, columns)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.execute("DETACH snap")  # checkpoints: the file is complete and has no WAL beside it
        if differs:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
    _fsync(tmp)
    return counts, ""


def _key_ranges(con, source: str, where: str, key: tuple[str, ...]) -> str:
    """`` AND _t.<k> BETWEEN <lo> AND <hi>`` for each key column without NULLs among the rows of
    ``source`` that ``where`` selects: narrows a delete of those keys to the row groups whose
    statistics overlap them, not all of history. The bounds are SQL literals of the column's own
    type (no value goes through Python)."""
    spans = con.execute("SELECT " + ", ".join(
        f"min({_ident(k)})::VARCHAR, max({_ident(k)})::VARCHAR, count(*) FILTER ({_ident(k)} IS NULL), "
        f"typeof(min({_ident(k)}))" for k in key) + f" FROM {source} WHERE {where}").fetchone()
    ranges = ""
    for i, k in enumerate(key):
        lo, hi, nulls, kind = spans[4 * i:4 * i + 4]
        if lo is not None and not nulls:
            ranges += f" AND _t.{_ident(k)} BETWEEN CAST({_quote(lo)} AS {kind}) AND CAST({_quote(hi)} AS {kind})"
    return ranges


def _shape_differs(con) -> str:
    """'' when the attached snapshot ``snap`` has exactly the warehouse's published tables and
    columns (names, order, types); else what differs."""
    schemas = ", ".join(_quote(s) for s in PUBLISHED_SCHEMAS)
    shape = {}
    for db in ("wh", "snap"):
        shape[db] = set(con.execute(
            "SELECT schema_name, table_name, column_index, column_name, data_type FROM duckdb_columns() "
            f"WHERE database_name = {_quote(db)} AND schema_name IN ({schemas})").fetchall())
    if shape["wh"] == shape["snap"]:
        return ""
    tables = {db: {(r[0], r[1]) for r in rows} for db, rows in shape.items()}
    if tables["wh"] != tables["snap"]:
        added = sorted(f"{s}.{t}" for s, t in tables["wh"] - tables["snap"])
        gone = sorted(f"{s}.{t}" for s, t in tables["snap"] - tables["wh"])
        return "tables differ from the snapshot's: " + "; ".join(
            part for part in (f"new {', '.join(added)}" if added else "", f"gone {', '.join(gone)}" if gone else "")
            if part)
    changed = sorted({f"{r[0]}.{r[1]}" for r in shape["wh"] ^ shape["snap"]})
    return f"columns differ from the snapshot's in {', '.join(changed)}"


def _sync_comments(con, tables: list[tuple], columns: list[tuple]) -> None:
    """Make the snapshot's table and column comments the warehouse's (set, changed or removed)."""
    schemas = ", ".join(_quote(s) for s in PUBLISHED_SCHEMAS)
    have_tables = {(s, t): c for s, t, c in con.execute(
        "SELECT schema_name, table_name, comment FROM duckdb_tables() "
        f"WHERE database_name = 'snap' AND schema_name IN ({schemas})").fetchall()}
    for schema, table, comment in tables:
        if (have_tables.get((schema, table)) or None) != (comment or None):
            con.execute(f"COMMENT ON TABLE snap.{_ident(schema)}.{_ident(table)} IS {_quote(comment or None)}")
    have_columns = {(s, t, c): m for s, t, c, m in con.execute(
        "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
        f"WHERE database_name = 'snap' AND schema_name IN ({schemas}) AND comment IS NOT NULL").fetchall()}
    want = {(s, t, c): m for s, t, c, m in columns}
    for key in sorted(set(have_columns) | set(want)):
        if have_columns.get(key) != want.get(key):
            schema, table, column = key
            con.execute(f"COMMENT ON COLUMN snap.{_ident(schema)}.{_ident(table)}.{_ident(column)} "
                        f"IS {_quote(want.get(key))}")


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


@dataclass(frozen=True)
class _Previous:
    """The previous publish an incremental one links unchanged Parquet files from."""

    generation: Path
    writers: dict
    run_id: str
    layout: str
    changes: Mapping[str, Delta | str]
    prefix: Mapping[str, dict]  # the previous manifest's ``parquet_prefix``

    def unchanged(self, name: str) -> bool:
        return self.changes.get(name) == UNCHANGED


def _kv(run_id: str, as_of: date, name: str, comment: str | None) -> str:
    return (
        f"capspread_run_id: {_quote(run_id)}, capspread_as_of_date: {_quote(as_of.isoformat())}, "
        f"capspread_table: {_quote(name)}, capspread_comment: {_quote(comment or '')}"
    )


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        _fsync(target)


def _write_parquet(con, gen_dir: Path, tables: list[tuple], run_id: str, as_of: date,
                   link_from: _Previous | None = None, layout: str = "table",
                   appended: dict[str, str] | None = None, prefix: dict[str, dict] | None = None) -> dict[str, str]:
    """The Parquet files of ``tables`` in ``gen_dir``; returns which run wrote each file. With
    ``link_from``, an unchanged table's file is a hard link to the previous generation's (a copy
    where linking fails) and keeps its metadata, and an ``APPENDABLE`` table whose changes start on a
    known day keeps the previous file's row groups before that day and appends the rest
    (``_append_table``; ``appended`` says how many row groups each such file kept, ``prefix`` which
    generation's file it shares them with). Under the
    ``year`` layout the ``BY_YEAR`` tables are written as ``<table>/year=<Y>/`` folders
    (``_write_years``)."""
    written_by: dict[str, str] = {}
    appended = {} if appended is None else appended
    prefix = {} if prefix is None else prefix
    for schema, table, comment in tables:
        name = f"{schema}.{table}"
        if layout == "year" and name in BY_YEAR:
            previous = link_from if link_from is not None and link_from.layout == "year" else None
            written_by.update(_write_years(con, gen_dir, schema, table, comment, run_id, as_of, previous))
            continue
        target = gen_dir / schema / f"{table}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        if link_from is not None and link_from.unchanged(name):
            source = link_from.generation / schema / f"{table}.parquet"
            if source.is_file():
                _link(source, target)
                written_by[name] = link_from.writers.get(name, link_from.run_id)
                continue
        written_by[name] = run_id
        if name in APPENDABLE and link_from is not None and not (link_from.layout == "year" and name in BY_YEAR):
            kept = _append_table(con, target, link_from, schema, table, comment, run_id, as_of, prefix)
            if kept == UNCHANGED:  # the changes select no rows, here or in the previous file
                written_by[name] = link_from.writers.get(name, link_from.run_id)
            if kept:
                appended[name] = kept
                continue
        options = f"{PARQUET_OPTIONS}, {APPEND_OPTIONS}" if name in APPENDABLE else PARQUET_OPTIONS
        con.execute(
            f"COPY wh.{_ident(schema)}.{_ident(table)} TO {_quote(str(target))} "
            f"(FORMAT parquet, {options}, KV_METADATA {{{_kv(run_id, as_of, name, comment)}}})"
        )
        _fsync(target)
    for d in sorted({p for p in gen_dir.rglob("*") if p.is_dir()} | {gen_dir}):
        _fsync(d)
    return written_by


def _changed_from(con, source: str, column: str, change, old_files: str | None) -> tuple[bool, date | None]:
    """Whether the rows ``change`` replaces in a table can be bounded by its date ``column``, and
    if so the first day among them (None: no rows): the day of its rows in the warehouse and,
    for a change without a key, of the rows the previous files (``old_files``, a path or glob)
    hold that match the same predicate."""
    if not isinstance(change, Delta) or (change.key is not None and column not in change.key):
        return False, None
    firsts = [con.execute(f"SELECT min({_ident(column)}) FROM {source} WHERE ({change.where})").fetchall()[0][0]]
    if change.key is None and old_files is not None:
        firsts.append(con.execute(
            f"SELECT min({_ident(column)}) FROM read_parquet({_quote(old_files)}, hive_partitioning = false) "
            f"WHERE ({change.where})").fetchall()[0][0])
    found = [f for f in firsts if f is not None]
    return True, min(found) if found else None


def _keep_prefix(bounds: list[tuple[date, date]], first: date, limit: int | None = None) -> tuple[int, date]:
    """How many leading row groups (``bounds``: their (min, max) day; at most ``limit``) a file can
    keep when every row from day ``first`` on may have changed, and the day from which the rest is
    rewritten: the kept groups must hold exactly the file's rows before that day, and that day is
    at most ``first``."""
    stop = len(bounds) if limit is None else min(len(bounds), limit)
    keep = 0
    while keep < stop and bounds[keep][1] < first:
        keep += 1
    while keep:
        cut = min([first, *(lo for lo, _ in bounds[keep:])])
        if max(hi for _, hi in bounds[:keep]) < cut:
            return keep, cut
        keep -= 1
    return 0, first


def _append_table(con, target: Path, previous: _Previous, schema: str, table: str, comment: str | None,
                  run_id: str, as_of: date, prefix: dict[str, dict]) -> str:
    """Write ``target`` as the previous generation's file of the table with its row groups before
    the first changed day kept byte for byte, and the warehouse's rows from that day on appended
    as new row groups. Returns what was kept ('' when appending is not possible or would keep
    nothing; the caller then writes the file in full), or ``UNCHANGED`` when the changes select no
    rows (``target`` is then a link to the previous file); ``prefix[name]`` then says which
    generation's file the kept row groups come from (set only when rows were appended).

    The kept bytes are not copied when the generation before the previous one (removed by this
    publish) holds a file that begins with the same row groups (``_recyclable``) and no process
    has it open: that file is moved into the new generation and cut and appended to in place, so
    only the new rows are written. Should this publish fail, that older generation has lost the
    file; it is not the live one, and the next publish removes it."""
    import pyarrow.parquet as pq

    from warehouse.parquet_append import CannotAppend, append_row_groups

    name, column = f"{schema}.{table}", APPENDABLE[f"{schema}.{table}"]
    old = previous.generation / schema / f"{table}.parquet"
    if not old.is_file():
        return ""
    source = f"wh.{_ident(schema)}.{_ident(table)}"
    if con.execute(f"SELECT count(*) FROM {source} WHERE {_ident(column)} IS NULL").fetchall()[0][0]:
        return ""
    bounded, first = _changed_from(con, source, column, previous.changes.get(name), str(old))
    if not bounded:
        return ""
    if first is None:
        _link(old, target)
        return UNCHANGED
    meta = pq.ParquetFile(old).metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if column not in names:
        return ""
    at = names.index(column)
    bounds = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(at).statistics
        if stats is None or not stats.has_min_max or stats.null_count:
            return ""
        bounds.append((stats.min, stats.max))
    rows_of = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    keep, cut = _keep_prefix(bounds, first)
    merged = _small_tail(bounds, rows_of, keep)
    if merged < keep:  # earlier appends' small groups are rewritten with the changed rows
        first = min(first, bounds[merged][0])
        keep, cut = _keep_prefix(bounds, first, merged)
    if not keep:
        return ""
    base, how = old, ""
    recyclable = _recyclable(previous, name, old, keep)
    if recyclable is not None:
        again, again_cut = _keep_prefix(bounds, first, recyclable[1])
        # worth it unless it re-encodes more than a tenth as many rows as it keeps
        if again and sum(rows_of[again:keep]) * 10 <= sum(rows_of[:again]):
            # moved out of sight first (no reader can open it by a name it knows), then written
            # only if no process has it open or mapped; else put back and the kept bytes copied
            os.replace(recyclable[0], target)
            if _nobody_has_open(target):
                base, keep, cut = target, again, again_cut
                how = f", in place: the file of {GENERATIONS}/{recyclable[0].parents[1].name}"
            else:
                os.replace(target, recyclable[0])
    tail = target.with_name(f".{table}.tail.parquet")
    try:
        con.execute(
            f"COPY (SELECT * FROM {source} WHERE {_ident(column)} >= DATE '{cut.isoformat()}' "
            f"ORDER BY {_ident(column)}) TO {_quote(str(tail))} "
            f"(FORMAT parquet, {PARQUET_OPTIONS}, {APPEND_OPTIONS}, KV_METADATA {{{_kv(run_id, as_of, name, comment)}}})"
        )
        rows = append_row_groups(base, keep, tail, None if base == target else target)
    except CannotAppend:
        target.unlink(missing_ok=True)
        return ""
    finally:
        tail.unlink(missing_ok=True)
    held = con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    if rows != held:
        # the changes did not describe every row that differs from the previous publish
        raise PublishError(f"appending to {name}.parquet gave {rows} rows, the warehouse holds {held}: "
                           f"the run's changes miss rows")
    _fsync(target)
    prefix[name] = {"generation": f"{GENERATIONS}/{previous.generation.name}", "row_groups": keep}
    return f"kept {keep} of {len(bounds)} row groups (rows before {cut.isoformat()}){how}"


def _small_tail(bounds: list[tuple[date, date]], rows: list[int], keep: int) -> int:
    """Where the small row groups that end the kept ones begin (``keep`` when there are none).

    Every append adds row groups of its own days, a few thousand rows a night, so a file appended
    to nightly would end in ever more small groups: a footer that grows without bound and row
    groups too small to read well. The groups counted here are the trailing kept ones in day order
    (each starts after the day the one before it ends: appended groups, not a backfill's, which
    span every day) that together hold fewer than ``MERGE_BELOW_ROWS`` rows; the caller rewrites
    them with the new rows, so at most that many rows more are re-encoded and the file keeps
    about one small group at its end."""
    start, held = keep, 0
    while start > 1 and bounds[start - 1][0] > bounds[start - 2][1] and held + rows[start - 1] < MERGE_BELOW_ROWS:
        start -= 1
        held += rows[start]
    return start


def _nobody_has_open(path: Path) -> bool:
    """Whether no descriptor or memory map of any process (this one included) has ``path`` open:
    Linux grants a write lease only then (``F_SETLEASE``; taken and released at once). False where
    leases are not available (another system, a network file system, leases disabled)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_WRLCK)
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _recyclable(previous: _Previous, name: str, old: Path, keep: int) -> tuple[Path, int] | None:
    """The file of table ``name`` in the generation the previous file's kept row groups were
    copied from, and how many of the ``keep`` leading row groups of the previous file (``old``) it
    shares: when that generation is not the previous one (this publish removes it), the file has
    no other name (a hard link), and its footer describes those row groups exactly as ``old``'s
    does. The caller still leaves it alone when a process has it open (``_nobody_has_open``)."""
    from warehouse.parquet_append import CannotAppend, shared_row_groups

    record = previous.prefix.get(name)
    if not isinstance(record, dict) or not isinstance(record.get("row_groups"), int):
        return None
    generation = Path(str(record.get("generation", ""))).name
    if not generation or generation == previous.generation.name:
        return None
    candidate = previous.generation.parent / generation / old.relative_to(previous.generation)
    try:
        if candidate.is_symlink() or candidate.stat().st_nlink != 1:
            return None
        limit = min(keep, record["row_groups"], shared_row_groups(candidate, old))
    except (OSError, CannotAppend):
        return None
    return (candidate, limit) if limit > 0 else None


def _write_years(con, gen_dir: Path, schema: str, table: str, comment: str | None, run_id: str, as_of: date,
                 previous: _Previous | None) -> dict[str, str]:
    """``<schema>/<table>/year=<Y>/data_0.parquet`` (Hive style: readers get ``year`` from the
    folder) for every calendar year of the table's ``BY_YEAR`` date column. With ``previous`` (a
    generation in the same layout) the years before the first year the run's changes touch are
    hard links to its files; those from that year on are written. Returns the writer per
    ``<schema>.<table>/year=<Y>``."""
    name, column = f"{schema}.{table}", BY_YEAR[f"{schema}.{table}"]
    source = f"wh.{_ident(schema)}.{_ident(table)}"
    root = gen_dir / schema / table
    root.mkdir(parents=True, exist_ok=True)
    undated = con.execute(f"SELECT count(*) FROM {source} WHERE {_ident(column)} IS NULL").fetchall()[0][0]
    if undated:
        raise PublishError(f"{name} has {undated} rows without {column}: the year layout cannot place them")
    years = [r[0] for r in con.execute(f"SELECT DISTINCT year({_ident(column)}) FROM {source} ORDER BY 1").fetchall()]
    keep_below = None  # years before this one are linked from ``previous``
    if previous is not None:
        change = previous.changes.get(name)
        if change == UNCHANGED:
            keep_below = float("inf")
        else:
            old_files = previous.generation / schema / table
            bounded, first = _changed_from(con, source, column, change,
                                           str(old_files / "*" / "*.parquet") if old_files.is_dir() else None)
            keep_below = first.year if bounded and first is not None else None
    written: dict[str, str] = {}
    kept = set()
    for year in years:
        old = previous.generation / schema / table / f"year={year}" if previous is not None else None
        if keep_below is not None and year < keep_below and old is not None and old.is_dir():
            (root / f"year={year}").mkdir()
            for f in sorted(old.glob("*.parquet")):
                _link(f, root / f"year={year}" / f.name)
            written[f"{name}/year={year}"] = previous.writers.get(f"{name}/year={year}", previous.run_id)
            kept.add(year)
    rest = [y for y in years if y not in kept]
    if rest:
        chosen = ", ".join(str(y) for y in rest)
        fresh = root.parent / f".{table}.years"  # a partitioned COPY wants an empty folder
        con.execute(
            f"COPY (SELECT *, year({_ident(column)}) AS year FROM {source} "
            f"WHERE {_ident(column)} >= DATE '{min(rest):04d}-01-01' AND year({_ident(column)}) IN ({chosen})) "
            f"TO {_quote(str(fresh))} (FORMAT parquet, PARTITION_BY (year), {PARQUET_OPTIONS}, "
            f"FILENAME_PATTERN 'data_{{i}}', KV_METADATA {{{_kv(run_id, as_of, name, comment)}}})"
        )
        for year in rest:
            for f in (fresh / f"year={year}").glob("*.parquet"):
                _fsync(f)
            os.replace(fresh / f"year={year}", root / f"year={year}")
            written[f"{name}/year={year}"] = run_id
        fresh.rmdir()
    return dict(sorted(written.items()))


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


def _prune(published: Path, keep: set[str]) -> None:
    """Remove every Parquet generation but ``keep``: the new one, the previous manifest's and the
    one the link pointed to until now (the same, unless a publish crashed between the two)."""
    root = published / GENERATIONS
    for p in root.iterdir():
        if p.is_dir() and p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
