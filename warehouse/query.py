"""Read-only access to the published snapshot for ``capspread sql``, ``tables`` and ``describe``."""

from __future__ import annotations

from pathlib import Path

import duckdb


class QueryRefused(Exception):
    """The statement would write."""


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def run_query(path: Path, query: str) -> tuple[list[str], list[tuple]]:
    """Run ``query`` on a read-only connection; a writing statement is refused with a clear message."""
    con = _connect(path)
    try:
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            raise QueryRefused(f"could not parse the query: {exc}") from None
        for st in statements:
            kind = st.type.name
            if kind not in ("SELECT", "EXPLAIN", "PRAGMA", "RELATION"):
                raise QueryRefused(
                    f"capspread sql is read-only: a {kind} statement is refused. "
                    "The published snapshot is replaced by every run; write to your own database instead "
                    "(ATTACH it read-only from DuckDB)."
                )
        rel = con.execute(query)
        columns = [d[0] for d in rel.description] if rel.description else []
        return columns, rel.fetchall()
    except duckdb.Error as exc:
        if "read-only" in str(exc).lower():
            raise QueryRefused(f"capspread sql is read-only: {exc}") from None
        raise
    finally:
        con.close()


def catalogue(path: Path) -> tuple[list[str], list[tuple]]:
    con = _connect(path)
    try:
        rel = con.execute(
            "SELECT schema_name || '.' || table_name AS \"table\", estimated_size AS rows, comment "
            "FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1"
        )
        return [d[0] for d in rel.description], rel.fetchall()
    finally:
        con.close()


def describe_table(path: Path, name: str) -> tuple[str | None, list[str], list[tuple]]:
    schema, _, table = name.partition(".")
    if not table:
        schema, table = "marts", schema
    con = _connect(path)
    try:
        found = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = ? AND table_name = ?",
            [schema, table],
        ).fetchall()
        if not found:
            raise KeyError(name)
        rel = con.execute(
            "SELECT column_name AS column, data_type AS type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [schema, table],
        )
        return found[0][0], [d[0] for d in rel.description], rel.fetchall()
    finally:
        con.close()
