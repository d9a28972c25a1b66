"""The nightly flow: sources + inbox → land → validate → load raw/core → marts → publish.

A recipe of coarse tasks; only network fetches retry. ``run_pipeline`` is the whole run and
returns a ``RunResult`` whose ``exit_code`` follows contract §2 (0 ok, 1 failed, 3 quarantined).
"""

from __future__ import annotations

import fcntl
import logging
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
from prefect import flow, task

from capspread.config import Config, Home, known_at_for
from flows.landing import land, quarantine, scan_inbox
from flows.marts import build_marts
from sources.base import Batch
from sources.schemas import DATASETS, DATE_COLUMN
from warehouse import db
from warehouse.publish import publish

log = logging.getLogger("capspread")


class RunLocked(RuntimeError):
    """Another run holds the warehouse."""


@dataclass
class DatasetReport:
    dataset: str
    batches: int = 0
    rows: int = 0
    core_changed: int = 0
    quarantined: int = 0
    duplicates: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    run_id: str
    as_of: date
    profile: str
    exit_code: int = 0
    status: str = "success"
    message: str = ""
    datasets: dict[str, DatasetReport] = field(default_factory=dict)
    marts: dict[str, int] = field(default_factory=dict)
    published: bool = False
    snapshot: str | None = None
    seconds: float = 0.0
    quarantine_files: list[str] = field(default_factory=list)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@contextmanager
