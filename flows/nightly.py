"""The nightly flow: sources + inbox → land → validate → load raw/core → marts → publish.

A recipe of coarse tasks; only network fetches retry. ``run_pipeline`` is the whole run and
returns a ``RunResult`` whose ``exit_code`` follows contract §2 (0 ok, 1 failed, 3 quarantined).
"""

from __future__ import annotations

import fcntl
import logging
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from prefect import flow, task
from prefect.cache_policies import NO_CACHE  # results are not persisted; hashing the batches only costs

from capspread.config import Config, Home, known_at_for
from flows.artifacts import publish_run_artifacts, report_failure, report_quarantine, run_logger
from flows.deploy import no_backfill_running, warehouse_slot
from flows.landing import scan_inbox, stray_inbox_files, write_journal
from flows.load import apply_batches, build_docs, finish_run, pending_landed
from sources.base import Batch
from sources.schemas import DATASETS
from transforms.calendar import is_session
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
    mart_outcomes: list = field(default_factory=list)  # expectations.runner.Outcome per mart
    docs_records: list = field(default_factory=list)  # what Data Docs render for this run
    docs_index: str | None = None
    health_notes: list[str] = field(default_factory=list)
    inbox_notes: list[str] = field(default_factory=list)  # inbox files no run reads, and where they belong
    source_failures: list[tuple[str, str, str]] = field(default_factory=list)  # (source, dataset, why)
    source_events: list[tuple[str, str, str, str]] = field(default_factory=list)  # (source, dataset, status, why)
    known_at: datetime | None = None  # when the run's core rows became known
    mart_since: date | None = None  # marts rebuilt from this day on (None: in full)
    mart_mode: str = ""  # "full" or "incremental", and why
    base_run_id: str | None = None  # the run whose state the published snapshot holds before this one
    publish_mode: str = ""  # "full" or "incremental", and why


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


@task(name="collect", cache_policy=NO_CACHE)
def collect(home: Home, config: Config, profile: str, as_of: date, cursors: dict, pending: list[dict],
            run: RunResult | None = None) -> list[Batch]:
    """Inbox files, landed files with rows that have become public since, and source batches.
    A source that stays unavailable after its retries is recorded (``run.source_failures``) and
    the run goes on with the others; its cursor does not move."""
    from sources.base import parse_payload
    from sources.errors import SourceUnavailable

    batches = scan_inbox(home)
    if run is not None:
        run.inbox_notes += [f"{path} is not in a dataset's folder and was left where it is; expected "
                            f"inbox/<dataset>/ with <dataset> one of {', '.join(DATASETS)}"
                            for path in stray_inbox_files(home)]
    for p in pending:
        payload = (home.root / p["path"]).read_bytes()
        batches.append(Batch(source=p["source"], dataset=p["dataset"], name=p["name"], payload=payload,
                             format=p["format"], frame=parse_payload(payload, p["format"], p["name"], p["dataset"]),
                             landing_path=p["path"], since=p["since"]))
    for source in _sources(profile, config):
        for dataset in DATASETS:
            try:
                fetched = source.fetch(dataset, as_of, cursors.get((source.name, dataset)))
            except SourceUnavailable as exc:
                log.warning("source %s unavailable for %s: %s", source.name, dataset, exc)
                if run is not None:
                    run.source_failures.append((source.name, dataset, str(exc)))
                continue
            batches.extend(fetched)
            if run is not None:  # notes are read before duplicates are skipped: an unchanged final edition still counts
                for b in fetched:
                    for note in b.notes:
                        for status in ("ended", "stale", "partial"):
                            if note.startswith(f"source-{status}: "):
                                run.source_events.append(
                                    (source.name, dataset, status, note[len(f"source-{status}: "):]))
    return batches


@task(name="validate", cache_policy=NO_CACHE)
def validate(batches: list[Batch], config: Config, as_of: date) -> dict[int, object]:
    """Run each new parsed batch through its dataset's Great Expectations suite. Dates may run past
    the as-of date (a full-history file is normal; the run uses only what was public by then) but
    not past the day the run actually happens."""
    from expectations.runner import validate as run_suite

    not_after = datetime.now(timezone.utc).date() + timedelta(days=1)
    outcomes = {}
    for i, b in enumerate(batches):
        if b.frame is not None and b.landing_path is None:
            options = {"max_daily_move": config.validation.get("max_daily_move", 0.35)} if b.dataset == "prices" else {}
            outcomes[i] = run_suite(b.dataset, b.frame, max(as_of, not_after), **options)
    return outcomes


