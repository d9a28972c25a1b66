"""Apply validated batches to the warehouse inside the run's transaction, and finish the run.

Shared by the nightly flow and by replay: the same merge rules, the same point-in-time windows.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from capspread.config import Config, Home
from flows.landing import landing_target, quarantine, write_landed
from sources.base import Batch
from transforms.pit import available_on
from warehouse import db


def usable_rows(batch: Batch, as_of: date, lags) -> tuple[pl.DataFrame, date | None, int]:
    """The rows of ``batch`` public in (since, as_of], the date its newest row becomes public and
    how many rows are held back for a later run."""
    avail = available_on(batch.dataset, lags)
    frame = batch.frame.with_columns(_avail=avail)
    newest = frame["_avail"].max() if frame.height else None
    window = pl.col("_avail") <= as_of
    if batch.since is not None:
        window = window & (pl.col("_avail") > batch.since)
    held = frame.filter(pl.col("_avail") > as_of).height
    return frame.filter(window).drop("_avail"), newest, held


def _validation_rows(run_id: str, batch: Batch, landing_file: str, outcome) -> pl.DataFrame:
    now = datetime.now(timezone.utc)
    return pl.DataFrame(
        [
            {
                "run_id": run_id, "dataset": batch.dataset, "landing_file": landing_file, "suite": batch.dataset,
                "expectation": c.expectation, "column_name": c.column, "severity": c.severity, "success": c.success,
                "element_count": c.element_count, "unexpected_count": c.unexpected_count,
                "unexpected_examples": json.dumps(c.examples, default=str) if c.examples else None,
                "validated_at": now,
            }
            for c in outcome.checks
        ],
        schema_overrides={"element_count": pl.Int64, "unexpected_count": pl.Int64,
                          "validated_at": pl.Datetime("us", "UTC"), "column_name": pl.String,
                          "unexpected_examples": pl.String},
    )


def _landing_row(b: Batch, path: str, run_id: str, status: str, through: date | None, newest: date | None) -> dict:
    return {
        "sha256": b.sha256, "source": b.source, "dataset": b.dataset, "path": path, "original_name": b.name,
        "format": b.format, "size_bytes": len(b.payload), "row_count": b.frame.height if b.frame is not None else None,
        "received_at": datetime.now(timezone.utc), "run_id": run_id, "status": status,
        "loaded_through": through, "newest_available": newest,
    }


def apply_batches(con, home: Home, config: Config, run, batches: list[Batch], outcomes: dict, started: datetime,
                  known_at: datetime, *, replay: bool = False) -> list[dict]:
    """Quarantine rejected batches, land the rest, load raw and merge core. Returns the run's journal
    entries (which landing file, which window of rows) so that replay can repeat it exactly. Each
    batch is released (``Batch.release``) once handled, so the load holds one batch's rows at a
    time; ``batches`` is spent afterwards. The landing files are written by a thread of their own
    while the rows load (``write_landed``; the file's name is known beforehand), all of them before
    this returns, so before the run commits: a write that fails fails the run. An inbox file is
    removed once every landing file is written (it may be the only copy until then)."""
    writes: list = []
    handled: list[str] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="landing") as writer:
        journal = _apply_batches(con, home, config, run, batches, outcomes, started, known_at, replay, writer, writes,
                                 handled)
    for w in writes:
        w.result()
    for path in handled:
        Path(path).unlink(missing_ok=True)
    return journal


def _apply_batches(con, home: Home, config: Config, run, batches: list[Batch], outcomes: dict, started: datetime,
                   known_at: datetime, replay: bool, writer: ThreadPoolExecutor, writes: list,
                   handled: list[str]) -> list[dict]:
    from flows.nightly import DatasetReport

    seen = db.seen_hashes(con)
    landing_rows, validation_rows, cursor_moves, journal = [], [], {}, []
    for i, b in enumerate(batches):
        rep = run.datasets.setdefault(b.dataset, DatasetReport(b.dataset))
        outcome = outcomes.get(i)
        if b.landing_path is None and not replay and b.sha256 in seen:
            rep.duplicates += 1
            if b.inbox_path:
                handled.append(b.inbox_path)
            b.release()
            continue
        reasons = [b.error.reason()] if b.error else [f"{c.severity}: {c.describe()}" for c in outcome.errors] if outcome else []
        if outcome is not None:
            rep.checks_passed += sum(c.success for c in outcome.checks)
            rep.checks_failed += sum(not c.success for c in outcome.checks)
            rep.warnings += [c.describe() for c in outcome.warnings]
        if reasons:
            target = quarantine(home, run.run_id, b, reasons)
            rep.quarantined += 1
            rep.errors += reasons
            run.quarantine_files.append(str(target))
            rel = str(target.relative_to(home.root))
            if outcome is not None:
                validation_rows.append(_validation_rows(run.run_id, b, rel, outcome))
                _docs(run, started, rel, outcome)
            landing_rows.append(_landing_row(b, rel, run.run_id, "quarantined", None, None))
            b.release()
            continue
        if b.landing_path is not None or replay:
            rel = b.landing_path
        else:
            target = landing_target(home, b)
            writes.append(writer.submit(write_landed, target, b.payload))
            rel = str(target.relative_to(home.root))
            seen.add(b.sha256)
            if outcome is not None:
                validation_rows.append(_validation_rows(run.run_id, b, rel, outcome))
                _docs(run, started, rel, outcome)
        rows, newest, held = usable_rows(b, run.as_of, config.publication_lag)
        through = max(run.as_of, b.since) if b.since else run.as_of
        if b.landing_path is None and not replay:
            landing_rows.append(_landing_row(b, rel, run.run_id, "loaded", through, newest))
        elif not replay:
            con.execute("UPDATE meta.landing_files SET loaded_through = ? WHERE path = ?", [through, rel])
        if held and b.source == "inbox" and not replay:
            rep.warnings.append(f"{b.name}: {held:,} rows become public after {run.as_of} and load with a later run")
        journal.append({"path": rel, "source": b.source, "dataset": b.dataset, "format": b.format, "name": b.name,
                        "since": b.since.isoformat() if b.since else None})
        if rows.height:
            rep.batches += 1
            rep.rows += db.insert_raw(con, b.dataset, rows, rel, run.run_id, started)
            core = db.conform_core(b.dataset, rows, b.source, known_at, config.publication_lag)
            rep.core_changed += db.load_core(con, b.dataset, core, config.source_priority)
        if b.cursor is not None:
            key = (b.source, b.dataset)
            cursor_moves[key] = max(cursor_moves.get(key, b.cursor), b.cursor)
        if b.inbox_path:
            handled.append(b.inbox_path)
        b.release()  # landed and loaded: its bytes and rows are no longer needed
    for (source, dataset), cursor in cursor_moves.items():
        db.upsert_load_state(con, source, dataset, cursor, run.run_id)
    for frame in validation_rows:
        db.append_meta(con, "validations", frame)
    if landing_rows:
        db.append_meta(con, "landing_files", pl.DataFrame(landing_rows, schema_overrides={
            "received_at": pl.Datetime("us", "UTC"), "size_bytes": pl.Int64, "row_count": pl.Int64,
            "loaded_through": pl.Date, "newest_available": pl.Date}))
    return journal


def _docs(run, started: datetime, landing_file: str, outcome) -> None:
    """Keep what Data Docs render for this run (built once the run has committed)."""
    from expectations.docs import DocsRecord

    run.docs_records.append(DocsRecord.from_outcome(run.run_id, started, landing_file, outcome))


def build_docs(home: Home, run) -> None:
    """Render this run's validation results into ``docs/`` (offline HTML). A failure here is
    reported, never fails the run: the data is already committed."""
    if not run.docs_records:
        return
    from expectations.docs import build_data_docs

    try:
        run.docs_index = str(build_data_docs(home.docs, run.docs_records))
    except Exception as exc:  # pragma: no cover - reported, not raised
        run.health_notes.append(f"Data Docs were not rebuilt: {type(exc).__name__}: {exc}")


def pending_landed(con, as_of: date) -> list[dict]:
    """Landed inbox files with rows that had not become public by an earlier run's as-of date."""
    rows = con.execute(
        "SELECT path, source, dataset, format, original_name, loaded_through FROM meta.landing_files "
        "WHERE status = 'loaded' AND source = 'inbox' AND newest_available > loaded_through AND loaded_through < ?",
        [as_of],
    ).fetchall()
    return [dict(zip(("path", "source", "dataset", "format", "name", "since"), r)) for r in rows]


class MartRuleBroken(RuntimeError):
    """A mart broke an ``error`` business rule: the run publishes nothing."""


def check_marts(con, config: Config, run, marts: dict[str, pl.DataFrame], part: str = "",
                symbols: list[str] | None = None) -> None:
    """Run every mart suite; record results in meta.validations; raise on an ``error`` failure.
    ``part`` names a part of the symbols when a mart is built in parts (e.g. ``symbols 2/6``) and
    ``symbols`` the symbols that part was built for."""
    from expectations.marts import SUITES
    from expectations.runner import validate_mart

    board = marts.get("market_scoreboard")
    latest = board["as_of_date"].max() if board is not None and board.height else None
    configured = {s.symbol for s in config.universe}
    if symbols is not None:
        configured &= set(symbols)
    with_prices = sorted(
        configured & {r[0] for r in con.execute(
            "SELECT DISTINCT symbol FROM core.prices_daily WHERE trade_date = ?", [latest]).fetchall()}
    ) if latest else []
    broken = []
    for name, frame in marts.items():
        if name not in SUITES:
            continue
        options = {"symbols_with_prices": with_prices} if name == "market_scoreboard" else {}
        outcome = validate_mart(name, frame, **options)
        run.mart_outcomes.append(outcome)
        label = f"marts.{name}" + (f" ({part})" if part else "")
        _docs(run, datetime.now(timezone.utc), label, outcome)
        fake = Batch(source="marts", dataset=f"marts.{name}", name=name, payload=b"", format="table")
        db.append_meta(con, "validations", _validation_rows(run.run_id, fake, label, outcome))
        broken += [f"marts.{name}: {c.describe()}" for c in outcome.errors]
    if broken:
        raise MartRuleBroken("a mart broke its business rules; nothing was published: " + "; ".join(broken))


# an incremental mart build reaches back at most this many years before the as-of date
INCREMENTAL_MAX_YEARS = 2


def _last_published_as_of(con) -> date | None:
    """The as-of date of the last run that published (the marts were built as of it)."""
    last = con.execute(
        "SELECT as_of_date FROM meta.runs WHERE published ORDER BY finished_at DESC LIMIT 1").fetchall()
    return last[0][0] if last else None


def _first_changed(con, run, previous: date, dataset: str, column: str) -> tuple[date | None, date | None]:
    """The first ``column`` day of the rows of ``dataset`` the run loaded into raw, and of the core
    rows that became public since ``previous`` (None where there are none)."""
    return con.execute(
        f"SELECT (SELECT min({column}) FROM raw.{dataset} WHERE _run_id = $run), "
        f"(SELECT min({column}) FROM core.{db.CORE_TABLE[dataset]} WHERE available_on > $previous "
        "AND available_on <= $as_of)", {"run": run.run_id, "previous": previous, "as_of": run.as_of}).fetchall()[0]


def mart_since(con, config: Config, run, flow: str = "nightly") -> tuple[date | None, str]:
    """The first day whose per-symbol price marts this run must rebuild, or None for a full build
    (and why): the earliest day of a price row this run loaded or made public, as long as the marts
    were last built by a run of an earlier or the same as-of date with the same universe."""
    if os.environ.get("CAPSPREAD_FULL_MARTS", "").strip() not in ("", "0"):
        return None, "full: CAPSPREAD_FULL_MARTS is set"
    if flow == "replay":
        return None, "full: replay rebuilds from the landing zone"
    previous = _last_published_as_of(con)
    if previous is None:
        return None, "full: first build"
    if previous > run.as_of:
        return None, f"full: the marts were built as of a later day ({previous})"
    names = {s.symbol: (s.name, s.role) for s in config.universe}
    shown = con.execute(
        "SELECT DISTINCT symbol, name, role FROM marts.market_scoreboard "
        "WHERE as_of_date = (SELECT max(as_of_date) FROM marts.market_scoreboard)").fetchall()
    if any(names.get(sym, (None, None)) != (name, role) for sym, name, role in shown):
        return None, "full: the configured universe changed"
    since = min(d for d in (*_first_changed(con, run, previous, "prices", "trade_date"), previous + timedelta(days=1))
                if d is not None)
    if since < date(run.as_of.year - INCREMENTAL_MAX_YEARS, 1, 1):
        return None, f"full: rows from {since} changed"
    return since, f"incremental: from {since}"


def short_interest_since(con, config: Config, run, since: date | None) -> tuple[date | None, str]:
    """The first settlement date whose ``marts.short_interest_by_bucket`` rows this run must
    rebuild, or None for a full build (and why). Incremental only when the per-symbol marts are
    (``mart_since``: the same or a later as-of date, not a replay), the bucket funds are the ones
    the mart was built with (kept in ``internal.mart_inputs``), and no holdings row was loaded or
    became public since the last run (a new snapshot can change the members of earlier dates);
    then from the earliest settlement date of a short-interest row the run loaded or made public
    (the day after ``as_of`` when none: nothing to rebuild)."""
    funds = json.dumps(list(config.bucket_funds.items()))
    built_with = con.execute("SELECT value FROM internal.mart_inputs WHERE name = 'bucket_funds'").fetchall()
    con.execute("DELETE FROM internal.mart_inputs WHERE name = 'bucket_funds'")
    con.execute("INSERT INTO internal.mart_inputs VALUES ('bucket_funds', ?)", [funds])
    if since is None:
        return None, "full: the marts are built in full"
    if not built_with or built_with[0][0] != funds:
        return None, "full: the bucket funds are not the ones the mart was built with"
    previous = _last_published_as_of(con)  # not None: ``since`` is
    if any(d is not None for d in _first_changed(con, run, previous, "holdings", "as_of_date")):
        return None, "full: holdings changed"
    firsts = _first_changed(con, run, previous, "short_interest", "settlement_date")
    first = min([d for d in firsts if d is not None], default=run.as_of + timedelta(days=1))
    return first, f"incremental: from {first}"


# measured on the 25-year SYNTHETIC backfill of 3,000 symbols (one run each): 500 symbols a part
# 100.7 / 98.2 s and a peak RSS of 3.86 / 3.83 GiB, 400: 98.3 s and 3.41 GiB, 300: 98.5 s and 3.05 GiB
DEFAULT_CHUNK_SYMBOLS = 300
INCREMENTAL_PART_FACTOR = 10


def _chunk_symbols() -> int:
    raw = os.environ.get("CAPSPREAD_MART_CHUNK_SYMBOLS", "").strip()
    try:
        return int(raw) if raw else DEFAULT_CHUNK_SYMBOLS
    except ValueError as exc:
        raise ValueError(f"CAPSPREAD_MART_CHUNK_SYMBOLS={raw!r} is not a whole number of symbols") from exc


def finish_run(con, config: Config, run, started: datetime, flow: str = "nightly") -> None:
    """Marts as of the run's date (checked by their suites), source health and the meta.runs row
    (inside the transaction). The per-symbol price marts are rebuilt from the first day the run
    changed when they can be (``mart_since``, ``flows.marts``), else in full, and in parts of
    ``CAPSPREAD_MART_CHUNK_SYMBOLS`` symbols (default 300), so that memory does not grow with the
    universe."""
    from flows.marts import INCREMENTAL, carries, other_marts, symbol_chunks, symbol_marts

    last = con.execute("SELECT run_id FROM meta.runs WHERE published ORDER BY finished_at DESC LIMIT 1").fetchall()
    if hasattr(run, "base_run_id"):
        run.base_run_id = last[0][0] if last else None
    since, run.mart_mode = mart_since(con, config, run, flow)
    run.mart_since = since
    si_since, si_mode = short_interest_since(con, config, run, since)
    run.mart_mode += f"; short interest by bucket {si_mode}"
    marts = other_marts(con, config, run.as_of, si_since)
    check_marts(con, config, run, marts)
    for name, frame in marts.items():
        run.marts[name] = db.replace_mart(con, name, frame)
    carried = carries(con, since)
    for name, column in INCREMENTAL.items():
        con.execute(f"DELETE FROM marts.{name}" + (f" WHERE {column} >= ?" if since else ""),
                    [since] if since else [])
    # an incremental build reads about two years a symbol instead of all of them: larger parts
    chunks = symbol_chunks(con, config, run.as_of, since, _chunk_symbols() * (INCREMENTAL_PART_FACTOR if since else 1))
    for i, symbols in enumerate(chunks):
        part = symbol_marts(con, config, run.as_of, since, symbols, carried)
        check_marts(con, config, run, part, f"symbols {i + 1}/{len(chunks)}" if len(chunks) > 1 else "", symbols)
        for name, frame in part.items():
            db.insert_mart(con, name, frame)
    for name in INCREMENTAL:  # the table's size, as for the other marts (a run may rebuild only its newest days)
        run.marts[name] = con.execute(f"SELECT count(*) FROM marts.{name}").fetchall()[0][0]
    source_health(con, run)
    quarantined = sum(r.quarantined for r in run.datasets.values())
    run.exit_code = 3 if quarantined else 0
    run.status = "quarantined" if quarantined else "success"
    run.published = True
    con.execute(
        "INSERT INTO meta.runs VALUES (?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id, flow, run.profile, run.as_of, started, run.status, run.exit_code,
            sum(r.batches for r in run.datasets.values()), quarantined,
            sum(r.rows for r in run.datasets.values()), run.published, run.message or None,
        ],
    )


from flows.health import source_health  # noqa: E402,F401  (moved; importable from here as before)
