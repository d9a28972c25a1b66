"""What a run leaves in Prefect, and who hears about a failure.

- a markdown artifact ``capspread-run-summary``: what loaded, what failed, warnings, source health;
- a table artifact ``capspread-scoreboard``: the scoreboard rows of the run's as-of date;
- a notification when a run fails or quarantines a batch, through a saved Prefect notification
  block (``CAPSPREAD_NOTIFY_BLOCK=<block-type-slug>/<name>``, e.g. ``slack-webhook/ops``) and/or a
  plain webhook (``CAPSPREAD_NOTIFY_WEBHOOK_URL``, JSON body, Slack-compatible ``text`` field).

Artifacts attach to the current flow run and are skipped outside one. Neither artifacts nor
notifications ever change a run's outcome: their own errors are logged and swallowed.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from capspread.config import Home

log = logging.getLogger("capspread")

SUMMARY_KEY = "capspread-run-summary"
SCOREBOARD_KEY = "capspread-scoreboard"
BACKFILL_KEY = "capspread-backfill"
BACKFILL_PROGRESS_KEY = "capspread-backfill-progress"

SCOREBOARD_COLUMNS = (
    "as_of_date", "symbol", "name", "role", "close", "wtd_return", "mtd_return", "ytd_return",
    "up_weeks_last_10", "pct_from_record_high", "wtd_rank",
)
MAX_LISTED = 20


def in_flow_run() -> bool:
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None


# --------------------------------------------------------------------------------------------
# reading the published snapshot


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def scoreboard_rows(snapshot: Path, as_of: date) -> list[dict[str, Any]]:
    """The scoreboard on the latest session on or before ``as_of``, best week-to-date first."""
    import duckdb

    if not Path(snapshot).exists():
        return []
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        rel = con.execute(
            f"SELECT {', '.join(SCOREBOARD_COLUMNS)} FROM marts.market_scoreboard "
            "WHERE as_of_date = (SELECT max(as_of_date) FROM marts.market_scoreboard WHERE as_of_date <= ?) "
            "ORDER BY wtd_rank NULLS LAST, wtd_return DESC NULLS LAST, symbol",
            [as_of],
        )
        columns = [d[0] for d in rel.description]
        return [{c: _plain(v) for c, v in zip(columns, row)} for row in rel.fetchall()]
    finally:
        con.close()


def source_health(snapshot: Path) -> list[tuple]:
    """(source, dataset, status, newest observation, days behind the as-of date) from ``meta.source_health``."""
    import duckdb

    if not Path(snapshot).exists():
        return []
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        return con.execute(
            "SELECT source, dataset, status, newest_observation, staleness_days FROM meta.source_health ORDER BY 1, 2"
        ).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# markdown


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.6g}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def run_markdown(result, health: list[tuple] | None = None, flow: str = "nightly") -> str:
    """The summary of one run: outcome, datasets, marts, warnings, quarantined batches, source health."""
    parts = [
        f"# capspread {flow} — as of {result.as_of}",
        f"**{result.status}** · exit {result.exit_code} · profile `{result.profile}` · run `{result.run_id}` · "
        f"{result.seconds:.1f} s",
    ]
    if result.message:
        parts.append(result.message)
    if result.status == "skipped":
        return "\n\n".join(parts) + "\n"
    reports = sorted(result.datasets.values(), key=lambda r: r.dataset)
    parts += ["## What loaded", _table(
        ["dataset", "batches", "rows", "core changed", "checks ok", "checks failed", "quarantined", "seen before"],
        [[r.dataset, r.batches, r.rows, r.core_changed, r.checks_passed, r.checks_failed, r.quarantined, r.duplicates]
         for r in reports],
    ) if reports else "Nothing new: every batch had been loaded before."]
    if result.marts:
        parts += ["## Marts", _table(["mart", "rows"], [[k, v] for k, v in result.marts.items()])]
    warnings = [(r.dataset, w) for r in reports for w in r.warnings]
    if warnings:
        parts += [f"## Warnings ({len(warnings)})",
                  "\n".join(f"- **{d}**: {w}" for d, w in warnings[:MAX_LISTED])
                  + (f"\n- … and {len(warnings) - MAX_LISTED} more in `meta.validations`" if len(warnings) > MAX_LISTED else "")]
    errors = [(r.dataset, e) for r in reports for e in r.errors]
    if errors:
        parts += [f"## Quarantined ({len(errors)})", "\n".join(f"- **{d}**: {e}" for d, e in errors[:MAX_LISTED])]
    if health:
        parts += ["## Source health", _table(
            ["source", "dataset", "status", "newest observation", "days behind"],
            [[s, d, st, n.isoformat() if n else None, days] for s, d, st, n, days in health],
        )]
    if result.published:
        parts.append(f"Published snapshot: `{result.snapshot}`")
    return "\n\n".join(parts) + "\n"


def failure_markdown(flow: str, as_of: date | None, profile: str, exc: BaseException) -> str:
    return (
        f"# capspread {flow} — as of {as_of or 'today'}\n\n"
        f"**failed** · profile `{profile}`\n\n"
        f"`{type(exc).__name__}: {exc}`\n\n"
        "Nothing of this run reached `published/`: the published snapshot is unchanged.\n"
    )


# --------------------------------------------------------------------------------------------
# artifacts


def _create_markdown(markdown: str, key: str, description: str) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=markdown, key=key, description=description)


def publish_markdown(markdown: str, key: str, description: str) -> None:
    """A markdown artifact on the current flow run (nothing outside one; errors logged)."""
    if not in_flow_run():
        return
    try:
        _create_markdown(markdown, key, description)
    except Exception as exc:
        log.warning("could not create the %s artifact: %s: %s", key, type(exc).__name__, exc)


def publish_run_artifacts(home: Home, result, flow: str = "nightly") -> None:
    """Summary and scoreboard artifacts of a finished (or skipped) run, attached to the flow run."""
    if not in_flow_run():
        return
    try:
        published = result.published and home.snapshot.exists()
        health = source_health(home.snapshot) if published else []
        _create_markdown(run_markdown(result, health, flow), SUMMARY_KEY, f"capspread {flow} as of {result.as_of}")
        if published:
            from prefect.artifacts import create_table_artifact

            rows = scoreboard_rows(home.snapshot, result.as_of)
            if rows:
                create_table_artifact(table=rows, key=SCOREBOARD_KEY,
                                      description=f"marts.market_scoreboard as of {rows[0]['as_of_date']}")
    except Exception as exc:  # an artifact never fails a run
        log.warning("could not create the run artifacts: %s: %s", type(exc).__name__, exc)


def publish_failure_artifact(flow: str, as_of: date | None, profile: str, exc: BaseException) -> None:
    if not in_flow_run():
        return
    try:
        _create_markdown(failure_markdown(flow, as_of, profile, exc), SUMMARY_KEY, f"capspread {flow} failed")
    except Exception as err:
        log.warning("could not create the failure artifact: %s: %s", type(err).__name__, err)


class ProgressArtifact:
    """A progress bar on the flow run page (no-op outside a flow run)."""

    def __init__(self, description: str) -> None:
        self.id = None
        if in_flow_run():
            try:
                from prefect.artifacts import create_progress_artifact

                self.id = create_progress_artifact(progress=0.0, key=BACKFILL_PROGRESS_KEY, description=description)
            except Exception as exc:
                log.warning("could not create the progress artifact: %s", exc)

    def update(self, done: int, total: int) -> None:
        if self.id is None:
            return
        try:
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(artifact_id=self.id, progress=100.0 * done / max(total, 1))
        except Exception as exc:
            log.warning("could not update the progress artifact: %s", exc)


# --------------------------------------------------------------------------------------------
# notifications


@dataclass
class Notice:
    flow: str
    status: str  # failed | quarantined
    as_of: date | None
    profile: str
    subject: str
    body: str

    def payload(self) -> dict[str, Any]:
        from prefect.runtime import flow_run

        return {
            "text": f"{self.subject}\n{self.body}",
            "subject": self.subject,
            "body": self.body,
            "flow": self.flow,
            "status": self.status,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "profile": self.profile,
            "flow_run_id": flow_run.get_id(),
            "flow_run_url": flow_run.get_flow_run_ui_url() if in_flow_run() else None,
        }


def notify(notice: Notice) -> list[str]:
    """Send ``notice`` to every configured channel; returns the channels that accepted it."""
    sent = []
    url = os.environ.get("CAPSPREAD_NOTIFY_WEBHOOK_URL")
    if url:
        try:
            import httpx

            httpx.post(url, json=notice.payload(), timeout=10.0,
                       headers={"user-agent": "capspread"}).raise_for_status()
            sent.append("webhook")
        except Exception as exc:
            log.warning("notification webhook failed: %s: %s", type(exc).__name__, exc)
    block = os.environ.get("CAPSPREAD_NOTIFY_BLOCK")
    if block:
        try:
            import prefect.blocks.notifications  # noqa: F401  (registers the notification block types)
            from prefect.blocks.core import Block

            Block.load(block).notify(notice.body, subject=notice.subject)
            sent.append(block)
        except Exception as exc:
            log.warning("notification block %s failed: %s: %s", block, type(exc).__name__, exc)
    return sent


def report_failure(flow: str, as_of: date | None, profile: str, exc: BaseException) -> None:
    """A failed run: failure artifact on the flow run, then a notification."""
    publish_failure_artifact(flow, as_of, profile, exc)
    notify(Notice(
        flow=flow, status="failed", as_of=as_of, profile=profile,
        subject=f"capspread {flow} as of {as_of or 'today'} failed",
        body=f"{type(exc).__name__}: {exc}\nThe published snapshot is unchanged.",
    ))


def report_quarantine(result, flow: str = "nightly") -> None:
    """A run that finished but quarantined batches (exit 3): the rest loaded; someone should look."""
    errors = [f"{r.dataset}: {e}" for r in result.datasets.values() for e in r.errors]
    if not errors:
        return
    notify(Notice(
        flow=flow, status="quarantined", as_of=result.as_of, profile=result.profile,
        subject=f"capspread {flow} as of {result.as_of}: {len(errors)} batch(es) quarantined",
        body="\n".join(errors[:MAX_LISTED]) + "\nThe other batches loaded and were published.",
    ))


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The flow run's logger (shown in the Prefect UI) inside a run, the ``capspread`` logger outside."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return log
