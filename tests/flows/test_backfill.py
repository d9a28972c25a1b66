"""Backfill: month chunks of XNYS sessions, each day as of its own evening, resumable after a crash.

The pipeline runs for real (sample source, Great Expectations, DuckDB) in this process with the
Prefect tasks called through ``.fn``: the server adds nothing to what is checked here, and the
served deployments run on a real server in ``test_prefect_server.py``."""

from __future__ import annotations

import os
import sys
from datetime import date

import duckdb
import pytest
from typer.testing import CliRunner

from capspread.config import Home
from flows.backfill import BackfillState, run_backfill, session_chunks, state_path
from flows.deploy import backfill_running
from flows.nightly import RunLocked, run_pipeline

START, END = date(2025, 5, 29), date(2025, 6, 3)


@pytest.fixture
def tasks_without_server(monkeypatch):
    """Every Prefect task and the backfill flow of ``flows.*`` replaced by its plain function."""
    from prefect import Flow, Task

    import flows.backfill

    for name, module in list(sys.modules.items()):
        if name.startswith("flows.") and module is not None:
            for attr, obj in list(vars(module).items()):
                if isinstance(obj, Task):
                    monkeypatch.setattr(module, attr, obj.fn)
    assert isinstance(flows.backfill.backfill, Flow)
    monkeypatch.setattr(flows.backfill, "backfill", flows.backfill.backfill.fn)
    for var in ("CAPSPREAD_NOTIFY_WEBHOOK_URL", "CAPSPREAD_NOTIFY_BLOCK"):
        monkeypatch.delenv(var, raising=False)


def test_sessions_are_chunked_by_month_without_weekends_or_holidays():
    assert session_chunks(START, END) == [
        ("2025-05", [date(2025, 5, 29), date(2025, 5, 30)]),
        ("2025-06", [date(2025, 6, 2), date(2025, 6, 3)]),
    ]
    # Independence Day (Friday 4 July 2025) and the weekend are not sessions
    assert session_chunks(date(2025, 7, 3), date(2025, 7, 6)) == [("2025-07", [date(2025, 7, 3)])]
    assert session_chunks(date(2025, 7, 5), date(2025, 7, 6)) == []


# what the command sets in its environment, restored after each in-process invocation
_CLI_ENV = ("PREFECT_HOME", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "PREFECT_SERVER_ANALYTICS_ENABLED",
            "DO_NOT_TRACK", "PREFECT_LOGGING_LEVEL", "PREFECT_LOGGING_TO_API_ENABLED")


def _cli(home, *args):
    from capspread.cli import app

    env = {k: os.environ.get(k) for k in _CLI_ENV} | {"CAPSPREAD_HOME": str(home.root), "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


def test_a_crashed_backfill_resumes_where_it_stopped(tmp_path, tasks_without_server):
    home = Home(tmp_path / "home")
    ran = []

    def crash_in_the_second_chunk(as_of, **kw):
        if as_of.month == 6:
            raise RuntimeError("simulated crash")
        ran.append(as_of)
        return run_pipeline(as_of=as_of, **kw)

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_backfill(START, END, "sample", home, run_day=crash_in_the_second_chunk)
    path = state_path(home, "sample", START, END)
    state = BackfillState.load(path)
    assert ran == [date(2025, 5, 29), date(2025, 5, 30)]
    assert (state.status, state.stopped_at, state.chunks_done) == ("stopped", "2025-06-02", ["2025-05"])
    assert sorted(state.days) == ["2025-05-29", "2025-05-30"] and "simulated crash" in state.error

    # the user runs the same command again: May is not run again, June is
    proc = _cli(home, "backfill", "--start", "2025-05-29", "--end", "2025-06-03")
    assert proc.exit_code == 0, proc.output
    # rich wraps long lines at the console width (a long temporary path moves the break): compare words
    assert "4 sessions in 2 chunk(s); ran 2, 2 done by an earlier attempt" in " ".join(proc.output.split())
    state = BackfillState.load(path)
    assert (state.status, state.attempts, state.chunks_done) == ("complete", 2, ["2025-05", "2025-06"])

    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        runs = con.execute("select as_of_date, count(*) from meta.runs group by 1 order by 1").fetchall()
        newest = con.execute("select max(as_of_date) from marts.market_scoreboard").fetchone()[0]
        last_close = con.execute("select max(trade_date) from core.prices_daily").fetchone()[0]
        stamps = [r[0] for r in con.execute(
            "select distinct cast(known_at as date) from core.prices_daily order by 1").fetchall()]
    finally:
        con.close()
    assert runs == [(date(2025, 5, 29), 1), (date(2025, 5, 30), 1), (date(2025, 6, 2), 1), (date(2025, 6, 3), 1)]
    assert newest == last_close == END
    # each day loaded as of its own evening: the closes of a day are known on that day, not later
    assert stamps == [date(2025, 5, 29), date(2025, 5, 30), date(2025, 6, 2), date(2025, 6, 3)]

    again = _cli(home, "backfill", "--start", "2025-05-29", "--end", "2025-06-03")
    assert again.exit_code == 0 and "already complete" in again.output


def test_bad_ranges_are_usage_errors(tmp_path):
    home = Home(tmp_path)
    assert _cli(home, "backfill", "--start", "2025-06-03", "--end", "2025-05-29").exit_code == 2
    assert _cli(home, "backfill", "--start", "2025-06-03", "--end", "2999-01-01").exit_code == 2
    assert _cli(home, "backfill", "--start", "June", "--end", "2025-06-03").exit_code == 2
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_no_other_run_writes_between_two_days_of_a_backfill(tmp_path, tasks_without_server):
    from flows.nightly import nightly

    home = Home(tmp_path)
    with backfill_running(home):
        with pytest.raises(RunLocked, match="a capspread backfill is writing"):
            nightly.fn(as_of=date(2025, 6, 11), home=str(tmp_path))
        with pytest.raises(RunLocked, match="another capspread run or backfill is writing"):
            run_backfill(START, END, "sample", home)
    assert not home.warehouse.exists()
