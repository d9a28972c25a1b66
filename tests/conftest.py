"""Test-session settings: Prefect runs in ephemeral mode in a throw-away home, offline and quiet."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="capspread-test-prefect-")
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CAPSPREAD = str(Path(sys.executable).with_name("capspread"))


def run_cli(home: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed ``capspread`` command as a user would, with its own home."""
    env = {**os.environ, "CAPSPREAD_HOME": str(home), "COLUMNS": "200"}
    env["PREFECT_HOME"] = str(home / ".prefect")
    return subprocess.run([CAPSPREAD, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.fixture(scope="session")
def home_2025_06_11(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A brand-new home after one `capspread run --as-of 2025-06-11` on the sample."""
    home = tmp_path_factory.mktemp("home-2025-06-11")
    proc = run_cli(home, "run", "--as-of", "2025-06-11")
    return home, proc


@pytest.fixture(scope="module")
def http_server():
    """One pytest-httpserver on 127.0.0.1 (a free port) for a test module: the live-source tests
    answer as the vendors do from it. Use it through ``serving`` in the module's ``server`` fixture."""
    from pytest_httpserver import HTTPServer

    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.clear()
    srv.stop()


def serving(server, monkeypatch, sources=(), *, env=None, unset=()):
    """For a function-scoped ``server`` fixture (``yield from serving(...)``): ``server`` emptied of
    earlier expectations and log, ``CAPSPREAD_<SOURCE>_BASE_URL`` of each of ``sources`` pointing at
    it, ``env`` set and ``unset`` removed for the test; emptied again afterwards."""
    server.clear()
    for name in sources:
        monkeypatch.setenv(f"CAPSPREAD_{name.upper()}_BASE_URL", server.url_for("").rstrip("/"))
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    yield server
    server.clear()
