"""``capspread brief`` and ``capspread report`` (contract §2), registered on the main app."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from capspread.config import Home

err = Console(stderr=True)


class BriefFormat(str, Enum):
    text = "text"
    json = "json"


def _snapshot_or_exit(home: Home) -> None:
    if not home.snapshot.exists():
        err.print(f"[red]No published snapshot at {escape(str(home.snapshot))}. Run `capspread run` first.[/red]")
        raise typer.Exit(1)


def brief(
    as_of: Annotated[str | None, typer.Option("--as-of", help="The session to brief on (YYYY-MM-DD); default: the latest in the snapshot.")] = None,
    format: Annotated[BriefFormat, typer.Option("--format", "-f", help="text: sentences; json: the same facts as fields.")] = BriefFormat.text,
) -> None:
    """A short market brief in words, from the published marts."""
    from capspread.cli import _parse_date

    day = _parse_date(as_of)
    home = Home.from_env()
    _snapshot_or_exit(home)
    from capspread.brief import build_brief

    try:
        result = build_brief(home.snapshot, day)
    except Exception as exc:
        err.print(f"[red]capspread brief failed: {type(exc).__name__}: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    if format is BriefFormat.json:
        sys.stdout.write(result.to_json() + "\n")
        return
    sys.stdout.write(result.text() + "\n")
    for o in result.omitted:
        err.print(f"left out ({o['topic'].replace('_', ' ')}): {o['reason']}", style="dim", markup=False, highlight=False,
                  soft_wrap=True)


def report(
    as_of: Annotated[str | None, typer.Option("--as-of", help="The date of the report (YYYY-MM-DD); default: the latest session in the snapshot.")] = None,
) -> None:
    """An HTML report with charts (and a PNG of each chart) under reports/."""
    from capspread.cli import _parse_date

    day = _parse_date(as_of)
    home = Home.from_env()
    _snapshot_or_exit(home)
    from capspread.report import build_report

    try:
        result = build_report(home, day)
    except Exception as exc:
        err.print(f"[red]capspread report failed: {type(exc).__name__}: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    out = sys.stdout
    out.write(f"report: {result.html_path}\n")
    for p in result.png_paths:
        out.write(f"chart:  {p}\n")
    out.write("\n" + result.brief.text() + "\n")


def register(app: typer.Typer) -> None:
    """Add ``brief`` and ``report`` to the ``capspread`` app."""
    app.command("brief")(brief)
    app.command("report")(report)
