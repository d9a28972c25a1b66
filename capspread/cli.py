"""The ``capspread`` command line (contract §2)."""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from capspread.config import Home

app = typer.Typer(add_completion=False, no_args_is_help=True, help="capspread: are small caps beating large caps, and why?")
err = Console(stderr=True)
out = Console()


def _prefect_env(home: Home) -> None:
    """Prefect runs in ephemeral mode, offline and silent unless the user configured otherwise."""
    prefect_home = Path(os.environ.setdefault("PREFECT_HOME", str(home.root / ".prefect")))
    prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")


class Profile(str, Enum):
    sample = "sample"
    live = "live"


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _parse_date(value: str | None, option: str = "--as-of") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; expected YYYY-MM-DD", param_hint=option) from None


def _today() -> date:
    """Today's date where it is latest: the machine's or UTC's, whichever is later."""
    return max(date.today(), datetime.now(timezone.utc).date())


def _check_as_of(day: date) -> None:
    """A run's --as-of must be an evening the pipeline can be run on: not in the future (``_today``),
    and not before the first session of the XNYS calendar."""
    from transforms.calendar import bounds

    today = _today()
    if day > today:
        raise typer.BadParameter(f"{day} is in the future (today is {today}); a run sees what was public "
                                 "by the evening of its date", param_hint="--as-of")
    first = bounds()[0]
    if day < first:
        raise typer.BadParameter(f"{day} is before {first}, the first session of the XNYS calendar the "
                                 "pipeline works on", param_hint="--as-of")


@app.command()
def run(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run as if it were the evening of this date (YYYY-MM-DD).")] = None,
    profile: Annotated[Profile, typer.Option(help="sample: the embedded real-data sample; live: the live sources.")] = Profile.sample,
) -> None:
    """One nightly run: inbox + sources → land → validate → transform → load → publish."""
    day = _parse_date(as_of)
    if day is not None:
        _check_as_of(day)
    home = Home.from_env()
    _prefect_env(home)
    from capspread.summary import print_summary
    from flows.nightly import RunLocked, nightly

    try:
        result = nightly(as_of=day, profile=profile.value, home=str(home.root))
    except RunLocked as exc:
        err.print(f"[red]capspread run: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except Exception as exc:  # a failed run: nothing of it reached published/
        err.print(f"[red]capspread run failed: {type(exc).__name__}: {escape(str(exc))}[/red]")
        err.print("The published snapshot is unchanged.")
        raise typer.Exit(1) from None
    print_summary(result, home, out)
    raise typer.Exit(result.exit_code)


@app.command()
def replay(
    dataset: Annotated[str | None, typer.Option(help="Rebuild only this dataset (prices, cpi, ...).")] = None,
) -> None:
    """Rebuild raw → core → marts from landing/ alone (no network), then publish."""
    from sources.schemas import DATASETS

    if dataset is not None and dataset not in DATASETS:
        raise typer.BadParameter(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}",
                                 param_hint="--dataset")
    home = Home.from_env()
    _prefect_env(home)
    from capspread.summary import print_summary
    from flows.nightly import RunLocked
    from flows.replay import replay_flow

    try:
        result = replay_flow(dataset=dataset, home=str(home.root))
    except (ValueError, FileNotFoundError) as exc:
        err.print(f"[red]capspread replay: {escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    except RunLocked as exc:
        err.print(f"[red]capspread replay: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except Exception as exc:
        err.print(f"[red]capspread replay failed: {type(exc).__name__}: {escape(str(exc))}[/red]")
        err.print("The published snapshot is unchanged.")
        raise typer.Exit(1) from None
    print_summary(result, home, out)
    raise typer.Exit(result.exit_code)


def _snapshot(home: Home) -> Path:
    path = home.snapshot
    if not path.exists():
        err.print(f"[red]No published snapshot at {escape(str(path))}. Run `capspread run` first.[/red]")
        raise typer.Exit(1)
    return path


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format; csv and json print only the result.")] = Format.table,
) -> None:
    """Run a read-only query on the published snapshot (a statement that writes is refused)."""
    from warehouse.query import QueryRefused, run_query

    snapshot = _snapshot(Home.from_env())
    try:
        columns, rows = run_query(snapshot, query)
    except QueryRefused as exc:
        err.print(f"capspread sql: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        err.print(f"capspread sql: query failed: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    _emit(columns, rows, format)


def _emit(columns: list[str], rows: list[tuple], format: Format) -> None:
    """The result on standard output, header first; nothing else goes there."""
    from warehouse.query import csv_cell, json_ready, unique_names

    if format is Format.csv:
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        w.writerows([csv_cell(v) for v in r] for r in rows)
    elif format is Format.json:
        keys = unique_names(columns)
        records = [{k: json_ready(v) for k, v in zip(keys, r)} for r in rows]
        sys.stdout.write(json.dumps(records, default=_json_default, indent=1, allow_nan=False) + "\n")
    else:
        from rich.text import Text

        cells = [["" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in r] for r in rows]
        t = Table(show_lines=False)
        for c in columns:
            t.add_column(Text(c), no_wrap=True)
        for r in cells:
            t.add_row(*(Text(v) for v in r))
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        # as wide as the result needs, like psql: rows are never folded into unreadable columns
        Console(width=max(80, sum(widths) + 3 * len(widths) + 1)).print(t)


def _json_default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


@app.command()
def tables(
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """List the published tables with their row counts and comments."""
    from warehouse.query import catalogue

    columns, rows = catalogue(_snapshot(Home.from_env()))
    _emit(columns, rows, format)


@app.command()
def describe(
    table: Annotated[str, typer.Argument(help="schema.table, e.g. marts.market_scoreboard")],
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format; csv and json print only the columns.")] = Format.table,
) -> None:
    """Columns, types and comments of one published table."""
    from warehouse.query import describe_table

    try:
        comment, columns, rows = describe_table(_snapshot(Home.from_env()), table)
    except KeyError:
        err.print(f"no table {table!r} in the published snapshot; see `capspread tables`",
                  style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if format is Format.table:
        from rich.text import Text

        out.print(Text.assemble((table, "bold"), f": {comment or ''}"), soft_wrap=True)
    _emit(columns, rows, format)


def _register_extensions() -> None:
    """Commands that live in their own modules (each defines ``register(app)``)."""
    import importlib

    for name in ("capspread.cli_reporting", "capspread.cli_ops"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


_register_extensions()


def main() -> None:  # pragma: no cover
    app()
