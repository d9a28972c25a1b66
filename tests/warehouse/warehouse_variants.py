"""Real warehouse files with known, different contents for the publishing tests.

A variant is a copy of the warehouse a real ``capspread run`` wrote, with the newest days of two
marts cut off and a ``meta.runs`` row for a new run id. What a reader must then see is computed
here from the warehouse itself, with plain SQL, never from what ``publish`` returns.
"""

from __future__ import annotations

import shutil
import struct
from datetime import date
from pathlib import Path

import duckdb


def copy_warehouse(home: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / "warehouse.duckdb"
    shutil.copyfile(home / "warehouse.duckdb", target)
    return target


def make_variant(warehouse: Path, run_id: str, as_of: date, cut_days: int = 0) -> dict:
    """Cut the last ``cut_days`` days of marts.market_scoreboard and marts.index_weekly, record
    ``run_id`` in meta.runs, and return what a reader of the published copy must see."""
    con = duckdb.connect(str(warehouse))
    try:
        if cut_days:
            con.execute(
                "DELETE FROM marts.market_scoreboard WHERE as_of_date > "
                "(SELECT max(as_of_date) FROM marts.market_scoreboard) - CAST(? AS INTEGER)", [cut_days])
            con.execute(
                "DELETE FROM marts.index_weekly WHERE week_end > "
                "(SELECT max(week_end) FROM marts.index_weekly) - CAST(? AS INTEGER)", [cut_days])
        con.execute(
            "INSERT INTO meta.runs BY NAME SELECT ? AS run_id, 'nightly' AS flow, 'sample' AS profile, "
            "CAST(? AS DATE) AS as_of_date, now() AS started_at, now() AS finished_at, 'success' AS status, "
            "0 AS exit_code, true AS published",
            [run_id, as_of],
        )
        con.execute("CHECKPOINT")
        scoreboard, newest = con.execute(
            "SELECT count(*), max(as_of_date) FROM marts.market_scoreboard").fetchone()
        return {
            "run_id": run_id,
            "as_of": as_of.isoformat(),
            "runs": con.execute("SELECT count(*) FROM meta.runs").fetchone()[0],
            "scoreboard": scoreboard,
            "scoreboard_newest": str(newest),
            "weekly": con.execute("SELECT count(*) FROM marts.index_weekly").fetchone()[0],
            "factors": con.execute("SELECT count(*) FROM core.factors").fetchone()[0],
        }
    finally:
        con.close()


def storage_version_number(path: Path) -> int:
    """The storage version number in a DuckDB file's main header (bytes 12–19 after the
    checksum and the ``DUCK`` magic): 64 for the v0.10/v1.0/v1.1 format, 65 for v1.2, ..."""
    head = path.read_bytes()[:20]
    assert head[8:12] == b"DUCK", f"{path} is not a DuckDB file"
    return struct.unpack("<Q", head[12:20])[0]
