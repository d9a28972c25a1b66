"""Read-only access to the published snapshot for ``capspread sql``, ``tables`` and ``describe``.

Two locks keep ``capspread sql`` read-only:

1. every statement is classified by DuckDB's own parser before anything runs: one statement per
   call, and only queries (``SELECT``, ``FROM …``, ``WITH … SELECT``, ``VALUES``, ``TABLE``,
   ``SHOW``, ``DESCRIBE``, ``SUMMARIZE``, ``PIVOT``), ``EXPLAIN`` of a query and the catalogue
   ``PRAGMA``s run; anything else (``CREATE``, ``INSERT``, ``COPY``, ``ATTACH``, ``INSTALL``,
   ``LOAD``, ``SET``, ``EXPORT``, ``PRAGMA x = …``, ``CALL``, …) is refused with a clear message;
2. the connection opens the snapshot read-only, with file-system and network access switched off
   (no file is read or written beside the snapshot, no extension is installed or loaded) and the
   configuration locked, so a statement that slipped past the parser still cannot write.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb


class QueryRefused(Exception):
    """The statement would write, or reach files or the network."""


#: query-shaped statements (PIVOT is planned as several statements: MULTI)
_QUERY_TYPES = {"SELECT", "RELATION", "MULTI"}
#: PRAGMAs that only read the catalogue or the engine's own state
_READ_PRAGMAS = {
    "table_info", "show", "show_tables", "show_tables_expanded", "show_databases", "database_list",
    "database_size", "storage_info", "version", "platform", "functions", "collations", "metadata_info",
    "user_agent",
}
_PRAGMA = re.compile(r"^\s*pragma\s+([a-z_][a-z0-9_]*)\s*(\(|;|$)", re.IGNORECASE)
_EXPLAIN = re.compile(r"^\s*explain\s+(?:\(\s*format\s+\w+\s*\)\s*)?(analy[sz]e\s+)?", re.IGNORECASE)

_READ_ONLY = (
    "capspread sql is read-only: {what} is refused. The published snapshot is replaced by every run; "
    "to keep results, use --format csv or json, or attach the snapshot READ_ONLY from your own DuckDB database."
)


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        str(path),
        read_only=True,
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    try:
        con.execute("SET enable_progress_bar = false")  # DuckDB draws it on standard output, amid the result
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def check_statement(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Raise ``QueryRefused`` unless ``query`` is exactly one read-only statement."""
    try:
        statements = [(_kind(s), s.query) for s in con.extract_statements(query)]
    except duckdb.Error as exc:
        raise QueryRefused(f"could not parse the query: {_first_line(exc)}") from None
    if not statements:
        raise QueryRefused("capspread sql needs a query, e.g. \"select * from marts.factor_monthly limit 5\"")
    if len(statements) > 1:
        raise QueryRefused(
            f"capspread sql runs one statement at a time; found {len(statements)}. "
            "Run them one by one, or combine them with WITH … SELECT."
        )
    _check_one(con, *statements[0])


def _kind(statement) -> str:
    try:
        return statement.type.name
    except ValueError:  # a statement type the Python API does not name (e.g. UPDATE EXTENSIONS)
        return "UNKNOWN"


def _check_one(con: duckdb.DuckDBPyConnection, kind: str, text: str) -> None:
    if kind in _QUERY_TYPES:
        return
    if kind == "EXPLAIN":
        m = _EXPLAIN.match(text)
        inner = text[m.end():] if m else ""
        try:
            inner_kinds = [_kind(s) for s in con.extract_statements(inner)] if inner.strip() else []
        except duckdb.Error:
            inner_kinds = []
        if len(inner_kinds) == 1 and inner_kinds[0] in _QUERY_TYPES:
            return
        raise QueryRefused(_READ_ONLY.format(what="EXPLAIN of anything but a query (EXPLAIN ANALYZE runs it)"))
    if kind == "PRAGMA":
        m = _PRAGMA.match(text)
        name = m.group(1).lower() if m else "?"
        if name in _READ_PRAGMAS:
            return
        raise QueryRefused(
            _READ_ONLY.format(what=f"PRAGMA {name}")
            + " Catalogue PRAGMAs that only read are allowed: " + ", ".join(sorted(_READ_PRAGMAS)) + "."
        )
    what = {
        "SET": "a SET, RESET, USE or PRAGMA … = … statement (settings are fixed)",
        "LOAD": "INSTALL/LOAD of an extension",
        "ATTACH": "ATTACH of another database",
        "COPY": "COPY (reading or writing files)",
        "EXPORT": "EXPORT DATABASE",
        "CALL": "CALL (use SELECT * FROM the table function instead)",
        "TRANSACTION": "a transaction statement",
        "UNKNOWN": "this statement",
    }.get(kind, kind)
    raise QueryRefused(_READ_ONLY.format(what=what))


