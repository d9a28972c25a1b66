"""Reader processes for the publishing tests: run as ``python snapshot_readers.py MODE PUBLISHED ...``.

Each prints one JSON object per line on standard output; the test parses them. They use only
duckdb and pyarrow, like an analyst's notebook would.

``hold PUBLISHED SECONDS``
    open the snapshot read-only, read what it holds, run one long query (about SECONDS) on the same
    connection, read again on that connection, then reconnect and read once more.
``loop PUBLISHED STOPFILE MAX_SECONDS``
    read the snapshot, the Parquet files and the manifest over and over until STOPFILE exists
    (or MAX_SECONDS pass), each read on a fresh connection.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def emit(**fields) -> None:
    sys.stdout.write(json.dumps(fields, default=str) + "\n")
    sys.stdout.flush()


def snapshot_state(con) -> dict:
    """What one connection sees: the newest run in meta.runs and a few counts and sums."""
    run_id, as_of = con.execute(
        "SELECT run_id, as_of_date FROM meta.runs ORDER BY finished_at DESC, run_id DESC LIMIT 1"
    ).fetchone()
    scoreboard, newest = con.execute("SELECT count(*), max(as_of_date) FROM marts.market_scoreboard").fetchone()
    return {
        "run_id": run_id,
        "as_of": str(as_of),
        "runs": con.execute("SELECT count(*) FROM meta.runs").fetchone()[0],
        "scoreboard": scoreboard,
        "scoreboard_newest": str(newest),
        "weekly": con.execute("SELECT count(*) FROM marts.index_weekly").fetchone()[0],
        "factors": con.execute("SELECT count(*) FROM core.factors").fetchone()[0],
    }


def parquet_state(path: Path) -> dict:
    """One Parquet file, read through one open file handle: its run and its rows."""
    with open(path, "rb") as fh:
        # no reader threads: pyarrow 26 sometimes aborts at interpreter exit after threaded reads
        pf = pq.ParquetFile(fh, pre_buffer=False)
        meta = pf.schema_arrow.metadata or {}
        table = pf.read(use_threads=False)
    return {
        "run_id": meta.get(b"capspread_run_id", b"").decode(),
        "rows": table.num_rows,
        "metadata_rows": pf.metadata.num_rows,
    }


def hold(published: Path, seconds: float) -> None:
    con = duckdb.connect(str(published / "capspread.duckdb"), read_only=True, config={"threads": 1})
    before = snapshot_state(con)
    # calibrate a cross join on the snapshot's own data to last about `seconds`
    sql = ("SELECT count(*) AS n, sum(hash(s.symbol, s.as_of_date, r.range) % 7) AS h "
           "FROM marts.market_scoreboard s, range({k}) r")
    k, t = 200, time.perf_counter()
    con.execute(sql.format(k=k)).fetchone()
    per_k = max(time.perf_counter() - t, 1e-3) / k
    k = max(int(seconds / per_k), 1000)
    emit(event="querying", before=before, k=k)
    t0 = time.perf_counter()
    n, _ = con.execute(sql.format(k=k)).fetchone()
    query_seconds = time.perf_counter() - t0
    after_same = snapshot_state(con)
    factors_sum = con.execute("SELECT round(sum(value), 6) FROM core.factors").fetchone()[0]
    con.close()
    fresh = duckdb.connect(str(published / "capspread.duckdb"), read_only=True)
    try:
        after_fresh = snapshot_state(fresh)
    finally:
        fresh.close()
    emit(event="done", rows=n, query_seconds=query_seconds, after_same=after_same,
         factors_sum=factors_sum, after_fresh=after_fresh, finished=time.time())


def loop(published: Path, stop: Path, max_seconds: float) -> None:
    deadline = time.monotonic() + max_seconds
    n = 0
    while time.monotonic() < deadline and not stop.exists():
        n += 1
        con = duckdb.connect(str(published / "capspread.duckdb"), read_only=True)
        try:
            snap = snapshot_state(con)
        finally:
            con.close()
        # each file on its own, through the live link
        single = parquet_state(published / "parquet" / "marts" / "market_scoreboard.parquet")
        # several files from one generation: resolve the link once, then read
        generation = (published / "parquet").resolve()
        together = {
            name: parquet_state(generation / schema / f"{name}.parquet")
            for schema, name in (("marts", "market_scoreboard"), ("marts", "index_weekly"), ("meta", "runs"))
        }
        manifest = json.loads((published / "manifest.json").read_text())
        emit(event="read", n=n, snapshot=snap, parquet=single, together=together,
             manifest={"run_id": manifest["run_id"], "tables": manifest["tables"]})
    emit(event="stopped", reads=n)


def main(argv: list[str]) -> int:
    mode, published = argv[1], Path(argv[2])
    if mode == "hold":
        hold(published, float(argv[3]))
    elif mode == "loop":
        loop(published, Path(argv[3]), float(argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # everything is written; skip library teardown at interpreter exit
