"""The short, readable summary printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from capspread.config import Home

SAMPLE_QUERY = (
    "select * from marts.market_scoreboard order by as_of_date desc, wtd_rank limit 10"
)


def print_summary(result, home: Home, console: Console) -> None:
    colour = {"success": "green", "quarantined": "yellow", "skipped": "cyan"}.get(result.status, "red")
    console.print(
        f"[bold]capspread run[/bold] {result.run_id}  as of [bold]{result.as_of}[/bold]  profile {result.profile}  "
        f"[{colour}]{result.status}[/{colour}]  ({result.seconds:.1f} s)"
    )
    if result.message:
        console.print(escape(result.message))
    t = Table(title="datasets", title_justify="left")
    for col in ("dataset", "batches", "rows", "core Δ", "checks ok", "failed", "quarantined", "seen before"):
        t.add_column(col, justify="right" if col != "dataset" else "left")
    for rep in sorted(result.datasets.values(), key=lambda r: r.dataset):
        t.add_row(rep.dataset, str(rep.batches), f"{rep.rows:,}", f"{rep.core_changed:,}", str(rep.checks_passed),
                  str(rep.checks_failed), str(rep.quarantined), str(rep.duplicates))
    if not result.datasets:
        t.add_row("(nothing new)", "0", "0", "0", "0", "0", "0", "0")
    Console(width=max(console.width, 110)).print(t)
    warnings = [(r.dataset, w) for r in result.datasets.values() for w in r.warnings]
    for dataset, w in warnings[:10]:
        console.print(f"[yellow]warning[/yellow] {dataset}: {escape(w)}")
    for r in result.datasets.values():
        for e in r.errors:
            console.print(f"[red]quarantined[/red] {r.dataset}: {escape(e)}")
    if result.mart_outcomes:
        passed = sum(c.success for o in result.mart_outcomes for c in o.checks)
        failed = [(o.dataset, c) for o in result.mart_outcomes for c in o.checks if not c.success]
        console.print(f"mart checks: {passed} passed, {len(failed)} failed")
        for name, c in failed[:10]:
            console.print(f"[yellow]{c.severity}[/yellow] {name}: {escape(c.describe())}")
    for line in getattr(result, "inbox_notes", []):
        console.print(f"[yellow]inbox[/yellow] {escape(line)}")
    notes = getattr(result, "health_notes", [])
    # a source that could not be fetched first: ten stale notes must not hide it
    notes = sorted(notes, key=lambda line: "could not be fetched" not in line)
    for line in notes[:10]:
        console.print(f"[yellow]source health[/yellow] {escape(line)}")
    if len(notes) > 10:
        console.print(f"[yellow]source health[/yellow] … and {len(notes) - 10} more in meta.source_health")
    if result.docs_index:
        console.print(f"data docs:          {escape(str(result.docs_index))}")
    if result.quarantine_files:
        console.print(f"Quarantined batches and their reason files: {escape(str(home.quarantine))}")
    console.print("marts: " + ", ".join(f"{k} {v:,} rows" for k, v in result.marts.items()))
    if result.published:
        console.print(f"published snapshot: {escape(str(home.snapshot))}")
        console.print(f"parquet:            {escape(str(home.published / 'parquet'))}")
    console.print(f'try:  capspread sql "{SAMPLE_QUERY}"')
