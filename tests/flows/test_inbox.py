"""The inbox at the pipeline level: good files land in core and the marts, bad ones are quarantined.

Two runs of ``run_pipeline`` on one home, both as of ``AS_OF`` on the sample profile:

1. the good run, with real files of every dataset family in the inbox (plus one file twice);
2. the bad run, with every malformed file of ``inbox_cases.bad_cases`` at once (and a good file seen
   before): it exits 3, quarantines each file with a reason naming the file, the row or cell, what
   was found and what was expected, and leaves ``raw``, ``core`` and ``marts`` exactly as they were.

Each case is its own test, asserted from the results of the single bad run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import stat
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest
from inbox_cases import (
    FF3_MONTHLY,
    FF5_MONTHLY,
    FINRA,
    FRED_SP500,
    IWM_HOLDINGS,
    Case,
    Lines,
    bad_cases,
    cell,
    cpi_before_1980,
    good_files,
    lines,
    moved_rows,
    raw,
    sheet_of,
    text,
    yahoo_v7_csv,
)

from capspread.config import Home
from flows.landing import quarantine, scan_inbox
from flows.nightly import RunResult, run_pipeline
from sources.base import Batch
from warehouse.db import CORE_TABLE

AS_OF = date(2026, 5, 6)  # the IWM holdings of 2026-05-05 are public (one day's lag)
SEEN_BEFORE = ("prices", "SP500_seen_before.csv")  # the good run's SP500.csv, dropped again

CASE_IDS = [c.id for c in bad_cases(datetime.now(timezone.utc).date())]


@dataclass
class Runs:
    home: Home
    good: RunResult
    bad: RunResult
    cases: dict[str, Case]
    before: dict[str, tuple[int, int]]
    after: dict[str, tuple[int, int]]


def _checksums(path: Path) -> dict[str, tuple[int, int]]:
    """Row count and an order-independent hash of every row of every raw, core and marts table."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name in ('raw', 'core', 'marts') order by 1, 2"
        ).fetchall()
        out = {}
        for schema, table in tables:
            count, total = con.execute(f"select count(*), sum(hash(t)::hugeint) from {schema}.{table} t").fetchone()
            out[f"{schema}.{table}"] = (count, int(total or 0))
        return out
    finally:
        con.close()


def _drop(home: Home, dataset: str, name: str, payload: bytes) -> None:
    folder = home.inbox / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(payload)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    home = Home(tmp_path_factory.mktemp("inbox-home")).ensure()
    for (dataset, name), payload in good_files().items():
        _drop(home, dataset, name, payload)
    good = run_pipeline(AS_OF, "sample", home)
    before = _checksums(home.warehouse)

    cases = {c.id: c for c in bad_cases(datetime.now(timezone.utc).date())}
    for c in cases.values():
        _drop(home, c.dataset, c.name, c.payload)
    _drop(home, *SEEN_BEFORE, raw(FRED_SP500))
    bad = run_pipeline(AS_OF, "sample", home)
    return Runs(home, good, bad, cases, before, _checksums(home.warehouse))


