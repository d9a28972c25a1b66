"""Backfill: the nightly run for every XNYS session of a range, in date order, one month per chunk.

Each day runs as of its own evening (``run_pipeline(as_of=day)``), so the history loads with the
point-in-time rules: nothing dated after a day is used for that day, and rows are stamped known on
it. All days run in one process (the imports are paid once).

Progress is saved after every day to ``<CAPSPREAD_HOME>/backfill/<profile>_<start>_<end>.json``
(written atomically). Run the same backfill again after a crash and it resumes where it stopped:
finished chunks and days are not run again. ``restart=True`` forgets the saved progress.

The backfill holds the warehouse for its whole range (``flows.deploy.backfill_running``): no other
run lands between two of its days. If the warehouse had already run as of a date after the range,
the marts are rebuilt as of that date at the end, so a backfill of old history never leaves the
marts behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from itertools import groupby
from pathlib import Path

from prefect import flow

from capspread.config import Config, Home
from flows.artifacts import (
    BACKFILL_KEY,
    Notice,
    ProgressArtifact,
    notify,
    publish_markdown,
    publish_run_artifacts,
    report_failure,
    run_logger,
)
from flows.deploy import backfill_running, warehouse_slot
from flows.nightly import RunResult, exclusive, run_pipeline

# on_progress(done, total, label): sessions done so far (resumed ones included), all sessions, what runs now
Progress = Callable[[int, int, str], None]


@dataclass
class DayOutcome:
    day: str
    status: str
    exit_code: int
    run_id: str
    seconds: float


@dataclass
class BackfillState:
    """What is saved between attempts."""

    start: str
    end: str
    profile: str
    status: str = "running"  # running | stopped | complete
    chunks_done: list[str] = field(default_factory=list)
    days: dict[str, DayOutcome] = field(default_factory=dict)
    attempts: int = 0
    stopped_at: str | None = None
    error: str | None = None
    updated_at: str | None = None

    @classmethod
    def load(cls, path: Path) -> "BackfillState | None":
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        raw["days"] = {d: DayOutcome(**o) for d, o in raw.get("days", {}).items()}
        return cls(**raw)

    def save(self, path: Path) -> None:
        self.updated_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n")
        os.replace(tmp, path)


@dataclass
class BackfillResult:
    start: date
    end: date
    profile: str
    state_file: str
    sessions: int = 0
    chunks: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)  # days run by this attempt
    resumed: list[str] = field(default_factory=list)  # days finished by an earlier attempt
    quarantined: list[str] = field(default_factory=list)
    caught_up: str | None = None  # later as-of date the marts were rebuilt for
    last: RunResult | None = None
    exit_code: int = 0
    status: str = "success"
    message: str = ""


def chunk_name(day: date) -> str:
    return f"{day:%Y-%m}"


def state_path(home: Home, profile: str, start: date, end: date) -> Path:
    return home.root / "backfill" / f"{profile}_{start}_{end}.json"


def session_chunks(start: date, end: date) -> list[tuple[str, list[date]]]:
    """XNYS sessions of ``[start, end]`` grouped by calendar month, in date order."""
    from transforms.calendar import sessions

    days = sessions(start, end)["trade_date"].to_list()
    return [(name, list(group)) for name, group in groupby(days, key=chunk_name)]


def _latest_as_of(home: Home) -> date | None:
    """The latest as-of date the warehouse has finished a run for (None on a new warehouse)."""
    import duckdb

    if not home.warehouse.exists():
        return None
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = 'runs'").fetchone()[0]:
            return None
        return con.execute("SELECT max(as_of_date) FROM meta.runs WHERE exit_code IN (0, 3)").fetchone()[0]
    finally:
        con.close()


def run_backfill(
    start: date,
    end: date,
    profile: str,
    home: Home,
    *,
    restart: bool = False,
    on_progress: Progress | None = None,
    run_day: Callable[..., RunResult] = run_pipeline,
    config: Config | None = None,
) -> BackfillResult:
    """Run every session of ``[start, end]`` not done by an earlier attempt; see the module docstring."""
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    today = datetime.now(timezone.utc).date()
    if end > today:
        raise ValueError(f"end {end} is in the future (today is {today}); a backfill loads the past")
    config = config or Config.load()
    home.ensure()
    path = state_path(home, profile, start, end)
    result = BackfillResult(start=start, end=end, profile=profile, state_file=str(path))
    chunks = session_chunks(start, end)
    result.chunks = [name for name, _ in chunks]
    result.sessions = total = sum(len(days) for _, days in chunks)
    progress = on_progress or (lambda done, total, label: None)
    logger = run_logger()

    with backfill_running(home):
        artifact = ProgressArtifact(f"backfill {start} → {end}")
        state = None if restart else BackfillState.load(path)
        if state is None:
            state = BackfillState(start=start.isoformat(), end=end.isoformat(), profile=profile)
        state.attempts += 1
        state.status, state.stopped_at, state.error = "running", None, None
        state.save(path)
        with exclusive(home):
            latest_before = _latest_as_of(home)
        done = sum(1 for _, days in chunks for d in days if d.isoformat() in state.days)
        result.resumed = sorted(state.days)
        if done:
            logger.warning("resuming the backfill %s → %s: %d of %d sessions were done by an earlier attempt",
                           start, end, done, total)
        progress(done, total, "resuming" if done else "starting")
        for name, days in chunks:
            if name in state.chunks_done:
                continue
            for day in days:
                key = day.isoformat()
                if key in state.days:
                    continue
                progress(done, total, f"{name}: {key}")
                try:
                    run = run_day(as_of=day, profile=profile, home=home, config=config)
                except BaseException as exc:
                    state.status, state.stopped_at = "stopped", key
                    state.error = f"{type(exc).__name__}: {exc}"
                    state.save(path)
                    raise
                state.days[key] = DayOutcome(key, run.status, run.exit_code, run.run_id, round(run.seconds, 2))
                state.save(path)
                result.ran.append(key)
                result.last = run
                if run.exit_code == 3:
                    result.quarantined.append(key)
                done += 1
                progress(done, total, f"{name}: {key}")
                artifact.update(done, total)
            state.chunks_done.append(name)
            state.save(path)
        if latest_before and latest_before > end:
            # the warehouse had been run for a later date: bring the marts back to it
            progress(done, total, f"marts as of {latest_before}")
            result.last = run_day(as_of=latest_before, profile=profile, home=home, config=config)
            result.caught_up = latest_before.isoformat()
        state.status = "complete"
        state.save(path)
    result.quarantined = sorted({*result.quarantined, *(d for d, o in state.days.items() if o.exit_code == 3)})
    result.exit_code = 3 if result.quarantined else 0
    result.status = "quarantined" if result.quarantined else "success"
    result.message = (
        f"backfill {start} → {end}: {total} sessions in {len(chunks)} chunk(s); ran {len(result.ran)}, "
        f"{len(result.resumed)} done by an earlier attempt"
        + (f"; {len(result.quarantined)} with quarantined batches" if result.quarantined else "")
        + (f"; marts rebuilt as of {result.caught_up}, the warehouse's latest date" if result.caught_up else "")
    )
    progress(total, total, "done")
    return result


def backfill_markdown(result: BackfillResult, state: BackfillState | None) -> str:
    """The backfill's summary artifact: outcome and one line per chunk."""
    days = state.days if state else {}
    rows = []
    for name in result.chunks:
        mine = [d for d in days if d.startswith(name)]
        rows.append(f"| {name} | {len(mine)} | {sum(d in result.ran for d in mine)} | "
                    f"{sum(d in result.resumed for d in mine)} | {sum(d in result.quarantined for d in mine)} |")
    return "\n\n".join([
        f"# capspread backfill — {result.start} → {result.end}",
        f"**{result.status}** · exit {result.exit_code} · profile `{result.profile}`",
        result.message,
        "\n".join(["| chunk | sessions done | ran now | done before | quarantined |", "|---|---|---|---|---|", *rows]),
        f"Progress file: `{result.state_file}`",
    ]) + "\n"


