"""API keys never leave the process that uses them: ``capspread run --profile live`` with canary
keys, three sources failing in ways that put the key into an error (FRED down with HTTP 503, Stooq
and BLS refusing with 403/400 and an error page that echoes the request, key included), then a
search for the canaries in everything the run left behind:

* the command's standard output and error, with every logger at DEBUG (``httpx`` writes each
  request line, ``capspread.sources`` each request and retry) and the logs also sent to Prefect's API;
* every file under ``CAPSPREAD_HOME`` (landing files and ``landing/_runs`` journals, quarantined
  payloads and their reason files, Data Docs under ``docs/``, source state, the published Parquet read
  back as tables) and under ``PREFECT_HOME`` (Prefect's database, which holds the run's logs and
  artifacts);
* every VARCHAR value of every table of the warehouse and of the published snapshot.

The check is shown to be able to fail: the server received every key (so the run did hold them),
and the same search finds a canary planted in a file, a DuckDB table and a Parquet file.

Answers: ``live_server.LiveServer`` (recorded real-format answers; see there).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb
import prefect
import pytest
import yaml
from conftest import CAPSPREAD, REPO
from live_server import LiveServer

AS_OF = "2026-06-22"  # a Monday session after every recorded observation (consensus asks nothing for a past day)
# Stooq's canary has characters a URL must encode: an echo of the query string spells it differently
KEYS = {"FRED_API_KEY": "CanaryFred7d21b9e4", "STOOQ_API_KEY": "Canary+Stooq/0c5a=8f13",
        "BLS_API_KEY": "CanaryBls3e96d047"}
CANARIES = tuple(KEYS.values())


def spellings(key: str) -> set[str]:
    """The key as set, and as a URL or a form carries it (percent-encoded, hex in either case)."""
    encoded = {quote(key, safe=""), quote(key), quote_plus(key)}
    return {key} | encoded | {re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), e) for e in encoded}


SPELLINGS = {c: spellings(c) for c in CANARIES}
TEXT_SUFFIXES = {".json", ".csv", ".txt", ".html", ".htm", ".md", ".js", ".css", ".xml", ".yaml", ".yml", ".log"}


def verbose_logging(folder: Path) -> Path:
    """Prefect's own logging configuration with the ``httpx``, ``httpcore`` and ``capspread`` loggers at
    DEBUG, to the console and to Prefect's API (its database): every request line gets written."""
    config = yaml.safe_load((Path(prefect.__file__).parent / "logging" / "logging.yml").read_text())
    for name in ("httpx", "httpcore", "capspread"):
        config["loggers"][name] = {"level": "DEBUG", "handlers": ["api"], "propagate": True}
    config["root"]["level"] = "DEBUG"
    path = folder / "logging.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory, http_server):
    home = tmp_path_factory.mktemp("canary-home")
    prefect_home = tmp_path_factory.mktemp("canary-prefect")
    server = LiveServer(http_server, fail={"fred": 503, "stooq": 403, "bls": 400})
    env = {**os.environ, **server.environment(), **KEYS, "CAPSPREAD_HOME": str(home),
           "PREFECT_HOME": str(prefect_home), "COLUMNS": "200",
           "PREFECT_LOGGING_LEVEL": "DEBUG", "PREFECT_LOGGING_TO_API_ENABLED": "true",
           "PREFECT_LOGGING_SETTINGS_PATH": str(verbose_logging(tmp_path_factory.mktemp("logging")))}
    for name in ("CAPSPREAD_LIVE_SOURCES", "CAPSPREAD_LIVE_START", "CAPSPREAD_STATE_DIR", "CAPSPREAD_CONSENSUS_FUNDS",
                 "CAPSPREAD_CONSENSUS_SYMBOLS"):
        env.pop(name, None)
    proc = subprocess.run([CAPSPREAD, "run", "--profile", "live", "--as-of", AS_OF], env=env, capture_output=True,
                          text=True, timeout=900, cwd=REPO)
    return home, prefect_home, server, proc