def _query(home: Home, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _where(reason: str) -> dict[str, str]:
    """The ``where:`` block of a reason file as {key: value}."""
    block = reason.split("\nwhere:\n", 1)[1].split("\n\n", 1)[0] if "\nwhere:\n" in reason else ""
    return dict(line.strip().split(": ", 1) for line in block.splitlines() if line.strip())


# ----------------------------------------------------------------------------------------------
# the bad run


def test_the_bad_run_exits_3_and_still_publishes(runs):
    bad = runs.bad
    assert bad.exit_code == 3 and bad.status == "quarantined" and bad.published
    assert sum(r.quarantined for r in bad.datasets.values()) == len(runs.cases)
    assert len(bad.quarantine_files) == len(runs.cases)
    assert _query(runs.home, "select status, exit_code, batches_quarantined from meta.runs where run_id = ?",
                  [bad.run_id]) == [("quarantined", 3, len(runs.cases))]
    manifest = (runs.home.published / "manifest.json").read_text()
    assert bad.run_id in manifest


def test_nothing_of_the_bad_files_reaches_raw_core_or_marts(runs):
    assert runs.after == runs.before
    assert any(name.startswith("core.") for name in runs.before) and any(n.startswith("marts.") for n in runs.before)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_a_malformed_file_is_quarantined_with_its_reason(runs, case_id):
    c = runs.cases[case_id]
    home, run_id = runs.home, runs.bad.run_id
    folder = home.quarantine / run_id / c.dataset
    reason_file = folder / f"{c.name}.reason.txt"
    assert reason_file.is_file(), sorted(p.name for p in folder.iterdir())
    reason = reason_file.read_text()

    # the payload is kept exactly as dropped, next to its reason; the inbox is emptied
    assert (folder / c.name).read_bytes() == c.payload
    assert not (home.inbox / c.dataset / c.name).exists()

    # the reason names the file, the row or cell, what was found and what was expected
    header = dict(line.split(": ", 1) for line in reason.split("\n\nwhy:\n")[0].splitlines())
    assert header["file"].replace("\\", "/").endswith(f"inbox/{c.dataset}/{c.name}")
    assert header["dataset"] == c.dataset and header["source"] == "inbox" and header["run"] == run_id
    assert header["sha256"] == _sha(c.payload) and header["size_bytes"] == str(len(c.payload))
    why = [line[2:] for line in reason.split("\nwhy:\n", 1)[1].splitlines() if line.startswith("- ")]
    where = _where(reason)
    if c.by == "parser":
        assert len(why) == 1 and why[0].startswith(c.name) and c.message in why[0], why
        assert where.get("row") == (None if c.row is None else str(c.row)), where
        assert where.get("field") == c.field, where
        assert where.get("found") == (None if c.found is None else repr(c.found)), where
        assert c.expected is not None and c.expected in where["expected"], where
    else:  # refused by the landing suite: the failed expectation, recorded in meta.validations
        assert why == [c.message] and where == {}, (why, where)
        failed = _query(home, "select severity, expectation, column_name from meta.validations "
                              "where run_id = ? and not success and landing_file = ?",
                        [run_id, f"quarantine/{run_id}/{c.dataset}/{c.name}"])
        assert [(sev, col) for sev, _, col in failed if sev == "error"] == [("error", c.field)], failed
    assert "nothing of it was loaded" in reason

    # nothing of it was landed; meta.landing_files records it as quarantined
    assert not [p for p in home.landing.rglob(f"{_sha(c.payload)}.*")]
    rows = _query(home, "select status, path, sha256, size_bytes from meta.landing_files where original_name = ? "
                        "and dataset = ? and run_id = ?", [c.name, c.dataset, run_id])
    assert rows == [("quarantined", f"quarantine/{run_id}/{c.dataset}/{c.name}", _sha(c.payload), len(c.payload))]
    assert any(c.message in e for e in runs.bad.datasets[c.dataset].errors)

    # and the dataset's raw and core tables are unchanged
    for table in (f"raw.{c.dataset}", f"core.{CORE_TABLE[c.dataset]}"):
        assert runs.after[table] == runs.before[table], table


def test_every_case_has_its_own_file_and_the_list_is_long_enough(runs):
    assert sorted(runs.cases) == sorted(CASE_IDS) and len(CASE_IDS) >= 20
    assert len({(c.dataset, c.name) for c in runs.cases.values()}) == len(runs.cases)
    # distinct contents, none of them a good file's (that would be recognised as seen before)
    shas = {_sha(c.payload) for c in runs.cases.values()}
    assert len(shas) == len(runs.cases) and not shas & {_sha(p) for p in good_files().values()}
    assert {c.dataset for c in runs.cases.values()} == {"prices", "cpi", "short_interest", "holdings", "factors",
                                                        "estimates"}


def test_a_good_file_seen_before_is_recognised_and_not_loaded_again(runs):
    home = runs.home
    assert runs.bad.datasets["prices"].duplicates == 1
    assert not (home.inbox / SEEN_BEFORE[0] / SEEN_BEFORE[1]).exists()
    assert _query(home, "select count(*) from meta.landing_files where original_name = ?", [SEEN_BEFORE[1]]) == [(0,)]
    assert len(list(home.landing.rglob(f"{_sha(raw(FRED_SP500))}.*"))) == 1


# ----------------------------------------------------------------------------------------------
# the good run


def _landing(home: Home, name: str) -> tuple:
    rows = _query(home, "select path, status, format, sha256, size_bytes from meta.landing_files "
                        "where original_name = ?", [name])
    assert len(rows) == 1, rows
    return rows[0]


EXPECTED_FORMATS = {
    "SP500.csv": "fred_csv",
    "QQQ.csv": "yahoo_csv",
    "CPIAUCSL_1947-1979.csv": "fred_csv",
    "shrt20210715.txt": "finra_pipe",
    "iShares_IWM_holdings_2026-05-05.csv": "ishares_csv",
    "sp-500-eps-est_moved.xlsx": "spdji_eps_xlsx",
    "F-F_Research_Data_Factors.CSV": "french_csv",
    "F-F_Research_Data_5_Factors_2x3_CSV.zip": "french_zip",
}


def test_every_good_file_is_landed_once_read_only_and_registered(runs):
    home, good = runs.home, runs.good
    assert good.exit_code == 0, [e for r in good.datasets.values() for e in r.errors]
    files = good_files()
    assert {name for _, name in files} - {"SP500_again.csv"} == set(EXPECTED_FORMATS)
    for (dataset, name), payload in files.items():
        assert not (home.inbox / dataset / name).exists()
        if name == "SP500_again.csv":
            continue
        path, status, fmt, sha, size = _landing(home, name)
        assert (status, fmt, sha, size) == ("loaded", EXPECTED_FORMATS[name], _sha(payload), len(payload))
        assert path == f"landing/inbox/{dataset}/{sha}.{name.rsplit('.', 1)[1]}"
        landed = home.root / path
        assert landed.read_bytes() == payload
        assert not landed.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_the_same_file_twice_in_one_run_loads_once(runs):
    assert runs.good.datasets["prices"].duplicates == 1
    assert _query(runs.home, "select count(*) from meta.landing_files where original_name = 'SP500_again.csv'") == [(0,)]


def _fred_sp500() -> dict[date, float]:
    out = {}
    for line in text(FRED_SP500).splitlines()[1:]:
        day, value = line.split(",")
        if value.strip():
            out[date.fromisoformat(day)] = float(value)
    return out


def test_a_fred_sp500_file_lands_in_core_and_the_scoreboard(runs):
    fred = _fred_sp500()
    core = dict(_query(runs.home, "select trade_date, close from core.prices_daily where symbol = '^GSPC'"))
    assert core == {d: v for d, v in fred.items() if d <= AS_OF}
    assert _query(runs.home, "select distinct source from core.prices_daily where symbol = '^GSPC'") == [("inbox",)]
    board = _query(runs.home, "select close, ytd_return, name from marts.market_scoreboard "
                              "where symbol = '^GSPC' and as_of_date = ?", [date(2025, 6, 11)])
    assert board == [(fred[date(2025, 6, 11)], pytest.approx(fred[date(2025, 6, 11)] / fred[date(2024, 12, 31)] - 1),
                      "S&P 500")]


def test_a_yahoo_csv_whose_high_is_below_its_low_loads_with_a_warning(runs):
    payload, table = yahoo_v7_csv(swap_high_low_on=1)
    header, row = table[0], table[1]
    path, status, *_ = _landing(runs.home, "QQQ.csv")
    assert status == "loaded"
    checks = _query(runs.home, "select severity, success, unexpected_count from meta.validations "
                               "where landing_file = ? and expectation = 'expect_column_pair_values_a_to_be_greater_than_b'",
                    [path])
    assert checks == [("warn", False, 1)]
    assert not _query(runs.home, "select * from meta.validations where landing_file = ? and not success "
                                 "and severity = 'error'", [path])
    loaded = _query(runs.home, "select trade_date, high, low, close from raw.prices where _landing_file = ?", [path])
    assert loaded == [(date.fromisoformat(row[0]), float(row[header.index("High")]), float(row[header.index("Low")]),
                       float(row[header.index("Close")]))]
    assert loaded[0][1] < loaded[0][2]
    assert any("greater than b" in w for w in runs.good.datasets["prices"].warnings)


def test_a_fred_cpi_file_resaved_by_excel_lands_in_core_and_the_inflation_mart(runs):
    values = {}
    for line in Lines(cpi_before_1980().decode()).items[1:]:
        day, value = line.split(",")
        m, d, y = (int(x) for x in day.split("/"))
        values[date(y, m, d)] = float(value)
    assert min(values) == date(1947, 1, 1) and max(values) == date(1979, 12, 1)
    # CPIAUCSL before 1980 comes from this file only (the sample starts in 1980)
    core = dict(_query(runs.home, "select ref_month, value from core.cpi_observations "
                                  "where series_id = 'CPIAUCSL' and ref_month < '1980-01-01'"))
    assert core == values
    assert _query(runs.home, "select distinct source from core.cpi_observations where series_id = 'CPIAUCSL' "
                             "and ref_month < '1980-01-01'") == [("inbox",)]
    mart = _query(runs.home, "select headline_index, headline_yoy from marts.inflation_monthly where ref_month = ?",
                  [date(1950, 1, 1)])
    jan50, jan49 = values[date(1950, 1, 1)], values[date(1949, 1, 1)]
    assert mart == [(jan50, pytest.approx(jan50 / jan49 - 1))]


def test_finra_and_ishares_files_land_in_core_and_feed_the_bucket_mart(runs):
    finra = list(csv.DictReader(io.StringIO(text(FINRA)), delimiter="|"))
    holdings_text = text(IWM_HOLDINGS).lstrip("\ufeff").split("\n")
    start = next(i for i, line in enumerate(holdings_text) if line.startswith("Ticker,"))
    end = next(i for i in range(start + 1, len(holdings_text)) if not holdings_text[i].strip())
    holdings = list(csv.DictReader(io.StringIO("\n".join(holdings_text[start:end]))))
    tickers = {h["Ticker"] for h in holdings if h["Ticker"] != "-"}
    equity = {h["Ticker"] for h in holdings if h["Ticker"] != "-" and h["Asset Class"] == "Equity"}

    finra_path, *_ = _landing(runs.home, "shrt20210715.txt")
    expected_short = {r["symbolCode"]: int(r["currentShortPositionQuantity"]) for r in finra}
    short = dict(_query(runs.home, "select symbol, short_interest from raw.short_interest where _landing_file = ?",
                        [finra_path]))
    assert short == expected_short
    assert dict(_query(runs.home, "select symbol, short_interest from core.short_interest "
                                  "where settlement_date = '2021-07-15'")) == expected_short
    holdings_path, *_ = _landing(runs.home, "iShares_IWM_holdings_2026-05-05.csv")
    landed = {r[0] for r in _query(runs.home, "select symbol from raw.holdings where _landing_file = ? "
                                              "and symbol is not null", [holdings_path])}
    assert landed == tickers
    held = {r[0] for r in _query(runs.home, "select symbol from core.holdings where fund = 'IWM' "
                                            "and as_of_date = '2026-05-05'")}
    assert held == tickers
    bucket = _query(runs.home, "select symbols, holdings_as_of from marts.short_interest_by_bucket "
                               "where settlement_date = '2021-07-15' and bucket = 'small'")
    assert bucket == [(len(equity & set(short)), date(2026, 5, 5))]
    assert len(equity & set(short)) > 0


def test_a_workbook_whose_rows_moved_still_parses_by_labels(runs):
    pe_header = next(r for r in range(1, 120) if cell(f"C{r}") == "OPER P/E")
    pe_row = next(r for r in range(pe_header + 1, pe_header + 8) if cell(f"A{r}") == "S&P 500")
    pe, growth, peg = (cell(f"{col}{pe_row}") for col in "CDE")
    # in the dropped edition the P/E block and the quarterly block sit on other rows
    dropped = sheet_of(good_files()[("estimates", "sp-500-eps-est_moved.xlsx")])
    assert moved_rows(pe_row) != pe_row and cell(f"C{pe_row}", dropped) is None
    assert cell(f"C{moved_rows(pe_row)}", dropped) == pe and cell(f"C{moved_rows(pe_header)}", dropped) == "OPER P/E"
    path, status, *_ = _landing(runs.home, "sp-500-eps-est_moved.xlsx")
    assert status == "loaded"
    query = ("select metric, value from {table} where index_code = 'SP500' and as_of_date = '2025-09-30' "
             "and period = '2025' and metric in ('operating_pe', 'growth_5y', 'peg')")
    expected = {"operating_pe": pe, "growth_5y": pytest.approx(growth / 100), "peg": peg}
    assert dict(_query(runs.home, query.format(table="raw.estimates") + " and _landing_file = ?", [path])) == expected
    assert dict(_query(runs.home, query.format(table="core.index_estimates"))) == expected
    outlook = _query(runs.home, "select operating_pe, growth_5y, peg from marts.earnings_outlook "
                                "where as_of_date = '2025-09-30' and index_code = 'SP500'")
    assert outlook == [(pe, pytest.approx(growth / 100), peg)]


def _french_monthly(rel: str, factor: str) -> dict[date, float]:
    """``factor`` by month from the first table of a French-library CSV, read with plain splitting."""
    f = lines(rel)
    start = next(i for i, line in enumerate(f.items) if ",Mkt-RF," in line)
    names = [c.strip() for c in f.items[start].split(",")]
    out = {}
    for line in f.items[start + 1:]:
        cells = [c.strip() for c in line.split(",")]
        if not re.fullmatch(r"\d{6}", cells[0]):
            break
        out[date(int(cells[0][:4]), int(cells[0][4:]), 1)] = float(cells[names.index(factor)]) / 100
    return out


def test_french_csv_and_zip_files_land_in_core_and_the_spread_mart(runs):
    ff5 = _french_monthly(FF5_MONTHLY, "RMW")
    core = dict(_query(runs.home, "select period_start, value from core.factors where model = 'ff5' "
                                  "and frequency = 'monthly' and factor = 'RMW' and source = 'inbox'"))
    assert core == pytest.approx(ff5)
    smb = _french_monthly(FF3_MONTHLY, "SMB")
    mart = dict(_query(runs.home, "select month, ff_smb from marts.size_spread_monthly where pair = 'IWM/SPY' "
                                  "and month between '2024-01-01' and '2024-08-01'"))
    assert mart == pytest.approx({m: smb[m] for m in mart}) and len(mart) == 8
    ff3_path, *_ = _landing(runs.home, "F-F_Research_Data_Factors.CSV")
    assert dict(_query(runs.home, "select period_start, value from raw.factors where _landing_file = ? "
                                  "and factor = 'SMB'", [ff3_path])) == pytest.approx(smb)


# ----------------------------------------------------------------------------------------------
# the inbox scan and the quarantine folder on their own (no pipeline run)


def test_scan_skips_lock_and_hidden_files_and_reads_an_unlisted_fred_series_as_prices(tmp_path):
    home = Home(tmp_path).ensure()
    fred = lines(FRED_SP500)
    assert fred.line(1) == "observation_date,SP500"
    fred.set(1, "observation_date,WILL5000IND")  # a FRED index the symbol map does not know
    _drop(home, "prices", "WILL5000IND.csv", fred.bytes())
    _drop(home, "prices", "~$book.xlsx", b"\x00lock")
    _drop(home, "prices", ".DS_Store", b"\x00")
    batches = scan_inbox(home)
    assert [b.name for b in batches] == ["WILL5000IND.csv"]
    b = batches[0]
    assert b.error is None and b.format == "fred_csv"
    assert b.frame["symbol"].unique().to_list() == ["WILL5000IND"]
    assert b.frame.height == len(_fred_sp500())


def test_two_quarantined_files_of_the_same_name_do_not_overwrite_each_other(tmp_path):
    home = Home(tmp_path).ensure()
    first = Batch(source="inbox", dataset="prices", name="a b.csv", payload=b"one", format="unknown")
    second = Batch(source="inbox", dataset="prices", name="a_b.csv", payload=b"two", format="unknown")
    t1 = quarantine(home, "r1", first, ["bad one"])
    t2 = quarantine(home, "r1", second, ["bad two"])
    assert (t1.name, t2.name) == ("a_b.csv", "a_b-2.csv")
    assert t1.read_bytes() == b"one" and t2.read_bytes() == b"two"
    assert "- bad two" in t2.with_name("a_b-2.csv.reason.txt").read_text()
    assert "- bad one" in t1.with_name("a_b.csv.reason.txt").read_text()


def test_a_landing_file_that_cannot_be_written_fails_the_run_and_keeps_the_inbox_file(tmp_path):
    """Landing files are written beside the load; one that cannot be written fails the run before
    it commits, and the inbox file it came from stays where the user put it."""
    home = Home(tmp_path / "home").ensure()
    (dataset, name), payload = next((k, v) for k, v in good_files().items() if k[0] == "prices")
    _drop(home, dataset, name, payload)
    blocker = home.landing / "inbox"  # a plain file where the inbox's landing folder would be made
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        run_pipeline(AS_OF, "sample", home)
    assert (home.inbox / dataset / name).read_bytes() == payload
    assert _query(home, "select count(*) from meta.runs") == [(0,)]
    assert _query(home, "select count(*) from raw.prices") == [(0,)]


def test_files_outside_the_dataset_folders_are_named_and_left_where_they_are(tmp_path):
    """A file dropped at the top of the inbox, in a folder named after no dataset (a typo such as
    ``inbox/price/``) or in a folder below a dataset's: no run reads it, so the run names each one
    and where files belong, and leaves it untouched. Hidden files are not mentioned."""
    home = Home(tmp_path / "home").ensure()
    (dataset, name), payload = next((k, v) for k, v in good_files().items() if k[0] == "prices")
    stray = [home.inbox / "price" / name, home.inbox / "notes.txt", home.inbox / dataset / "old" / name]
    for path in [*stray, home.inbox / ".DS_Store"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
    result = run_pipeline(AS_OF, "sample", home)
    named = sorted(note.split(" ")[0] for note in result.inbox_notes)
    assert named == sorted(f"inbox/{p.relative_to(home.inbox)}" for p in stray)
    assert all("expected inbox/<dataset>/ with <dataset> one of prices, " in note for note in result.inbox_notes)
    assert all(p.read_bytes() == payload for p in stray)
    assert _query(home, "select count(*) from meta.landing_files where source = 'inbox'") == [(0,)]