_listeners: list[Progress] = []


def add_progress_listener(listener: Progress) -> None:
    """Show progress of backfills run in this process (the command line's progress bar)."""
    _listeners.append(listener)


def remove_progress_listener(listener: Progress) -> None:
    _listeners.remove(listener)


def _tell_listeners(done: int, total: int, label: str) -> None:
    for listener in list(_listeners):
        listener(done, total, label)


@flow(name="backfill", log_prints=False)
def backfill(start: date, end: date, profile: str = "sample", home: str | None = None,
             restart: bool = False) -> BackfillResult:
    """The nightly run for every XNYS session from ``start`` to ``end``, chunked by month, resumable."""
    where = Home.from_env(home)
    try:
        with warehouse_slot():
            result = run_backfill(start, end, profile, where, restart=restart, on_progress=_tell_listeners)
    except Exception as exc:
        report_failure("backfill", end, profile, exc)
        raise
    if result.last is not None:
        publish_run_artifacts(where, result.last, flow="backfill")
    publish_markdown(backfill_markdown(result, BackfillState.load(Path(result.state_file))), BACKFILL_KEY,
                     f"capspread backfill {start} → {end}")
    if result.quarantined:
        notify(Notice(
            flow="backfill", status="quarantined", as_of=end, profile=profile,
            subject=f"capspread backfill {start} → {end}: {len(result.quarantined)} day(s) quarantined batches",
            body="days: " + ", ".join(result.quarantined) + "\nSee quarantine/ and meta.validations; the rest loaded.",
        ))
    return result
