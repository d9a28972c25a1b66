"""The warehouse: connect, create the schemas from the SQL files, load batches and marts.

All SQL lives in ``warehouse/sql``; this module runs files by name and moves data as Arrow
(never row by row). Nothing here builds SQL from user input.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from transforms.pit import available_on

SQL = Path(__file__).resolve().parent / "sql"

CORE_TABLE = {
    "prices": "prices_daily",
    "short_interest": "short_interest",
    "cpi": "cpi_observations",
    "estimates": "index_estimates",
    "holdings": "holdings",
    "factors": "factors",
    "company_estimates": "company_estimates",
    "rates": "rates_daily",
}

MARTS = (
    "market_scoreboard",
    "index_weekly",
    "size_spread_daily",
    "size_spread_monthly",
    "short_interest_by_bucket",
    "etf_short_interest",
    "inflation_monthly",
    "earnings_outlook",
    "consensus_outlook",
    "factor_monthly",
    "rate_backdrop",
)


def sql_file(relative: str) -> str:
    return (SQL / relative).read_text()


DEFAULT_MEMORY_LIMIT = "1536MB"  # leaves room for the Polars frames of a mart part in a 4 GiB budget


def memory_limit() -> str:
    """DuckDB's memory cap for the pipeline's connections (``CAPSPREAD_DUCKDB_MEMORY_LIMIT``)."""
    return os.environ.get("CAPSPREAD_DUCKDB_MEMORY_LIMIT", "").strip() or DEFAULT_MEMORY_LIMIT


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse file. DuckDB's memory is capped (``CAPSPREAD_DUCKDB_MEMORY_LIMIT``,
    default 1536MB; DuckDB's own default is 80 % of the machine) and large joins, sorts and merges
    spill to ``<warehouse>.tmp/`` beside the file instead of growing the process."""
    limit = memory_limit()
    config = {"memory_limit": limit}
    if not read_only:
        config["temp_directory"] = str(Path(path)) + ".tmp"
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.Error as exc:
        if "memory" in str(exc).lower() and "CAPSPREAD_DUCKDB_MEMORY_LIMIT" in os.environ:
            raise ValueError(f"CAPSPREAD_DUCKDB_MEMORY_LIMIT={limit!r} is not a DuckDB memory size like 2GB") from exc
        raise


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every schema and table (idempotent) from ``sql/ddl/*.sql`` in name order. The files'
    digest is kept in ``internal.ddl_applied`` (not published), so a warehouse whose DDL is current
    skips the few hundred statements (a third of a second a run)."""
    ddl = [f.read_text() for f in sorted((SQL / "ddl").glob("*.sql"))]
    digest = hashlib.sha256("\0".join(ddl).encode()).hexdigest()
    wanted = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)", "\n".join(ddl)))
    present = set(con.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                              "WHERE database_name = current_database()").fetchall())
    if wanted <= present and ("internal", "ddl_applied") in present and con.execute(
            "SELECT count(*) FROM internal.ddl_applied WHERE sha256 = ?", [digest]).fetchall()[0][0]:
        return
    for text in ddl:
        con.execute(text)
    con.execute("DELETE FROM internal.ddl_applied")  # created by 90_internal.sql
    con.execute("INSERT INTO internal.ddl_applied VALUES (?, now())", [digest])


def _staged(con: duckdb.DuckDBPyConnection, sql: str, params=None, *, frame=None, keys=None,
            ranks=None) -> list[tuple]:
    """Run ``sql`` (fully consumed) with ``frame`` readable as ``stage`` (``keys`` as ``stage_keys``,
    ``ranks`` as ``source_rank``; Polars frames or Arrow tables). DuckDB finds them by name among
    this function's locals (its replacement scan) for the one statement. Not ``con.register``: a
    registered view's data stays referenced by the open transaction until it commits, even once
    unregistered, so a run's one load transaction held every batch and mart frame it had staged
    (about 130 bytes a price row)."""
    stage, stage_keys, source_rank = (  # noqa: F841 (read by name in ``sql``)
        f.to_arrow() if isinstance(f, pl.DataFrame) else f for f in (frame, keys, ranks))
    return con.execute(sql, params).fetchall()


def _append(con: duckdb.DuckDBPyConnection, table: str, frame, constants: Mapping[str, object] | None = None) -> None:
    """Append ``frame`` to ``table`` in full row groups. With the order of the rows kept (DuckDB's
    default), an insert of a batch that arrives in chunks (as read from Parquet) can spread it
    evenly over under-filled row groups (six of about 116,000 rows for a 700,000-row batch instead
    of five full ones and a rest); later checkpoints then merge those row groups, a few at a time,
    whatever their run changed: measured on a 25-year SYNTHETIC backfill, 4.5 s of the first
    nightly's commit, and 1.7 s and 0.5 s in the next two checkpoints. The order of rows inside one appended batch means nothing here (every reader
    orders; the vintage tables order by ``rowid`` only across batches, and a batch holds one row a
    key), so it is not kept. ``constants`` (column → value) fill columns that hold one value for the
    whole batch as SQL parameters: DuckDB then stores a constant, where the same value as a column
    of the frame is copied and compressed row by row (a raw batch's landing file and run id:
    a quarter of the raw insert, measured on a SYNTHETIC year of 2.9M price rows)."""
    constants = dict(constants or {})
    extra = "".join(f', ${i + 1} AS "{name}"' for i, name in enumerate(constants))
    con.execute("SET preserve_insertion_order = false")
    _staged(con, f"INSERT INTO {table} BY NAME SELECT *{extra} FROM stage", list(constants.values()) or None,
            frame=frame)
    # not reached when the insert failed: the caller rolls back and closes this connection
    con.execute("RESET preserve_insertion_order")


def insert_raw(
    con: duckdb.DuckDBPyConnection, dataset: str, frame: pl.DataFrame, landing_file: str, run_id: str, loaded_at: datetime
) -> int:
    """Append a parsed batch to ``raw.<dataset>`` with its lineage columns (``loaded_at`` without a
    time zone is UTC)."""
    if loaded_at.tzinfo is None:
        loaded_at = loaded_at.replace(tzinfo=timezone.utc)
    _append(con, f"raw.{dataset}", frame,
            {"_landing_file": landing_file, "_loaded_at": loaded_at, "_run_id": run_id})
    return frame.height


def conform_core(
    dataset: str, frame: pl.DataFrame, source: str, known_at: datetime, lags: Mapping[str, int] | None = None
) -> pl.DataFrame:
    """The core shape of a batch: source schema + available_on, source, known_at (one row per key)."""
    out = frame.with_columns(
        available_on=available_on(dataset, lags),
        source=pl.lit(source),
        known_at=pl.lit(known_at).cast(pl.Datetime("us", "UTC")),
    )
    if dataset == "cpi":
        out = out.rename({"realtime_start": "vintage"}).sort("series_id", "ref_month", "available_on")
    if dataset == "rates":
        out = out.rename({"realtime_start": "vintage"}).sort("series_id", "date", "available_on")
    if dataset == "holdings":
        # a fund can list one ticker on several lines (cash in several currencies, share classes)
        out = out.filter(pl.col("symbol").is_not_null()).group_by("fund", "as_of_date", "symbol", maintain_order=True).agg(
            pl.col("name", "sector", "asset_class", "available_on", "source", "known_at").first(),
            pl.col("market_value", "weight", "shares").sum(),
        )
    return out


def prefer_sources(
    con: duckdb.DuckDBPyConnection, dataset: str, core_frame: pl.DataFrame, priority: tuple[str, ...]
) -> pl.DataFrame:
    """Drop the rows of a batch whose key core already holds from a source listed earlier in
    ``priority`` (the preferred source wins; others only fill gaps). CPI and rates are exempt: their
    vintages append."""
    if not priority or dataset in ("cpi", "rates") or core_frame.is_empty():
        return core_frame
    from sources.schemas import KEYS

    keys = KEYS[dataset]
    ranks = pl.DataFrame({"source": list(priority), "rank": list(range(len(priority)))})
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    # NOT EXISTS, not a join: a key may hold several vintages (core.short_interest); the rows kept
    # are picked from the batch by position, in its order
    kept = _staged(
        con,
        "SELECT s._row FROM stage AS s "
        "LEFT JOIN source_rank AS rs ON rs.source = s.source "
        f"WHERE NOT EXISTS (SELECT 1 FROM core.{CORE_TABLE[dataset]} AS t "
        "LEFT JOIN source_rank AS rt ON rt.source = t.source "
        f"WHERE {on} AND coalesce(rt.rank, 1000) < coalesce(rs.rank, 1000)) ORDER BY s._row",
        frame=core_frame.with_row_index("_row"), ranks=ranks,
    )
    return core_frame.select(pl.all().gather([r[0] for r in kept]))


# datasets whose core SQL, for a batch none of whose keys core holds yet, inserts every row as it
# comes (MERGE ... WHEN NOT MATCHED THEN INSERT, or a first vintage); CPI and rates deduplicate
# vintages inside the batch and always take their SQL
APPEND_WHEN_NEW = ("prices", "short_interest", "estimates", "holdings", "factors", "company_estimates")


def holds_any_key(con: duckdb.DuckDBPyConnection, dataset: str, frame: pl.DataFrame) -> bool:
    """Whether core already holds any key of ``frame`` (``sources.schemas.KEYS``). The core scan is
    limited to the batch's date range, which DuckDB answers from its row-group statistics, so a
    batch of new dates (a backfill year, a nightly session) costs next to nothing to check."""
    from sources.schemas import KEYS

    keys = KEYS[dataset]
    dated = [k for k in keys if frame.schema.get(k) == pl.Date]
    where, params = "", []
    if dated:
        lo, hi = frame[dated[0]].min(), frame[dated[0]].max()
        if lo is None:
            return False
        where, params = f"WHERE t.{dated[0]} BETWEEN ? AND ?", [lo, hi]
        # no core row in the batch's date range (a backfill year, a nightly session): no key to
        # look for, and no hash table of the batch's keys to build (this check took 2.3-4.8 s of
        # a 25-year SYNTHETIC backfill with the join every time, 0.13 s with this early exit)
        if not con.execute(f"SELECT 1 FROM core.{CORE_TABLE[dataset]} AS t {where} LIMIT 1", params).fetchall():
            return False
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    sql = f"SELECT 1 FROM core.{CORE_TABLE[dataset]} AS t JOIN stage_keys AS s ON {on} {where} LIMIT 1"
    return bool(_staged(con, sql, params, keys=frame.select(keys)))


def load_core(
    con: duckdb.DuckDBPyConnection, dataset: str, core_frame: pl.DataFrame, priority: tuple[str, ...]
) -> int:
    """Bring a conformed batch into core: ``prefer_sources`` then ``merge_core``; when core holds
    none of the batch's keys (``holds_any_key``) and the dataset is in ``APPEND_WHEN_NEW``, both
    reduce to appending the batch, which is what is done. Returns rows changed."""
    if core_frame.is_empty():
        return 0
    if dataset in APPEND_WHEN_NEW and not holds_any_key(con, dataset, core_frame):
        _append(con, f"core.{CORE_TABLE[dataset]}", core_frame)
        return core_frame.height
    return merge_core(con, dataset, prefer_sources(con, dataset, core_frame, priority))


def merge_core(con: duckdb.DuckDBPyConnection, dataset: str, core_frame: pl.DataFrame) -> int:
    """Merge a conformed batch into its core table with ``sql/core/<table>.sql``; returns rows changed."""
    if core_frame.is_empty():
        return 0
    changed = _staged(con, sql_file(f"core/{CORE_TABLE[dataset]}.sql"), frame=core_frame)
    changed = changed[0] if changed else None
    return int(changed[0]) if changed and changed[0] is not None else 0


# core tables that keep every vintage of a key: (key columns, newest-first order of the vintages)
VINTAGED = {
    "short_interest": (("symbol", "settlement_date"), "available_on DESC, known_at DESC, rowid DESC"),
    "rates": (("series_id", "date"), "available_on DESC, vintage DESC NULLS LAST, known_at DESC, rowid DESC"),
}

# datasets whose core SQL only ever inserts rows, each stamped with the run's known_at (a revision
# is a new vintage, an unchanged re-delivery adds nothing): what a run changed in their tables is
# exactly the rows carrying its known_at (``flows.nightly.publish_changes``)
INSERT_ONLY = ("short_interest", "cpi", "rates")


def core_as_of_sql(dataset: str, where: str | None = None) -> str:
    """SQL (parameter ``$as_of``) for a core table as seen on the evening of ``as_of``: rows with
    ``available_on <= as_of`` and, where the table keeps vintages (``VINTAGED``), only the latest
    such vintage of each key, so a revision learned after ``as_of`` stays invisible. ``where``
    narrows the keys read (it must name key columns only, so that it keeps or drops whole keys)."""
    table = CORE_TABLE[dataset]
    # CPI is append-only: rowid orders the vintages the pipeline learned at the same moment
    seq = ", rowid AS _seq" if dataset == "cpi" else ""
    sql = f"SELECT *{seq} FROM core.{table} WHERE available_on <= $as_of"
    if where:
        sql += f" AND ({where})"
    if dataset in VINTAGED:
        keys, order = VINTAGED[dataset]
        sql += f" QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY {order}) = 1"
    return sql


def read_core(con: duckdb.DuckDBPyConnection, dataset: str, as_of: date, where: str | None = None,
              params: Mapping | None = None) -> pl.LazyFrame:
    """A core table as seen on the evening of ``as_of`` (see ``core_as_of_sql``), with ``where``
    (named ``params``) narrowing the keys read."""
    rel = con.sql(core_as_of_sql(dataset, where), params={**(params or {}), "as_of": as_of})
    return pl.from_arrow(rel.to_arrow_table()).lazy()


def replace_mart(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, where: str | None = None) -> int:
    """Replace the rows of ``marts.<table>`` (its DDL and comments stay); with ``where``, only the
    rows it selects (``frame`` holds their replacement)."""
    con.execute(f"DELETE FROM marts.{table}" + (f" WHERE {where}" if where else "")).fetchall()
    return insert_mart(con, table, frame)


def insert_mart(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Append ``frame`` to ``marts.<table>`` in the frame's order. Not ``_append``, which is a
    third faster (two 500-symbol parts of a 25-year SYNTHETIC scoreboard: 4.0 → 2.8 s): a
    published file's row groups follow the table's order, and a publish after a revision keeps
    those before the revised day only while they are in day order (``_keep_prefix``). Without the
    order kept, which slice of a frame comes first depends on the insert's threads, and so did
    what a publish could keep."""
    if frame.height:
        _staged(con, f"INSERT INTO marts.{table} BY NAME SELECT * FROM stage", frame=frame)
    return frame.height


def append_meta(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if frame.height:
        _staged(con, f"INSERT INTO meta.{table} BY NAME SELECT * FROM stage", frame=frame)


def upsert_load_state(con: duckdb.DuckDBPyConnection, source: str, dataset: str, cursor: date, run_id: str) -> None:
    con.execute("DELETE FROM meta.load_state WHERE source = ? AND dataset = ?", [source, dataset])
    con.execute(
        "INSERT INTO meta.load_state VALUES (?, ?, ?, ?, now())", [source, dataset, cursor, run_id]
    )


def cursors(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], date]:
    return {(s, d): c for s, d, c in con.execute("SELECT source, dataset, cursor_date FROM meta.load_state").fetchall()}


def seen_hashes(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT sha256 FROM meta.landing_files WHERE status = 'loaded'").fetchall()}