def run_query(path: Path, query: str) -> tuple[list[str], list[tuple]]:
    """Run one read-only ``query`` on the snapshot; anything that would write is refused."""
    con = _connect(path)
    try:
        check_statement(con, query)
        try:
            rel = con.execute(query)
            columns = [d[0] for d in rel.description] if rel.description else []
            rows = rel.fetchall() if rel.description else []
        except duckdb.PermissionException as exc:
            raise QueryRefused(
                f"capspread sql reads only the published snapshot: no files, no network ({_first_line(exc)})"
            ) from None
        except duckdb.Error as exc:
            if "read-only" in str(exc).lower() or "configuration has been locked" in str(exc):
                raise QueryRefused(_READ_ONLY.format(what="this statement") + f" ({_first_line(exc)})") from None
            raise
        return columns, rows
    finally:
        con.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def catalogue(path: Path) -> tuple[list[str], list[tuple]]:
    """Every published table with its row count, column count and ``COMMENT ON`` text."""
    con = _connect(path)
    try:
        rel = con.execute(
            "SELECT t.schema_name || '.' || t.table_name AS \"table\", t.estimated_size AS rows, "
            "t.column_count AS columns, t.comment "
            "FROM duckdb_tables() t WHERE t.database_name = current_database() AND NOT t.temporary ORDER BY 1"
        )
        return [d[0] for d in rel.description], rel.fetchall()
    finally:
        con.close()


def describe_table(path: Path, name: str) -> tuple[str | None, list[str], list[tuple]]:
    """The ``COMMENT ON`` text of ``schema.table`` (schema defaults to ``marts``) and its columns.
    Names are matched as SQL matches them: in any case, with or without double quotes."""
    schema, _, table = name.strip().partition(".")
    if not table:
        schema, table = "marts", schema
    schema, table = (part.strip().strip('"') for part in (schema, table))
    con = _connect(path)
    try:
        found = con.execute(
            "SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = current_database() "
            "AND lower(schema_name) = lower(?) AND lower(table_name) = lower(?)",
            [schema, table],
        ).fetchall()
        if not found:
            raise KeyError(name)
        schema, table, comment = found[0]
        rel = con.execute(
            "SELECT column_name AS column, data_type AS type, is_nullable AS nullable, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [schema, table],
        )
        return comment, [d[0] for d in rel.description], rel.fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Output helpers for ``--format csv|json``: plain values, one result, header first.


def json_ready(value):
    """A result value as JSON: dates ISO 8601, NaN/±inf as null, DECIMAL as a number, BLOB as hex."""
    import math
    from datetime import date, datetime, time, timedelta
    from decimal import Decimal

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return str(value)


def unique_names(columns: list[str]) -> list[str]:
    """Column names made unique for JSON keys (``a``, ``a_1``, …) in the order of the result."""
    seen: set[str] = set()
    out = []
    for c in columns:
        name, i = c, 0
        while name in seen:
            i += 1
            name = f"{c}_{i}"
        seen.add(name)
        out.append(name)
    return out


def csv_cell(value) -> str:
    """A result value as CSV text: empty for NULL, true/false, ISO dates, JSON for nested values."""
    import json
    from datetime import date, datetime

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(json_ready(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)
