"""Replay: rebuild raw → core → marts from ``landing/`` alone, with no network.

Every run wrote a journal under ``landing/_runs/`` naming the landing files it loaded, the window
of rows it took from each, its as-of date and its ``known_at`` stamp. Replay repeats those runs in
order with the same merge rules, so it reproduces the warehouse (table checksums match), then
rebuilds the marts as of the last run and publishes.
"""

from __future__ import annotations

import hashlib
import time
from datetime import date, datetime, timezone

import polars as pl
from prefect import flow

from capspread.config import Config, Home
from flows.landing import read_journals
from flows.load import apply_batches, build_docs, finish_run
from flows.nightly import RunResult, exclusive, new_run_id, publish_snapshot
from sources.base import Batch, parse_payload
from sources.schemas import DATASETS
from warehouse import db


def _landing_rows(home: Home, journals: list[dict]) -> pl.DataFrame:
    """meta.landing_files rows rebuilt from the journals (for a warehouse that was lost)."""
    rows, seen = [], set()
    for j in journals:
        for e in j["entries"]:
            if e["path"] in seen:
                continue
            seen.add(e["path"])
            payload = (home.root / e["path"]).read_bytes()
            rows.append({
                "sha256": hashlib.sha256(payload).hexdigest(), "source": e["source"], "dataset": e["dataset"],
                "path": e["path"], "original_name": e["name"], "format": e["format"], "size_bytes": len(payload),
                "row_count": None, "received_at": datetime.fromisoformat(j["started"]), "run_id": j["run_id"],
                "status": "loaded", "loaded_through": date.fromisoformat(j["as_of"]), "newest_available": None,
            })
    return pl.DataFrame(rows, schema_overrides={"received_at": pl.Datetime("us", "UTC"), "size_bytes": pl.Int64,
                                                "row_count": pl.Int64, "loaded_through": pl.Date,
                                                "newest_available": pl.Date})


def replay(home: Home, dataset: str | None = None, config: Config | None = None) -> RunResult:
    """Rebuild ``dataset`` (or every dataset) from the landing zone and publish."""
    config = config or Config.load()
    if dataset is not None and dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    datasets = [dataset] if dataset else list(DATASETS)
    journals = read_journals(home)
    if not journals:
        raise FileNotFoundError(f"no run journals under {home.landing / '_runs'}: nothing to replay")
    t0 = time.perf_counter()
    started = datetime.now(timezone.utc)
    run = RunResult(run_id=new_run_id(), as_of=date.fromisoformat(journals[-1]["as_of"]), profile="replay")
    with exclusive(home):
        con = db.connect(home.warehouse)
        try:
            db.create_schema(con)
            con.execute("BEGIN TRANSACTION")
            for d in datasets:
                con.execute(f"DELETE FROM raw.{d}")
                con.execute(f"DELETE FROM core.{db.CORE_TABLE[d]}")
            if not con.execute("SELECT count(*) FROM meta.landing_files").fetchall()[0][0]:
                db.append_meta(con, "landing_files", _landing_rows(home, journals))
            cursors: dict[tuple[str, str], date] = {}
            for j in journals:
                as_of = date.fromisoformat(j["as_of"])
                step = RunResult(run_id=j["run_id"], as_of=as_of, profile=j["profile"])
                batches = []
                for e in j["entries"]:
                    if e["dataset"] not in datasets:
                        continue
                    payload = (home.root / e["path"]).read_bytes()
                    batches.append(Batch(
                        source=e["source"], dataset=e["dataset"], name=e["name"], payload=payload, format=e["format"],
                        frame=parse_payload(payload, e["format"], e["name"], e["dataset"]),
                        landing_path=e["path"], since=date.fromisoformat(e["since"]) if e["since"] else None,
                    ))
                    if e["source"] != "inbox":
                        cursors[(e["source"], e["dataset"])] = as_of
                apply_batches(con, home, config, step, batches, {}, datetime.fromisoformat(j["started"]),
                              datetime.fromisoformat(j["known_at"]), replay=True)
                for rep in step.datasets.values():
                    total = run.datasets.setdefault(rep.dataset, rep.__class__(rep.dataset))
                    total.batches += rep.batches
                    total.rows += rep.rows
                    total.core_changed += rep.core_changed
            for (source, d), cursor in cursors.items():
                db.upsert_load_state(con, source, d, cursor, run.run_id)
            finish_run(con, config, run, started, flow="replay")
            con.execute("COMMIT")
            build_docs(home, run)
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except Exception:
                pass
            raise
        finally:
            con.close()
        publish_snapshot.fn(home, run)
    run.snapshot = str(home.snapshot)
    run.seconds = time.perf_counter() - t0
    return run


@flow(name="replay", log_prints=False)
def replay_flow(dataset: str | None = None, home: str | None = None) -> RunResult:
    """Rebuild the warehouse from landing/ alone (contract §2 ``capspread replay``)."""
    from flows.deploy import no_backfill_running

    where = Home.from_env(home)
    with no_backfill_running(where):
        return replay(where, dataset)
