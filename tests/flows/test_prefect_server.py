"""Nightly on a real Prefect server: `prefect server start` on 127.0.0.1 in a temporary home,
`capspread serve` registering the deployments of prefect.yaml, runs triggered through the API.

Every process started here is stopped by its PID in the fixture teardown (serve before server)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import httpx
import pytest
from conftest import CAPSPREAD, REPO

PREFECT = str(Path(sys.executable).with_name("prefect"))
AS_OF = date(2025, 6, 11)
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _quiet_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSPREAD_NOTIFY")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_LOGGING_LEVEL="WARNING")
    env.update(extra)
    return env


@dataclass
class Server:
    api: str
    root: Path
    log: Path

    def client_env(self, **extra: str) -> dict[str, str]:
        """A client of this server: no temporary server of its own."""
        return _quiet_env(PREFECT_API_URL=self.api, PREFECT_HOME=str(self.root / "client-home"), **extra)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    log = root / "server.log"
    env = _quiet_env(PREFECT_HOME=str(root / "server-home"), PREFECT_UI_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    with log.open("w") as fh:
        proc = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=root)
    try:
        api = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"prefect server exited early:\n{log.read_text()}"
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"prefect server not healthy after 120 s:\n{log.read_text()}"
            time.sleep(0.5)
        yield Server(api=api, root=root, log=log)
    finally:
        _stop(proc)


@contextmanager
def client(server: Server):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api}):
        with get_client(sync_client=True) as c:
            yield c


@dataclass
class Served:
    home: Path
    log: Path


@pytest.fixture(scope="module")
def served(server: Server, tmp_path_factory) -> Iterator[Served]:
    """`capspread serve --paused` (schedules registered, no scheduled run can fire during the test)."""
    home = tmp_path_factory.mktemp("served-home")
    log = server.root / "serve.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([CAPSPREAD, "serve", "--paused"], env=server.client_env(CAPSPREAD_HOME=str(home)),
                                stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        with client(server) as c:
            from prefect.exceptions import ObjectNotFound

            while True:
                assert proc.poll() is None, f"capspread serve exited:\n{log.read_text()}"
                try:
                    c.read_deployment_by_name("nightly/nightly")
                    c.read_deployment_by_name("backfill/backfill")
                    break
                except ObjectNotFound:
                    pass
                assert time.monotonic() < deadline, f"deployments not registered after 120 s:\n{log.read_text()}"
                time.sleep(0.5)
        yield Served(home=home, log=log)
    finally:
        _stop(proc)  # before the server (fixture order)


def _wait(c, run_ids: dict[str, object], timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        runs = {name: c.read_flow_run(run_id) for name, run_id in run_ids.items()}
        if all(r.state and r.state.type.value in TERMINAL for r in runs.values()):
            return runs
        if time.monotonic() > deadline:
            return runs
        time.sleep(1)


def _artifacts(c, run_id) -> dict[str, object]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    found = c.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    return {a.key: a for a in found if a.key}


def test_served_deployments_run_nightly_and_backfill_side_by_side(server: Server, served: Served):
    with client(server) as c:
        nightly = c.read_deployment_by_name("nightly/nightly")
        backfill = c.read_deployment_by_name("backfill/backfill")
        [schedule] = nightly.schedules
        assert schedule.schedule.cron == "30 18 * * 1-5" and schedule.schedule.timezone == "America/New_York"
        assert nightly.parameters == {"profile": "sample"} and backfill.schedules == []
        # both at once: the second waits for the warehouse slot instead of being refused by the lock
        ids = {
            "nightly": c.create_flow_run_from_deployment(nightly.id, parameters={"as_of": "2025-06-11"}).id,
            "backfill": c.create_flow_run_from_deployment(
                backfill.id, parameters={"start": "2025-06-09", "end": "2025-06-11"}).id,
        }
        runs = _wait(c, ids, timeout=300)
        states = {name: r.state.type.value if r.state else None for name, r in runs.items()}
        assert states == dict.fromkeys(ids, "COMPLETED"), f"{states}\n{served.log.read_text()[-5000:]}"
        assert c.read_global_concurrency_limit_by_name("capspread-warehouse").limit == 1

        mine = _artifacts(c, ids["nightly"])
        summary = mine["capspread-run-summary"].data
        assert "as of 2025-06-11" in summary and "**success**" in summary and "Source health" in summary
        board = mine["capspread-scoreboard"].data
        rows = json.loads(board) if isinstance(board, str) else board
        assert {r["as_of_date"] for r in rows} == {"2025-06-11"}
        assert {"IWM", "SPY"} <= {r["symbol"] for r in rows}

        back = _artifacts(c, ids["backfill"])
        assert "2025-06-09 → 2025-06-11" in back["capspread-backfill"].data
        assert "3 sessions in 1 chunk" in back["capspread-backfill"].data
        assert "capspread-scoreboard" in back and "capspread-backfill-progress" in back

    con = duckdb.connect(str(served.home / "warehouse.duckdb"), read_only=True)
    try:
        days = [r[0] for r in con.execute(
            "select as_of_date from meta.runs where status = 'success' order by as_of_date").fetchall()]
        newest = con.execute("select max(as_of_date) from marts.market_scoreboard").fetchone()[0]
    finally:
        con.close()
    # the backfill ran each session of its range; the nightly ran the 11th again
    assert days == [date(2025, 6, 9), date(2025, 6, 10), AS_OF, AS_OF]
    assert newest == AS_OF
    manifest = json.loads((served.home / "published" / "manifest.json").read_text())
    assert manifest["as_of_date"] == "2025-06-11"


def test_a_second_run_is_refused_while_one_writes_and_the_failure_notifies(server: Server, tmp_path, httpserver):
    from capspread.config import Home
    from flows.nightly import exclusive

    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    home = tmp_path / "home"
    env = server.client_env(CAPSPREAD_HOME=str(home), CAPSPREAD_NOTIFY_WEBHOOK_URL=httpserver.url_for("/hook"),
                            COLUMNS="200")
    with exclusive(Home(home)):  # another run is writing
        proc = subprocess.run([CAPSPREAD, "run", "--as-of", "2025-06-11"], env=env, capture_output=True,
                              text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "another capspread run is writing" in proc.stderr
    assert not (home / "published" / "capspread.duckdb").exists()

    [(request, _)] = httpserver.log
    note = request.get_json()
    assert note["flow"] == "nightly" and note["status"] == "failed" and note["as_of"] == "2025-06-11"
    assert "RunLocked" in note["body"] and "another capspread run is writing" in note["text"]
    assert note["flow_run_id"]

    with client(server) as c:
        run = c.read_flow_run(note["flow_run_id"])
        assert run.state.type.value == "FAILED"
        assert "**failed**" in _artifacts(c, run.id)["capspread-run-summary"].data


def test_a_day_the_exchange_is_closed_is_skipped_with_a_reason(tmp_path):
    from flows.artifacts import run_markdown
    from flows.nightly import nightly

    saturday = nightly.fn(as_of=date(2025, 6, 14), home=str(tmp_path))
    holiday = nightly.fn(as_of=date(2025, 7, 4), home=str(tmp_path))
    assert (saturday.status, saturday.exit_code) == ("skipped", 0)
    assert saturday.message == "2025-06-14 is a Saturday, not an XNYS trading session: nothing to run"
    assert (holiday.status, holiday.exit_code) == ("skipped", 0)
    assert "2025-07-04 is an exchange holiday" in holiday.message
    assert "**skipped**" in run_markdown(saturday) and saturday.message in run_markdown(saturday)
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_serve_refuses_without_a_server(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from capspread.cli import app

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    proc = CliRunner().invoke(app, ["serve"], env={"CAPSPREAD_HOME": str(tmp_path), "COLUMNS": "200"})
    assert proc.exit_code == 2, proc.output
    assert "needs a Prefect server" in proc.output and "PREFECT_API_URL" in proc.output
