"""Proposed changes to the pipeline that are not applied yet, measured before and after on the
SYNTHETIC universe.

Nothing here changes the pipeline: each prototype calls the pipeline's own functions and SQL
(``warehouse.db``) on a scratch warehouse, once as the pipeline does it today ("before") and once
as proposed ("after"), in the same process, and checks that both give the same answer.

**One MERGE per dataset and run** — the batches of a dataset conformed one by one as today, then
concatenated, reduced to one row per key and merged once (``db.prefer_sources`` + ``db.merge_core``
once per dataset) instead of once per batch.

The changes measured by earlier runs and since applied in the pipeline (set-based validation,
incremental marts with only the new mart rows replaced, incremental publish, cheap source health,
DuckDB's memory limit, Prefect tasks without input hashing, sha256 once per payload) are listed in
``APPLIED``; their before/after numbers are in the history of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl

# measured by earlier runs of the benchmark, now in the pipeline (where, what)
APPLIED = (
    ("expectations/setbased.py", "set-based validation above CAPSPREAD_GX_MAX_ROWS rows"),
    ("flows/marts.py, flows/load.py", "incremental nightly marts, only the new mart rows replaced"),
    ("warehouse/publish.py", "incremental publish"),
    ("flows/health.py", "source health without full scans"),
    ("warehouse/db.py", "DuckDB memory limit"),
    ("flows/nightly.py", "Prefect tasks without input hashing"),
    ("sources/base.py", "sha256 once per payload"),
)


def _timed(fn, *args, **kwargs):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


def _peak_during(fn, *args, **kwargs):
    """(result, wall s, CPU s, peak resident memory above the start, bytes), sampled every 5 ms."""
    from benchmarks.measure import rss_bytes

    start = rss_bytes()
    top = [start]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.005):
            top[0] = max(top[0], rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out, w, c = _timed(fn, *args, **kwargs)
    finally:
        stop.set()
        thread.join()
    return out, w, c, max(top[0], rss_bytes()) - start


# --------------------------------------------------------------------------------------------
# one MERGE per dataset


def merge_once(batches, work: Path, config) -> list[dict]:
    """The load of the history inside one transaction, as apply_batches does it (raw insert, prefer
    sources and core MERGE per batch) vs one prefer + MERGE per dataset, both on a warehouse opened
    with the pipeline's ``db.connect`` (its DuckDB memory limit and spill directory)."""
    import shutil

    from sources.schemas import KEYS
    from warehouse import db

    known_at = datetime.now(timezone.utc).replace(microsecond=0)
    started = known_at
    datasets = ("prices", "short_interest")
    out = {}

    def load(mode: str, con) -> None:
        con.execute("BEGIN TRANSACTION")
        for ds in datasets:
            mine = [b for b in batches if b.dataset == ds]
            for b in mine:
                db.insert_raw(con, ds, b.frame, f"landing/{b.name}", "proto", started)
            cores = [db.conform_core(ds, b.frame, b.source, known_at, config.publication_lag) for b in mine]
            if mode == "after" and cores:
                # one row per key: the latest batch among equals (one source here), as the merges in order give
                cores = [pl.concat(cores, how="diagonal_relaxed").unique(subset=list(KEYS[ds]), keep="last",
                                                                         maintain_order=True)]
            for core in cores:
                core = db.prefer_sources(con, ds, core, config.source_priority)
                db.merge_core(con, ds, core)
            del cores
        con.execute("COMMIT")

    for mode in ("before", "after"):
        path = work / f"SYNTHETIC_proto_merge_{mode}.duckdb"
        spill = Path(str(path) + ".tmp")
        for p in (path, path.with_name(path.name + ".wal")):
            p.unlink(missing_ok=True)
        shutil.rmtree(spill, ignore_errors=True)
        con = db.connect(path)
        try:
            db.create_schema(con)
            _, w, c, grew = _peak_during(load, mode, con)
            out[mode] = (w, c, grew, con.execute("SELECT count(*), sum(close) FROM core.prices_daily").fetchone(),
                         con.execute("SELECT count(*), sum(short_interest) FROM core.short_interest").fetchone())
        finally:
            con.close()
            for p in (path, path.with_name(path.name + ".wal")):
                p.unlink(missing_ok=True)
            shutil.rmtree(spill, ignore_errors=True)

    def same(a, b) -> bool:
        return all(x[0] == y[0] and abs((x[1] or 0) - (y[1] or 0)) <= 1e-9 * abs(x[1] or 1) for x, y in zip(a[3:], b[3:]))

    n = sum(1 for b in batches if b.dataset in datasets)
    b, a = out["before"], out["after"]
    applied = "prices" in getattr(db, "MERGE_ONCE", ())  # the pipeline's apply_batches merges these once per run
    return [
        {"applied": applied, "name": "One core MERGE per dataset", "what": f"raw insert + prefer_sources + merge_core of the history in one "
         f"transaction: {n} batches one by one vs one prefer + MERGE per dataset (pipeline's db.connect, its memory "
         "limit); memory = growth of the process's resident set",
         "before": b[0], "before_cpu": b[1], "after": a[0], "after_cpu": a[1],
         "before_rss": b[2], "after_rss": a[2],
         "check": "same core rows and sums" if same(b, a) else f"DIFFERENT: {b[3:]} vs {a[3:]}",
         "detail": "flows/load.py apply_batches runs prefer_sources (a join of the batch against the whole core table) "
         "and MERGE (a join of the batch against the whole, growing core table) once per batch, so a backfill of "
         "k files scans core k times. Proposed: keep the per-batch work (quarantine, landing, raw insert, journal), "
         "collect each dataset's conformed core rows in batch order, then per dataset: keep one row per key (the "
         "best-ranked source, the latest batch among equals, i.e. what the sequence of merges yields today), one "
         "prefer_sources, one merge_core. CPI (vintages appended) keeps its per-batch path."},
    ]


# --------------------------------------------------------------------------------------------


def run(spec: dict) -> dict:
    from benchmarks.synthetic import MANIFEST, SyntheticSource
    from capspread.config import Config

    data, work = Path(spec["data"]), Path(spec["work"])
    manifest = json.loads((data / MANIFEST).read_text())
    end = date.fromisoformat(manifest["end"])
    config = Config.load(Path(spec["config"]))
    source = SyntheticSource(data)
    loaded = [b for ds in ("prices", "short_interest") for b in source.fetch(ds, end, None)]
    changes: list[dict] = []
    errors: list[str] = []
    try:  # a prototype failing must not lose the run's other results
        changes += merge_once(loaded, work, config)
    except Exception as exc:
        errors.append(f"merge_once: {type(exc).__name__}: {exc}")
    return {"changes": changes, "errors": errors, "applied": [list(a) for a in APPLIED]}
