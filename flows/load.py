"""Apply validated batches to the warehouse inside the run's transaction, and finish the run.

Shared by the nightly flow and by replay: the same merge rules, the same point-in-time windows.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl

from capspread.config import Config, Home
from flows.landing import land, quarantine
from flows.marts import build_marts
from sources.base import Batch
from sources.schemas import DATASETS, DATE_COLUMN
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
    entries (which landing file, which window of rows) so that replay can repeat it exactly."""
    from flows.nightly import DatasetReport

    seen = db.seen_hashes(con)
    landing_rows, validation_rows, cursor_moves, journal = [], [], {}, []
    for i, b in enumerate(batches):
        rep = run.datasets.setdefault(b.dataset, DatasetReport(b.dataset))
        outcome = outcomes.get(i)
        if b.landing_path is None and not replay and b.sha256 in seen:
            rep.duplicates += 1
            if b.inbox_path:
                Path(b.inbox_path).unlink(missing_ok=True)
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
            continue
        if b.landing_path is not None or replay:
            rel = b.landing_path
        else:
            rel = str(land(home, b).relative_to(home.root))
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
            core = db.prefer_sources(con, b.dataset, core, config.source_priority)
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


def check_marts(con, config: Config, run, marts: dict[str, pl.DataFrame]) -> None:
    """Run every mart suite; record results in meta.validations; raise on an ``error`` failure."""
    from expectations.marts import SUITES
    from expectations.runner import validate_mart

    board = marts.get("market_scoreboard")
    latest = board["as_of_date"].max() if board is not None and board.height else None
    configured = {s.symbol for s in config.universe}
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
        _docs(run, datetime.now(timezone.utc), f"marts.{name}", outcome)
        fake = Batch(source="marts", dataset=f"marts.{name}", name=name, payload=b"", format="table")
        db.append_meta(con, "validations", _validation_rows(run.run_id, fake, f"marts.{name}", outcome))
        broken += [f"marts.{name}: {c.describe()}" for c in outcome.errors]
    if broken:
        raise MartRuleBroken("a mart broke its business rules; nothing was published: " + "; ".join(broken))


def extra_marts(con, as_of: date, marts: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Marts built beside ``flows.marts.build_marts``: the rates backdrop next to the inflation regime."""
    from transforms.rates import rate_backdrop

    inflation = marts.get("inflation_monthly")
    frame = rate_backdrop(db.read_core(con, "rates", as_of), inflation.lazy() if inflation is not None else None, as_of)
    return {"rate_backdrop": frame.collect()}


def finish_run(con, config: Config, run, started: datetime, flow: str = "nightly") -> None:
    """Marts as of the run's date (checked by their suites), source health and the meta.runs row
    (inside the transaction)."""
    marts = build_marts(con, config, run.as_of)
    marts.update(extra_marts(con, run.as_of, marts))
    check_marts(con, config, run, marts)
    for name, frame in marts.items():
        run.marts[name] = db.replace_mart(con, name, frame)
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


# days between observations plus publication lag before a series counts as stale
CADENCE_DAYS = {"prices": 4, "short_interest": 25, "cpi": 75, "estimates": 100, "holdings": 10, "factors": 75,
                "company_estimates": 4, "rates": 7}
EVENT_RANK = {"partial": 1, "stale": 2, "ended": 3}
EVENT_WORDS = {"ended": "has ended", "stale": "is stale", "partial": "was fetched only in part"}


def source_health(con, run) -> None:
    """Per source and dataset: newest observation against the expected cadence (stale is flagged),
    rows held, FINRA sentinels at the newest settlement; and cross-source disagreements. Rows are
    counted as of the run's date (``db.core_as_of_sql``: one short-interest vintage per key)."""
    rows = []
    for dataset in DATASETS:
        column = DATE_COLUMN[dataset]
        sentinel = ("count(*) FILTER (WHERE days_to_cover IS NULL AND avg_daily_volume IS NOT NULL "
                    f"AND {column} = max_date)") if dataset == "short_interest" else "NULL"
        for source, newest, held, sentinels in con.execute(
            f"SELECT source, max({column}), count(*), {sentinel} FROM ("
            f"  SELECT *, max({column}) OVER (PARTITION BY source) AS max_date FROM ({db.core_as_of_sql(dataset)})"
            ") GROUP BY source", {"as_of": run.as_of}
        ).fetchall():
            stale = (run.as_of - newest).days if newest else None
            expected = CADENCE_DAYS[dataset]
            status = "stale" if stale is not None and stale > expected else "ok"
            message = f"newest observation {newest}"
            if status == "stale":
                message += f", {stale} days before {run.as_of} (expected every {expected} days or less)"
                run.health_notes.append(f"{source}/{dataset} is stale: {message}")
            if sentinels:
                message += f"; {sentinels} FINRA 999.99 sentinels at the newest settlement (stored as NULL)"
            rows.append((source, dataset, status, newest, stale, message, expected, sentinels, held))
    previous = {(r[0], r[1]): r[2] for r in con.execute(
        "SELECT source, dataset, last_success_at FROM meta.source_health").fetchall()}
    failed = {(s, d): why for s, d, why in getattr(run, "source_failures", [])}
    events: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for s, d, st, why in getattr(run, "source_events", []):
        events.setdefault((s, d), []).append((st, why))
    con.execute("DELETE FROM meta.source_health")
    for (s, d), said in events.items():
        if not any(r[0] == s and r[1] == d for r in rows):
            rows.append((s, d, "ok", None, None, "", CADENCE_DAYS[d], None, 0))
        for st, why in said:
            run.health_notes.append(f"{s}/{d} {EVENT_WORDS[st]}: {why}")
    for (source, dataset), why in failed.items():
        if not any(r[0] == source and r[1] == dataset for r in rows):
            rows.append((source, dataset, "failed", None, None, "", CADENCE_DAYS[dataset], None, 0))
        run.health_notes.append(f"{source}/{dataset} could not be fetched: {why}")
    for source, dataset, status, newest, stale, message, expected, sentinels, held in rows:
        last_success = None if (source, dataset) in failed else "now"
        if (source, dataset) in failed:
            status = "failed"
            message = f"fetch failed: {failed[(source, dataset)]}" + (f"; {message}" if message else "")
        elif (source, dataset) in events:
            said = sorted(events[(source, dataset)], key=lambda e: EVENT_RANK[e[0]])
            if said[-1][0] in ("ended", "stale"):
                status = said[-1][0]
            message = "; ".join(f"{st}: {w}" for st, w in said) + (f"; {message}" if message else "")
        con.execute(
            "INSERT INTO meta.source_health BY NAME SELECT ? AS source, ? AS dataset, ? AS status, "
            "CASE WHEN ? THEN now() ELSE ?::TIMESTAMPTZ END AS last_success_at, ? AS newest_observation, "
            "? AS staleness_days, ? AS message, now() AS checked_at, ? AS run_id, ? AS expected_every_days, "
            "? AS sentinel_count, ? AS rows_held",
            [source, dataset, status, last_success is not None, previous.get((source, dataset)), newest, stale,
             message, run.run_id, expected, sentinels, held],
        )
    con.execute(db.sql_file("meta_source_disagreements.sql"), {"as_of": run.as_of, "run_id": run.run_id})
    found = con.execute("SELECT count(*), count(DISTINCT symbol) FROM meta.source_disagreements").fetchall()[0]
    if found[0]:
        run.health_notes.append(
            f"{found[0]} days where two sources disagree on a close by more than a cent "
            f"({found[1]} symbols): see meta.source_disagreements")
