"""``db.create_schema`` applies the DDL files once per version of them: a current warehouse skips
them, a missing table or a changed file applies them again."""

from __future__ import annotations

import shutil

from warehouse import db


def ddl_tables() -> set[tuple[str, str]]:
    """Tables the DDL files create, read line by line (no regex shared with the code)."""
    found = set()
    for path in sorted((db.SQL / "ddl").glob("*.sql")):
        for line in path.read_text().splitlines():
            if line.startswith("CREATE TABLE IF NOT EXISTS "):
                schema, table = line.split()[5].split("(")[0].split(".")
                found.add((schema, table))
    return found


def tables(con) -> set[tuple[str, str]]:
    return set(con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall())


def comment(con, schema: str, table: str) -> str | None:
    return con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                       [schema, table]).fetchall()[0][0]


def test_a_missing_table_is_created_again(tmp_path):
    con = db.connect(tmp_path / "warehouse.duckdb")
    db.create_schema(con)
    assert ddl_tables() <= tables(con)
    assert len(ddl_tables()) > 20
    con.execute("DROP TABLE marts.rate_backdrop")
    db.create_schema(con)
    assert ddl_tables() <= tables(con)
    con.close()


def test_a_current_warehouse_skips_the_ddl_and_a_changed_file_is_applied(tmp_path, monkeypatch):
    sql = tmp_path / "sql"
    shutil.copytree(db.SQL, sql)
    monkeypatch.setattr(db, "SQL", sql)
    con = db.connect(tmp_path / "warehouse.duckdb")
    db.create_schema(con)
    original = comment(con, "marts", "rate_backdrop")
    assert original
    con.execute("COMMENT ON TABLE marts.rate_backdrop IS 'edited by hand'")
    db.create_schema(con)  # the files did not change: nothing is applied
    assert comment(con, "marts", "rate_backdrop") == "edited by hand"
    ddl = sql / "ddl" / "00_schemas.sql"
    ddl.write_text(ddl.read_text() + "\n-- a new line\n")
    db.create_schema(con)  # a changed file: everything is applied again
    assert comment(con, "marts", "rate_backdrop") == original
    con.close()