def leaks_in_files(root: Path) -> list[tuple[str, str]]:
    """(file, canary) for every file under ``root`` whose bytes hold a canary; Parquet files are read
    back as tables (their pages may be compressed) and scanned like the DuckDB tables."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [(str(path), c) for c in CANARIES if any(f.encode() in data for f in SPELLINGS[c])]
        if path.suffix == ".parquet":
            con = duckdb.connect()
            try:
                con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
                found += [(str(path), c) for _, c in leaks_in_tables(con)]
            finally:
                con.close()
    return found


def leaks_in_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema.table.column, canary) for every VARCHAR value holding a canary."""
    found = []
    columns = con.execute(
        "SELECT table_catalog, table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE data_type = 'VARCHAR' AND table_schema NOT IN ('information_schema', 'pg_catalog')"
    ).fetchall()
    for catalog, schema, table, column in columns:
        for c in CANARIES:
            for form in SPELLINGS[c]:
                hit = con.execute(
                    f'SELECT count(*) FROM "{catalog}"."{schema}"."{table}" WHERE strpos("{column}", ?) > 0', [form]
                ).fetchone()[0]
                if hit:
                    found.append((f"{schema}.{table}.{column}", c))
                    break
    return found


def leaks_in_duckdb(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return leaks_in_tables(con)
    finally:
        con.close()


def test_the_run_held_the_keys_and_met_the_failures(canary_run):
    home, _, server, proc = canary_run
    assert proc.returncode == 3, proc.stdout + proc.stderr  # the refused payloads are quarantined
    fred = server.exchanges("fred")
    stooq = server.exchanges("stooq")
    bls = server.exchanges("bls")
    assert fred and all(e.args.get("api_key") == KEYS["FRED_API_KEY"] and e.status == 503 for e in fred)
    assert stooq and all(e.args.get("apikey") == KEYS["STOOQ_API_KEY"] and e.status == 403 for e in stooq)
    assert bls and all(json.loads(e.body)["registrationkey"] == KEYS["BLS_API_KEY"] and e.status == 400 for e in bls)
    # and the error pages sent back carried the keys (Stooq's percent-encoded, as the query string has it):
    # a payload kept as received would leak them
    assert all(quote(KEYS["STOOQ_API_KEY"], safe="").encode() in e.answer for e in stooq)
    assert all(KEYS["BLS_API_KEY"].encode() in e.answer for e in bls)
    reasons = list((home / "quarantine").rglob("*.reason.txt"))
    assert {p.parent.name for p in reasons} == {"prices", "cpi"}  # stooq's and bls's refusals
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        status = dict(((s, d), st) for s, d, st in con.execute("select source, dataset, status from meta.source_health")
                      .fetchall())
    assert status[("fred", "cpi")] == "failed"


def test_no_canary_in_the_output(canary_run):
    _, _, _, proc = canary_run
    assert "HTTP Request" in proc.stdout + proc.stderr  # the httpx logger did write its request lines
    for c in CANARIES:
        for form in SPELLINGS[c]:
            assert form not in proc.stdout and form not in proc.stderr, form


def test_no_canary_in_any_file_of_the_home_or_prefect(canary_run):
    home, prefect_home, _, _ = canary_run
    assert list((home / "landing" / "_runs").glob("*.json")) and list((home / "docs").rglob("*.html"))
    assert list((home / "published" / "parquet").rglob("*.parquet"))
    assert leaks_in_files(home) == []
    assert leaks_in_files(prefect_home) == []


def test_no_canary_in_any_table(canary_run):
    home, _, _, _ = canary_run
    assert leaks_in_duckdb(home / "warehouse.duckdb") == []
    assert leaks_in_duckdb(home / "published" / "capspread.duckdb") == []


def test_the_search_finds_a_planted_canary(tmp_path):
    """The searches above can fail: a canary planted in a file, a table and a Parquet file is found."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "journal.json").write_text(json.dumps({"url": f"https://x/?api_key={CANARIES[0]}"}))
    (tmp_path / "sub" / "page.txt").write_text(f"403 for /q/d/l/?s=spy.us&apikey={quote(CANARIES[1], safe='')}")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA meta; CREATE TABLE meta.t (n INTEGER, message VARCHAR)")
    con.execute("INSERT INTO meta.t VALUES (1, ?)", [f"GET /q/d/l/?apikey={CANARIES[1]}"])
    con.execute(f"COPY (SELECT repeat('x', 5000) || ? AS v) TO '{tmp_path / 'p.parquet'}' (COMPRESSION zstd)",
                [CANARIES[2]])
    con.close()
    assert set(leaks_in_files(tmp_path)) >= {(str(tmp_path / "sub" / "journal.json"), CANARIES[0]),
                                              (str(tmp_path / "sub" / "page.txt"), CANARIES[1]),
                                              (str(tmp_path / "p.parquet"), CANARIES[2])}
    assert leaks_in_duckdb(tmp_path / "w.duckdb") == [("meta.t.message", CANARIES[1])]