def exclusive(home: Home):
    """One writer at a time: a second run refuses at once with a clear message."""
    home.root.mkdir(parents=True, exist_ok=True)
    lock = (home.root / ".capspread.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        lock.close()
        raise RunLocked(
            f"another capspread run is writing {home.warehouse}; wait for it to finish and run again"
        ) from exc
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _sources(profile: str, config: Config):
    if profile == "sample":
        from sources.sample import SampleSource

        return [SampleSource(lags=config.publication_lag)]
    if profile == "live":
        from sources.live import live_sources  # type: ignore[import-not-found]

        return live_sources(config)
    raise ValueError(f"unknown profile {profile!r}: expected sample or live")


@task(name="collect")
def collect(home: Home, config: Config, profile: str, as_of: date, cursors: dict) -> list[Batch]:
    """Inbox files and source batches that became public by ``as_of``."""
    batches = scan_inbox(home)
    for source in _sources(profile, config):
        for dataset in DATASETS:
            batches.extend(source.fetch(dataset, as_of, cursors.get((source.name, dataset))))
    return batches


@task(name="validate")
def validate(batches: list[Batch], config: Config, as_of: date) -> dict[int, object]:
    """Run each parsed batch through its dataset's Great Expectations suite."""
    from expectations.runner import validate as run_suite

    outcomes = {}
    for i, b in enumerate(batches):
        if b.frame is not None:
            options = {"max_daily_move": config.validation.get("max_daily_move", 0.35)} if b.dataset == "prices" else {}
            outcomes[i] = run_suite(b.dataset, b.frame, as_of, **options)
    return outcomes


def _validation_rows(run_id: str, batch: Batch, landing_file: str, outcome) -> pl.DataFrame:
    import json

    now = datetime.now(timezone.utc)
    return pl.DataFrame(
        [
            {
                "run_id": run_id,
                "dataset": batch.dataset,
                "landing_file": landing_file,
                "suite": batch.dataset,
                "expectation": c.expectation,
                "column_name": c.column,
                "severity": c.severity,
                "success": c.success,
                "element_count": c.element_count,
                "unexpected_count": c.unexpected_count,
                "unexpected_examples": json.dumps(c.examples, default=str) if c.examples else None,
                "validated_at": now,
            }
            for c in outcome.checks
        ],
        schema_overrides={"element_count": pl.Int64, "unexpected_count": pl.Int64,
                          "validated_at": pl.Datetime("us", "UTC")},
    )


@task(name="load")
def load(home: Home, config: Config, run: RunResult, batches: list[Batch], outcomes: dict, started: datetime) -> None:
    """Quarantine rejected batches, land the rest and load raw → core → marts → meta in one transaction."""
    known_at = known_at_for(run.as_of if run.as_of < datetime.now(timezone.utc).date() else None)
    con = db.connect(home.warehouse)
    try:
        db.create_schema(con)
        seen = db.seen_hashes(con)
        con.execute("BEGIN TRANSACTION")
        landing_rows, validation_rows, cursor_moves = [], [], {}
        for i, b in enumerate(batches):
            rep = run.datasets.setdefault(b.dataset, DatasetReport(b.dataset))
            outcome = outcomes.get(i)
            if b.sha256 in seen:
                rep.duplicates += 1
                if b.inbox_path:
                    Path(b.inbox_path).unlink(missing_ok=True)
                continue
            reasons = [b.error.reason()] if b.error else [f"{c.severity}: {c.describe()}" for c in outcome.errors]
            if outcome is not None:
                rep.checks_passed += sum(c.success for c in outcome.checks)
                rep.checks_failed += sum(not c.success for c in outcome.checks)
                rep.warnings += [c.describe() for c in outcome.warnings]
            if reasons:
                target = quarantine(home, run.run_id, b, reasons)
                rep.quarantined += 1
                rep.errors += reasons
                run.quarantine_files.append(str(target))
                if outcome is not None:
                    validation_rows.append(_validation_rows(run.run_id, b, str(target), outcome))
                landing_rows.append(_landing_row(b, str(target.relative_to(home.root)), run.run_id, "quarantined"))
                continue
            path = land(home, b)
            rel = str(path.relative_to(home.root))
            seen.add(b.sha256)
            validation_rows.append(_validation_rows(run.run_id, b, rel, outcome))
            landing_rows.append(_landing_row(b, rel, run.run_id, "loaded"))
            rep.batches += 1
            rep.rows += db.insert_raw(con, b.dataset, b.frame, rel, run.run_id, started)
            core = db.conform_core(b.dataset, b.frame, b.source, known_at, config.publication_lag)
            rep.core_changed += db.merge_core(con, b.dataset, core)
            if b.cursor is not None:
                key = (b.source, b.dataset)
                cursor_moves[key] = max(cursor_moves.get(key, b.cursor), b.cursor)
            if b.inbox_path:
                Path(b.inbox_path).unlink(missing_ok=True)
        for (source, dataset), cursor in cursor_moves.items():
            db.upsert_load_state(con, source, dataset, cursor, run.run_id)
        for frame in validation_rows:
            db.append_meta(con, "validations", frame)
        if landing_rows:
            db.append_meta(con, "landing_files", pl.DataFrame(landing_rows, schema_overrides={
                "received_at": pl.Datetime("us", "UTC"), "size_bytes": pl.Int64, "row_count": pl.Int64}))
        for name, frame in build_marts(con, config, run.as_of).items():
            run.marts[name] = db.replace_mart(con, name, frame)
        _source_health(con, run)
        quarantined = sum(r.quarantined for r in run.datasets.values())
        run.exit_code = 3 if quarantined else 0
        run.status = "quarantined" if quarantined else "success"
        run.published = True
        _record_run(con, run, started)
        con.execute("COMMIT")
        run.snapshot = str(home.snapshot)
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception:
            pass
        raise
    finally:
        con.close()


def _landing_row(b: Batch, path: str, run_id: str, status: str) -> dict:
    return {
        "sha256": b.sha256, "source": b.source, "dataset": b.dataset, "path": path, "original_name": b.name,
        "format": b.format, "size_bytes": len(b.payload), "row_count": b.frame.height if b.frame is not None else None,
        "received_at": datetime.now(timezone.utc), "run_id": run_id, "status": status,
    }


def _source_health(con, run: RunResult) -> None:
    """Newest observation per source and dataset against the as-of date."""
    rows = []
    for dataset in DATASETS:
        table = db.CORE_TABLE[dataset]
        column = DATE_COLUMN[dataset]
        for source, newest in con.execute(
            f"SELECT source, max({column}) FROM core.{table} GROUP BY source"
        ).fetchall():
            stale = (run.as_of - newest).days if newest else None
            rows.append((source, dataset, newest, stale))
    con.execute("DELETE FROM meta.source_health")
    for source, dataset, newest, stale in rows:
        con.execute(
            "INSERT INTO meta.source_health VALUES (?, ?, ?, now(), ?, ?, ?, now(), ?)",
            [source, dataset, "ok", newest, stale, f"newest observation {newest}", run.run_id],
        )


def _record_run(con, run: RunResult, started: datetime) -> None:
    con.execute(
        "INSERT INTO meta.runs VALUES (?, 'nightly', ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id, run.profile, run.as_of, started, run.status, run.exit_code,
            sum(r.batches for r in run.datasets.values()), sum(r.quarantined for r in run.datasets.values()),
            sum(r.rows for r in run.datasets.values()), run.published, run.message or None,
        ],
    )


@task(name="publish")
def publish_snapshot(home: Home, run: RunResult) -> dict:
    """Replace the read-only snapshot and the Parquet files atomically."""
    return publish(home.warehouse, home.published, run_id=run.run_id, as_of=run.as_of)


@flow(name="nightly", log_prints=False)
def nightly(as_of: date | None = None, profile: str = "sample", home: str | None = None) -> RunResult:
    """One nightly run (contract §2 ``capspread run``)."""
    return run_pipeline(as_of=as_of, profile=profile, home=Home.from_env(home))


def run_pipeline(as_of: date | None, profile: str, home: Home, config: Config | None = None) -> RunResult:
    config = config or Config.load()
    as_of = as_of or datetime.now(timezone.utc).date()
    run = RunResult(run_id=new_run_id(), as_of=as_of, profile=profile)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    home.ensure()
    with exclusive(home):
        con = db.connect(home.warehouse)
        try:
            db.create_schema(con)
            cursors = db.cursors(con)
        finally:
            con.close()
        batches = collect(home, config, profile, as_of, cursors)
        outcomes = validate(batches, config, as_of)
        load(home, config, run, batches, outcomes, started)
        publish_snapshot(home, run)
    run.seconds = time.perf_counter() - t0
    return run
