"""Tiny published snapshots for edge cases: the real DDL of the warehouse, a handful of rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import shutil
import tempfile
from functools import lru_cache

import duckdb

REPO = Path(__file__).resolve().parents[2]
DDL = REPO / "warehouse" / "sql" / "ddl"


def tiny_home(root: Path, tables: dict[str, list[dict[str, Any]]] | None = None, *, ddl: bool = True) -> Path:
    """A home whose published snapshot has the mart tables (empty) plus the given rows."""
    db = root / "published" / "capspread.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    if ddl and not db.exists():
        shutil.copyfile(_empty_snapshot(), db)
    con = duckdb.connect(str(db))
    try:
        for table, rows in (tables or {}).items():
            if not ddl:
                schema = table.split(".")[0]
                con.execute(f"create schema if not exists {schema}")
                cols = ", ".join(f"{k} {_type(v)}" for k, v in rows[0].items())
                con.execute(f"create table {table} ({cols})")
            for row in rows:
                names = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                con.execute(f"insert into {table} ({names}) values ({marks})", list(row.values()))
    finally:
        con.close()
    return root


@lru_cache(maxsize=1)
def _empty_snapshot() -> Path:
    """The mart and meta tables of the real DDL, empty (built once per test session)."""
    path = Path(tempfile.mkdtemp(prefix="capspread-tiny-")) / "empty.duckdb"
    con = duckdb.connect(str(path))
    try:
        for name in ("00_schemas.sql", "30_marts.sql", "31_factor_marts.sql", "40_meta.sql"):
            con.execute((DDL / name).read_text())
    finally:
        con.close()
    return path


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, date):
        return "DATE"
    return "VARCHAR"


def board(day: date, symbol: str, *, close: float, wtd: float, ytd: float, up10: int | None = 7,
          record: float | None = None, mtd: float = 0.0, role: str = "etf") -> dict[str, Any]:
    """One market_scoreboard row with consistent derived columns."""
    record = record if record is not None else close * 1.05
    return {
        "as_of_date": day, "symbol": symbol, "name": symbol, "role": role, "close": close,
        "wtd_return": wtd, "mtd_return": mtd, "ytd_return": ytd, "up_weeks_last_10": up10,
        "pct_from_record_high": close / record - 1, "wtd_rank": None, "record_high": record,
        "prev_week_close": close / (1 + wtd), "prev_year_close": close / (1 + ytd),
    }
