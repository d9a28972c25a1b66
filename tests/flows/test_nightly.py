"""The nightly run end to end, as a user runs it: `capspread run` on a brand-new home."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import run_cli
from real_closes import closes

AS_OF = date(2025, 6, 11)


def _con(home):
    return duckdb.connect(str(home / "published" / "capspread.duckdb"), read_only=True)


def test_run_exits_zero_and_prints_a_summary(home_2025_06_11):
    home, proc = home_2025_06_11
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "as of 2025-06-11" in out and "success" in out
    for dataset in ("prices", "cpi", "short_interest", "factors"):
        assert dataset in out
    assert str(home / "published" / "capspread.duckdb") in out
    assert "capspread sql" in out
    manifest = json.loads((home / "published" / "manifest.json").read_text())
    assert manifest["as_of_date"] == "2025-06-11"
    # the Data Docs, rendered beside the publish, were finished before the summary was printed:
    # the index it names lists a result page of every landing file the run validated
    assert f"data docs:          {home / 'docs' / 'index.html'}" in out
    index = (home / "docs" / "index.html").read_text()
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        validated = {r[0] for r in con.execute("SELECT DISTINCT landing_file FROM meta.validations "
                                               "WHERE dataset NOT LIKE 'marts.%'").fetchall()}
    finally:
        con.close()
    assert validated and all(Path(f).name in index for f in validated), validated


def test_the_readme_query_works_and_matches_the_real_closes(home_2025_06_11):
    home, _ = home_2025_06_11
    proc = run_cli(home, "sql", "select * from marts.market_scoreboard order by as_of_date desc, wtd_rank limit 10",
                   "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert rows and rows[0]["as_of_date"] == "2025-06-11"
    iwm = next(r for r in rows if r["symbol"] == "IWM")
    c = closes("IWM")
    assert float(iwm["close"]) == pytest.approx(c[AS_OF])
    assert float(iwm["wtd_return"]) == pytest.approx(c[AS_OF] / c[date(2025, 6, 6)] - 1, abs=1e-12)
    assert float(iwm["ytd_return"]) == pytest.approx(c[AS_OF] / c[date(2024, 12, 31)] - 1, abs=1e-12)


def test_no_observation_after_the_as_of_date_was_used(home_2025_06_11):
    home, _ = home_2025_06_11
    con = _con(home)
    try:
        assert con.execute("select max(trade_date) from core.prices_daily").fetchone()[0] == AS_OF
        assert con.execute("select max(as_of_date) from marts.market_scoreboard").fetchone()[0] == AS_OF
        for table, column in [("core.cpi_observations", "available_on"), ("core.short_interest", "available_on"),
                              ("core.factors", "available_on"), ("core.index_estimates", "as_of_date"),
                              ("core.holdings", "as_of_date")]:
            newest = con.execute(f"select max({column}) from {table}").fetchone()[0]
            assert newest is None or newest <= AS_OF, table
        # May 2025 CPI was published in June: not by the conservative release rule on the 11th
        assert con.execute("select max(ref_month) from core.cpi_observations").fetchone()[0] == date(2025, 4, 1)
        # the holdings (2026) and the estimate edition (2025-09-30) were not public yet
        assert con.execute("select count(*) from core.holdings").fetchone()[0] == 0
        assert con.execute("select count(*) from core.index_estimates").fetchone()[0] == 0
        stamps = con.execute("select distinct known_at from core.prices_daily").fetchall()
        assert [s[0].date() for s in stamps] == [AS_OF]
    finally:
        con.close()


def test_every_published_table_and_column_has_a_comment(home_2025_06_11):
    home, _ = home_2025_06_11
    con = _con(home)
    try:
        tables = con.execute("select schema_name, table_name, comment from duckdb_tables()").fetchall()
        names = {f"{s}.{t}" for s, t, _ in tables}
        for mart in ("market_scoreboard", "index_weekly", "size_spread_daily", "size_spread_monthly",
                     "short_interest_by_bucket", "inflation_monthly", "earnings_outlook", "factor_monthly"):
            assert f"marts.{mart}" in names
        assert all(c and "Grain" in c for s, _, c in tables if s == "marts"), tables
        missing = con.execute("select schema_name, table_name, column_name from duckdb_columns() "
                              "where schema_name in ('core', 'marts', 'meta') and (comment is null or comment = '')").fetchall()
        assert missing == []
    finally:
        con.close()


def _checksums(path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for schema, table in con.execute(
            "select schema_name, table_name from duckdb_tables() where schema_name in ('raw', 'core', 'marts') order by 1, 2"
        ).fetchall():
            rows = con.execute(f"select * from {schema}.{table} order by all").fetchall()
            out[f"{schema}.{table}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        con.close()


def test_a_second_run_of_the_same_day_changes_nothing(home_2025_06_11, tmp_path):
    home, _ = home_2025_06_11
    before = _checksums(home / "warehouse.duckdb")
    proc = run_cli(home, "run", "--as-of", "2025-06-11")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _checksums(home / "warehouse.duckdb") == before
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        runs = con.execute("select status, batches_loaded from meta.runs order by started_at").fetchall()
        files = con.execute("select count(*), count(distinct sha256) from meta.landing_files").fetchone()
    finally:
        con.close()
    assert [r[0] for r in runs] == ["success", "success"] and runs[1][1] == 0
    assert files[0] == files[1]


def _table_checksum(path, table: str) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return hashlib.sha256(repr(con.execute(f"select * from {table} order by all").fetchall()).encode()).hexdigest()
    finally:
        con.close()


def test_a_bad_inbox_file_is_quarantined_with_a_reason_and_nothing_of_it_loads(home_2025_06_11):
    home, _ = home_2025_06_11
    real = next((__import__("conftest").FIXTURES / "prices").glob("yf_IWM_daily_*.csv")).read_text().splitlines()
    # corrupt one close of the real file: line 20 of the file (header is line 1)
    fields = real[19].split(",")
    fields[1] = "abc"
    real[19] = ",".join(fields)
    inbox = home / "inbox" / "prices"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "IWM.csv").write_text("\n".join(real) + "\n")

    core_before = _table_checksum(home / "warehouse.duckdb", "core.prices_daily")
    published_before = _table_checksum(home / "published" / "capspread.duckdb", "core.prices_daily")
    proc = run_cli(home, "run", "--as-of", "2025-06-11")

    assert proc.returncode == 3, proc.stdout + proc.stderr
    reasons = list((home / "quarantine").rglob("IWM.csv.reason.txt"))
    assert len(reasons) == 1
    text = reasons[0].read_text()
    assert "IWM.csv" in text and "row 20" in text and "Close" in text and "'abc'" in text
    assert (reasons[0].parent / "IWM.csv").read_text().splitlines()[19].split(",")[1] == "abc"
    assert not (inbox / "IWM.csv").exists()
    assert _table_checksum(home / "warehouse.duckdb", "core.prices_daily") == core_before
    assert _table_checksum(home / "published" / "capspread.duckdb", "core.prices_daily") == published_before
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        status = con.execute("select status, exit_code from meta.runs order by started_at desc limit 1").fetchone()
        landing = con.execute("select status from meta.landing_files where original_name = 'IWM.csv'").fetchall()
    finally:
        con.close()
    assert status == ("quarantined", 3)
    assert landing == [("quarantined",)]
