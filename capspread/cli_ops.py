"""Operations commands: ``capspread backfill`` and ``capspread serve`` (contract §2)."""

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from capspread.config import Home


def register(app: typer.Typer) -> None:
    from capspread.cli import Profile, _parse_date, _prefect_env, _today, err, out

    @app.command()
    def backfill(
        start: Annotated[str, typer.Option("--start", help="First as-of date (YYYY-MM-DD).")],
        end: Annotated[str, typer.Option("--end", help="Last as-of date (YYYY-MM-DD).")],
        profile: Annotated[Profile, typer.Option(help="sample: the embedded real-data sample; live: the live sources.")] = Profile.sample,
        restart: Annotated[bool, typer.Option("--restart", help="Forget the saved progress of this range and run all of it again.")] = False,
    ) -> None:
        """The nightly run for every XNYS session of a range, a month per chunk, resumable after a crash."""
        first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
        if first > last:
            raise typer.BadParameter(f"--start {first} is after --end {last}")
        today = _today()
        if last > today:
            raise typer.BadParameter(f"--end {last} is in the future (today is {today}); a backfill loads the past")
        home = Home.from_env()
        _prefect_env(home)

        from flows.backfill import BackfillState, state_path

        path = state_path(home, profile.value, first, last)
        saved = None if restart else BackfillState.load(path)
        if saved is not None and saved.status == "complete":
            out.print(f"backfill {first} → {last} (profile {profile.value}) is already complete "
                      f"({len(saved.days)} sessions, progress in {path}); --restart runs it again.", markup=False)
            raise typer.Exit(0)

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from flows.backfill import add_progress_listener, backfill as backfill_flow, remove_progress_listener
        from flows.nightly import RunLocked

        columns = (TextColumn("backfill {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err) as bar:
            task = bar.add_task("starting (loading the pipeline)", total=None)

            def show(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=label)

            add_progress_listener(show)
            try:
                result = backfill_flow(start=first, end=last, profile=profile.value, home=str(home.root), restart=restart)
            except RunLocked as exc:
                bar.stop()
                err.print(f"[red]capspread backfill: {escape(str(exc))}[/red]")
                raise typer.Exit(1) from None
            except Exception as exc:
                bar.stop()
                state = BackfillState.load(path)
                where = f" at {state.stopped_at}" if state and state.stopped_at else ""
                err.print(f"[red]capspread backfill stopped{where}: {type(exc).__name__}: {escape(str(exc))}[/red]")
                if state:
                    err.print(f"{len(state.days)} sessions are done and saved in {path}; run the same command again "
                              "to resume from where it stopped.", markup=False)
                raise typer.Exit(1) from None
            finally:
                remove_progress_listener(show)
        out.print(result.message, markup=False)
        if result.last is not None and result.last.published:
            out.print(f"published snapshot: {home.snapshot} (as of {result.last.as_of})", markup=False)
        out.print(f"progress: {result.state_file}", markup=False)
        raise typer.Exit(result.exit_code)

    @app.command()
    def serve(
        paused: Annotated[bool, typer.Option("--paused", help="Register the schedules paused: runs start only when triggered.")] = False,
        limit: Annotated[int | None, typer.Option("--limit", min=1, help="Most flow runs this process runs at once.")] = None,
        file: Annotated[Path | None, typer.Option("--file", help="The deployments file (default: prefect.yaml of the project).")] = None,
    ) -> None:
        """Register and serve the Prefect deployments of prefect.yaml (nightly, backfill) until stopped."""
        # PREFECT_HOME stays the user's: the server to talk to comes from the environment or the Prefect profile
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("DO_NOT_TRACK", "1")
        home = Home.from_env()
        os.environ["CAPSPREAD_HOME"] = str(home.root)  # the flow runs this process starts write here
        from flows.deploy import PROJECT_FILE, api_url, serve_project

        url = api_url()
        if not url:
            err.print("[red]capspread serve needs a Prefect server.[/red] Start one with `prefect server start` and "
                      "point PREFECT_API_URL at it, e.g. `export PREFECT_API_URL=http://127.0.0.1:4200/api`.")
            raise typer.Exit(2)
        path = file or PROJECT_FILE
        if not path.exists():
            err.print(f"[red]no deployments file at {escape(str(path))}[/red]")
            raise typer.Exit(2)

        def ready(names: list[str]) -> None:
            err.print(f"serving {', '.join(names)} from {path}\n  Prefect API  {url}\n  warehouse    {home.warehouse}"
                      + ("\n  schedules    paused (runs start only when triggered)" if paused else "")
                      + "\nCtrl-C or SIGTERM stops.", markup=False)

        serve_project(path, paused=paused, limit=limit, on_ready=ready)
