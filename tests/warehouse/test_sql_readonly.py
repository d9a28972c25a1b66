"""`capspread sql`, `tables` and `describe` on the published snapshot of a real run: read-only,
results alone on standard output (header first), writes refused with a clear message."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import date
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from real_closes import closes

from warehouse.query import QueryRefused, run_query

AS_OF = date(2025, 6, 11)
PREV_WEEK_END = date(2025, 6, 6)
SCOREBOARD = ("select symbol, as_of_date, close, wtd_return from marts.market_scoreboard "
              "where as_of_date = '2025-06-11' and symbol in ('IWM', 'SPY') order by symbol")


@pytest.fixture(scope="module")
def home(home_2025_06_11) -> Path:
    home, proc = home_2025_06_11
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return home


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expected(symbol: str) -> tuple[float, float]:
    c = closes(symbol)
    return c[AS_OF], c[AS_OF] / c[PREV_WEEK_END] - 1


def test_csv_is_only_the_result_with_the_header_first(home):
    proc = run_cli(home, "sql", SCOREBOARD, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "symbol,as_of_date,close,wtd_return"
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["symbol"] for r in rows] == ["IWM", "SPY"] and len(lines) == 3
    for r in rows:
        close, wtd = _expected(r["symbol"])
        assert r["as_of_date"] == "2025-06-11"
        assert float(r["close"]) == pytest.approx(close)
        assert float(r["wtd_return"]) == pytest.approx(wtd, abs=1e-12)


def test_json_is_only_the_result(home):
    proc = run_cli(home, "sql", SCOREBOARD, "-f", "json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert [list(r) for r in records] == [["symbol", "as_of_date", "close", "wtd_return"]] * 2
    for r in records:
        close, wtd = _expected(r["symbol"])
        assert r["as_of_date"] == "2025-06-11"
        assert r["close"] == pytest.approx(close) and r["wtd_return"] == pytest.approx(wtd, abs=1e-12)
    proc = run_cli(home, "sql", "select 1 as a, 2 as a, cast('nan' as double) as n, null as z, "
                   "cast(1.25 as decimal(9, 2)) as d, [1, 2] as l", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"a": 1, "a_1": 2, "n": None, "z": None, "d": 1.25, "l": [1, 2]}]


def test_table_format_prints_the_header_then_the_rows(home):
    proc = run_cli(home, "sql", SCOREBOARD)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if re.search(r"\w", ln)]
    assert re.findall(r"\w+", lines[0]) == ["symbol", "as_of_date", "close", "wtd_return"]
    iwm_close, _ = _expected("IWM")
    assert "IWM" in lines[1] and f"{iwm_close:.6g}" in lines[1]
    assert "SPY" in lines[2]


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("insert into meta.runs (run_id) values ('x')", "read-only: INSERT"),
        ("copy marts.factor_monthly to '{tmp}/out.csv'", "read-only: COPY"),
        ("attach '{tmp}/other.duckdb' as other", "read-only: ATTACH"),
        ("select 1; drop table marts.factor_monthly", "one statement at a time"),
        ("explain analyze copy (select 1) to '{tmp}/out.csv'", "EXPLAIN"),
    ],
)
def test_the_cli_refuses_writes_with_a_clear_message(home, tmp_path, statement, message):
    snapshot = home / "published" / "capspread.duckdb"
    before = _digest(snapshot)
    proc = run_cli(home, "sql", statement.format(tmp=tmp_path), "-f", "csv")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert message in proc.stderr and "capspread sql" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    assert _digest(snapshot) == before


REFUSED = [
    "create table marts.x as select 1",
    "create temp table t as select 1",
    "create view v as select 1",
    "create macro m(a) as a",
    "create secret (type s3)",
    "insert into meta.runs by name select 'x' as run_id",
    "update meta.runs set status = 'x'",
    "delete from meta.runs",
    "truncate meta.runs",
    "drop table marts.factor_monthly",
    "alter table meta.runs add column x int",
    "comment on table meta.runs is 'x'",
    "merge into meta.runs using meta.runs s on true when matched then delete",
    "copy marts.factor_monthly to '{tmp}/f.parquet' (format parquet)",
    "copy meta.runs from '{tmp}/f.csv'",
    "copy (select 1) to '{tmp}/one.csv'",
    "export database '{tmp}/export'",
    "attach '{tmp}/a.duckdb'",
    "attach ':memory:' as m",
    "detach capspread",
    "use memory",
    "install httpfs",
    "load httpfs",
    "load '{tmp}/x.duckdb_extension'",
    "update extensions",
    "set threads = 1",
    "reset threads",
    "set variable x = 1",
    "pragma threads = 1",
    "pragma enable_profiling",
    "pragma profiling_output = '{tmp}/profile.json'",
    "pragma import_database('{tmp}')",
    "call pragma_table_info('marts.factor_monthly')",
    "checkpoint",
    "vacuum",
    "begin transaction",
    "prepare p as select 1",
    "explain analyze create table t as select 1",
    "select 1; select 2",
    "",
    "selec 1",
    # a query that would reach a file or the network is stopped by the engine
    "select * from read_csv('{tmp}/../*.csv')",
    "select * from read_parquet('https://example.com/a.parquet')",
    "select * from glob('/*')",
]


@pytest.mark.parametrize("statement", REFUSED)
def test_run_query_refuses_anything_but_one_read(home, tmp_path, statement):
    snapshot = home / "published" / "capspread.duckdb"
    before = _digest(snapshot)
    with pytest.raises(QueryRefused) as refused:
        run_query(snapshot, statement.format(tmp=tmp_path))
    text = str(refused.value)
    assert "capspread sql" in text or "parse" in text
    assert list(tmp_path.iterdir()) == []
    assert _digest(snapshot) == before


READS = {
    "from marts.factor_monthly limit 3": 3,
    "with m as (select * from marts.size_spread_monthly) select count(*) from m": 1,
    "values (1), (2)": 2,
    "table meta.runs": None,
    "describe marts.factor_monthly": None,
    "summarize marts.size_spread_monthly": None,
    "pivot marts.size_spread_monthly on pair using sum(spread)": None,
    "explain select * from marts.factor_monthly": None,
    "explain analyze select count(*) from marts.factor_monthly": None,
    "pragma table_info('marts.factor_monthly')": None,
    "pragma version": 1,
    "select * from duckdb_tables() where schema_name = 'marts'": None,
    "select 1;": 1,
}


@pytest.mark.parametrize("statement", list(READS))
def test_run_query_runs_reads(home, statement):
    columns, rows = run_query(home / "published" / "capspread.duckdb", statement)
    assert columns and rows
    if READS[statement] is not None:
        assert len(rows) == READS[statement]


def test_the_query_connection_is_locked_down(home):
    snapshot = home / "published" / "capspread.duckdb"
    settings = ("access_mode", "enable_external_access", "lock_configuration", "enable_progress_bar",
                "autoinstall_known_extensions", "autoload_known_extensions")
    columns, rows = run_query(snapshot, "select " + ", ".join(f"current_setting('{s}') as {s}" for s in settings))
    assert dict(zip(columns, rows[0])) == {
        "access_mode": "read_only", "enable_external_access": False, "lock_configuration": True,
        "enable_progress_bar": False,  # DuckDB would draw it on standard output, amid the result
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
    }


def _ddl_comments() -> dict[str, str]:
    """COMMENT ON TABLE texts as written in the warehouse DDL (the source of the published ones)."""
    found = {}
    for f in sorted((REPO / "warehouse" / "sql" / "ddl").glob("*.sql")):
        for schema, table, text in re.findall(
            r"COMMENT ON TABLE (core|marts|meta)\.(\w+) IS '((?:[^']|'')*)';", f.read_text()
        ):
            found[f"{schema}.{table}"] = text.replace("''", "'")
    return found


def test_tables_lists_every_published_table_with_its_comment(home):
    proc = run_cli(home, "tables", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = {r["table"]: r for r in csv.DictReader(io.StringIO(proc.stdout))}
    manifest = json.loads((home / "published" / "manifest.json").read_text())
    assert set(rows) == set(manifest["tables"])
    comments = _ddl_comments()
    assert {t for t in comments if t.startswith("marts.")} <= set(rows)
    for name, row in rows.items():
        assert row["comment"], name
        if name in comments:
            assert row["comment"] == comments[name], name
        assert int(row["rows"]) == manifest["tables"][name], name


def test_describe_prints_the_table_and_column_comments(home):
    proc = run_cli(home, "describe", "marts.factor_monthly")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.splitlines()[0] == "marts.factor_monthly: " + _ddl_comments()["marts.factor_monthly"]
    ddl = (REPO / "warehouse" / "sql" / "ddl" / "31_factor_marts.sql").read_text()
    column_comments = re.findall(r"COMMENT ON COLUMN marts\.factor_monthly\.(\w+) IS '((?:[^']|'')*)';", ddl)
    assert len(column_comments) >= 5
    for column, comment in column_comments:
        line = next(ln for ln in text.splitlines() if re.search(rf"│ {column}\s+│", ln))
        assert comment.replace("''", "'")[:40] in line
    # as SQL names it: in any case, quoted or not
    for spelled in ("MARTS.Factor_Monthly", '"marts"."factor_monthly"', "factor_monthly"):
        again = run_cli(home, "describe", spelled)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[1:] == text.splitlines()[1:], spelled
    proc = run_cli(home, "describe", "marts.no_such_table")
    assert proc.returncode == 2 and proc.stdout == "" and "no table" in proc.stderr
