"""Older readers: BI drivers that bundle DuckDB 1.x must open the published snapshot.

A separate virtual environment gets an old ``duckdb`` wheel (and the ``duckdb`` command-line shell
from PyPI, which is a 1.x build too); the published snapshot of a real run must open there with its
marts and comments, while a file in DuckDB 2.0's own storage format must not (so the claim can fail).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest
from warehouse_variants import copy_warehouse, storage_version_number

from warehouse.publish import publish

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2025, 6, 11)
OLD_DUCKDB = "1.2.2"  # the oldest DuckDB that reads the default storage version v1.2.0
OLD_CLI = "1.5.6"  # the newest duckdb shell on PyPI; DuckDB 1.5 cannot open 2.0-format files either
READER = REPO / "tests" / "compat" / "old_duckdb_reader.py"


def _uv() -> str | None:
    found = shutil.which("uv")
    local = REPO / ".tools" / "bin" / "uv"
    return found or (str(local) if local.exists() else None)


@pytest.fixture(scope="session")
def old_duckdb(tmp_path_factory) -> Path:
    """The bin/ directory of a virtual environment with duckdb==OLD_DUCKDB and the duckdb shell."""
    venv = tmp_path_factory.mktemp("old-duckdb") / "venv"
    packages = [f"duckdb=={OLD_DUCKDB}", f"duckdb-cli=={OLD_CLI}"]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    t = time.perf_counter()
    uv = _uv()
    if uv:
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                       check=True, env=env, capture_output=True, timeout=120)
        proc = subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *packages],
                              env=env, capture_output=True, text=True, timeout=300)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, capture_output=True, timeout=120)
        proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *packages],
                              env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"\nold duckdb environment ({'uv' if uv else 'venv + pip'}): {time.perf_counter() - t:.1f} s")
    return venv / "bin"


def _old(bin_dir: Path, *args: str) -> dict:
    proc = subprocess.run([str(bin_dir / "python"), str(READER), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _current_reader():
    spec = importlib.util.spec_from_file_location("old_duckdb_reader_current", READER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_old_duckdb_reads_the_published_snapshot_with_marts_and_comments(old_duckdb, home_2025_06_11):
    home, proc = home_2025_06_11
    assert proc.returncode == 0, proc.stdout + proc.stderr
    published = home / "published"
    snapshot = published / "capspread.duckdb"
    parquet = published / "parquet" / "marts" / "factor_monthly.parquet"
    manifest = json.loads((published / "manifest.json").read_text())

    old = _old(old_duckdb, "read", str(snapshot), str(parquet))
    assert old["duckdb"] == OLD_DUCKDB
    # what DuckDB 2.0 reads from the same file, through the same code, serialised the same way
    new = json.loads(json.dumps(_current_reader().read(str(snapshot), str(parquet)), default=str))
    assert new["duckdb"].startswith("2.")
    for key in ("tables", "columns", "factor_monthly", "scoreboard", "counts", "run", "parquet_rows"):
        assert old[key] == new[key], key

    tables = dict(old["tables"])
    for mart in ("market_scoreboard", "index_weekly", "size_spread_daily", "size_spread_monthly",
                 "short_interest_by_bucket", "inflation_monthly", "earnings_outlook", "factor_monthly"):
        assert tables[f"marts.{mart}"], mart
    assert all(comment for _, _, comment in old["columns"])
    assert old["counts"] == manifest["tables"]
    assert old["run"] == [manifest["run_id"], manifest["as_of_date"]]
    assert old["parquet_rows"] == manifest["tables"]["marts.factor_monthly"] > 0
    symbols = {row[1] for row in old["scoreboard"]}
    assert {"IWM", "SPY"} <= symbols and old["scoreboard"][0][0] == "2025-06-11"


def test_the_old_duckdb_shell_opens_the_snapshot_read_only(old_duckdb, home_2025_06_11):
    home, _ = home_2025_06_11
    snapshot = home / "published" / "capspread.duckdb"
    proc = subprocess.run(
        [str(old_duckdb / "duckdb"), "-readonly", "-json", "-init", os.devnull, str(snapshot), "-c",
         "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'marts' ORDER BY 1"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["table_name"] for r in rows} >= {"factor_monthly", "market_scoreboard"}
    assert all(r["comment"] for r in rows)
    version = subprocess.run([str(old_duckdb / "duckdb"), "--version"], capture_output=True, text=True).stdout
    assert version.startswith(f"v{OLD_CLI}")


def test_a_file_in_duckdb_2_storage_does_not_open_in_the_old_reader(old_duckdb, home_2025_06_11, tmp_path):
    home, _ = home_2025_06_11
    plain = tmp_path / "plain-2.0.duckdb"
    con = duckdb.connect(str(plain))  # DuckDB 2.0 with its default storage version
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    latest = tmp_path / "latest"
    publish(copy_warehouse(home, tmp_path / "work"), latest, run_id="latest-format",
            as_of=AS_OF, storage_version="latest")
    for path in (plain, latest / "capspread.duckdb"):
        assert storage_version_number(path) > 65
        result = _old(old_duckdb, "open", str(path))
        assert result["ok"] is False, path
        assert "version" in result["error"].lower()
    # the same publish in the default storage version opens
    default = tmp_path / "default"
    publish(tmp_path / "work" / "warehouse.duckdb", default, run_id="default-format",
            as_of=AS_OF)
    assert _old(old_duckdb, "open", str(default / "capspread.duckdb"))["ok"] is True
