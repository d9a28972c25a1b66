"""Read the published snapshot with an older DuckDB (whatever ``duckdb`` this interpreter has).

Run by the tests with the Python of a separate virtual environment that holds an old ``duckdb``
wheel, as a BI tool bundling DuckDB 1.x would open the file. Prints one JSON object.

    python old_duckdb_reader.py read SNAPSHOT PARQUET_FILE
    python old_duckdb_reader.py open DATABASE_FILE
"""

from __future__ import annotations

import json
import sys

import duckdb


def read(snapshot: str, parquet_file: str) -> dict:
    con = duckdb.connect(snapshot, read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name || '.' || table_name, comment FROM duckdb_tables() ORDER BY 1"
        ).fetchall()
        columns = con.execute(
            "SELECT schema_name || '.' || table_name || '.' || column_name, data_type, comment "
            "FROM duckdb_columns() WHERE schema_name = 'marts' ORDER BY 1"
        ).fetchall()
        factor_monthly = con.execute(
            "SELECT * FROM marts.factor_monthly ORDER BY month DESC LIMIT 24"
        ).fetchall()
        scoreboard = con.execute(
            "SELECT as_of_date, symbol, close, wtd_return, ytd_return FROM marts.market_scoreboard "
            "WHERE as_of_date = (SELECT max(as_of_date) FROM marts.market_scoreboard) ORDER BY symbol"
        ).fetchall()
        counts = {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name, _ in tables}
        run = con.execute(
            "SELECT run_id, as_of_date FROM meta.runs ORDER BY finished_at DESC LIMIT 1").fetchone()
        parquet_rows = con.execute(f"SELECT count(*) FROM read_parquet('{parquet_file}')").fetchone()[0]
    finally:
        con.close()
    return {
        "duckdb": duckdb.__version__,
        "tables": tables,
        "columns": columns,
        "factor_monthly": factor_monthly,
        "scoreboard": scoreboard,
        "counts": counts,
        "run": run,
        "parquet_rows": parquet_rows,
    }


def try_open(path: str) -> dict:
    try:
        con = duckdb.connect(path, read_only=True)
        con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()
        con.close()
        return {"duckdb": duckdb.__version__, "ok": True}
    except duckdb.Error as exc:
        return {"duckdb": duckdb.__version__, "ok": False, "error": str(exc)}


if __name__ == "__main__":
    mode = sys.argv[1]
    result = read(sys.argv[2], sys.argv[3]) if mode == "read" else try_open(sys.argv[2])
    sys.stdout.write(json.dumps(result, default=str) + "\n")