@task(name="load", cache_policy=NO_CACHE)
def load(home: Home, config: Config, run: RunResult, batches: list[Batch], outcomes: dict, started: datetime) -> None:
    """Quarantine rejected batches, land the rest and load raw → core → marts → meta in one transaction."""
    known_at = known_at_for(run.as_of if run.as_of < datetime.now(timezone.utc).date() else None)
    con = db.connect(home.warehouse)
    journal = None
    try:
        db.create_schema(con)
        con.execute("BEGIN TRANSACTION")
        run.known_at = known_at
        entries = apply_batches(con, home, config, run, batches, outcomes, started, known_at)
        finish_run(con, config, run, started)
        journal = write_journal(home, run.run_id, run.as_of, known_at, started, run.profile, entries)
        con.execute("COMMIT")
        run.snapshot = str(home.snapshot)
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception:
            pass
        if journal is not None:
            journal.unlink(missing_ok=True)
        raise
    finally:
        con.close()


def publish_changes(run: RunResult) -> dict | None:
    """What this run wrote, per published table, for an incremental publish (None: publish in full).

    Core tables of datasets the run loaded nothing into are unchanged; ``core.prices_daily`` (the
    big one) changed in the rows stamped with the run's ``known_at`` (by key: a merge replaces
    rows), and the tables that only ever gain rows (``db.INSERT_ONLY``: short interest, CPI, rates)
    gained exactly the rows with that stamp; the per-symbol price marts changed from
    ``mart_since`` on. Every other table is rewritten (small: the rest of core, the other marts,
    meta)."""
    from flows.marts import INCREMENTAL
    from warehouse.publish import UNCHANGED, Delta

    if run.known_at is None or not run.base_run_id:
        return None
    changes: dict = {}
    for dataset, table in db.CORE_TABLE.items():
        rep = run.datasets.get(dataset)
        if rep is None or not rep.batches:
            changes[f"core.{table}"] = UNCHANGED
    stamp = run.known_at.astimezone(timezone.utc).isoformat()
    if "core.prices_daily" not in changes:
        changes["core.prices_daily"] = Delta(where=f"known_at = TIMESTAMPTZ '{stamp}'", key=("symbol", "trade_date"))
    for dataset in db.INSERT_ONLY:
        name = f"core.{db.CORE_TABLE[dataset]}"
        if name not in changes:
            changes[name] = Delta(where=f"known_at = TIMESTAMPTZ '{stamp}'")
    if run.mart_since is not None:
        for mart, column in INCREMENTAL.items():
            changes[f"marts.{mart}"] = Delta(where=f"{column} >= DATE '{run.mart_since.isoformat()}'")
    return changes


@task(name="publish", cache_policy=NO_CACHE)
def publish_snapshot(home: Home, run: RunResult) -> dict:
    """Replace the read-only snapshot and the Parquet files atomically (incrementally on top of
    the previous run's publish when that is the base; see ``warehouse.publish``)."""
    manifest = publish(home.warehouse, home.published, run_id=run.run_id, as_of=run.as_of,
                       changes=publish_changes(run), base_run_id=run.base_run_id)
    run.publish_mode = f"{manifest.get('mode', 'full')}: {manifest.get('mode_reason', '')}".rstrip(": ")
    return manifest


@flow(name="nightly", log_prints=False)
def nightly(as_of: date | None = None, profile: str = "sample", home: str | None = None) -> RunResult:
    """One nightly run (contract §2 ``capspread run``). A day XNYS does not trade is skipped (exit 0);
    every run leaves its summary and scoreboard artifacts; a failure notifies."""
    where = Home.from_env(home)
    day = as_of or datetime.now(timezone.utc).date()
    if not is_session(day):
        why = f"a {day:%A}" if day.weekday() >= 5 else "an exchange holiday"
        result = RunResult(run_id=new_run_id(), as_of=day, profile=profile, status="skipped",
                           message=f"{day} is {why}, not an XNYS trading session: nothing to run")
        run_logger().warning(result.message)
        publish_run_artifacts(where, result)
        return result
    try:
        with warehouse_slot(), no_backfill_running(where):
            result = run_pipeline(as_of=day, profile=profile, home=where)
    except Exception as exc:
        report_failure("nightly", day, profile, exc)
        raise
    publish_run_artifacts(where, result)
    if result.exit_code == 3:
        report_quarantine(result)
    return result


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
            pending = pending_landed(con, as_of)
        finally:
            con.close()
        batches = collect(home, config, profile, as_of, cursors, pending, run)
        outcomes = validate(batches, config, as_of)
        load(home, config, run, batches, outcomes, started)
        # the run's Data Docs (Python, one thread) are rendered while the publish (DuckDB, every
        # core) writes the snapshot and the Parquet files: they touch different files and fields
        # of ``run``, and neither is ever needed by the other
        docs = threading.Thread(target=build_docs, args=(home, run), name="data-docs")
        docs.start()
        try:
            publish_snapshot(home, run)
        finally:
            docs.join()
    run.seconds = time.perf_counter() - t0
    return run
