"""Inbox format detection and parsing against real files (tests/fixtures/, provenance in NOTICE).

Expected values are read from the raw fixture text with the csv/json modules (or, for the workbook,
from fixed cells with openpyxl), never through the parsers under test.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import zipfile
from datetime import date
from functools import lru_cache
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from inbox_cases import raw

from sources import formats
from sources.errors import BadInput
from sources.schemas import KEYS, SCHEMAS

FIX = Path(__file__).resolve().parents[1] / "fixtures"

SPY = "prices/yf_SPY_daily_2024-01-02_2026-08-21.csv"
IWM = "prices/yf_IWM_daily_2024-01-02_2026-08-21.csv"
MDY = "prices/yf_multiindex_MDY_daily_2024-01-02_2025-09-26.csv"
STOOQ = "prices/stooq_spy.us_2024-01-02_2025-01-29.txt"
FRED_SP500 = "prices/fred_SP500_daily_2016-2026.csv"
YAHOO_JSON = "prices/historical-QQQ-2020-01-01-to-2020-01-03.json"
CPIAUCSL = "cpi/fred_CPIAUCSL_monthly.csv"
CPILFESL = "cpi/fred_CPILFESL_monthly.csv"
CPI_EXCEL = "cpi/fred_CPIAUCSL_excel-resaved_vintage-2025-01-26.csv"
CPIAI = "cpi/datasets_cpi-us_cpiai.csv"
FEDFUNDS = "cpi/fred_series_observations_fedfunds_2023.json"
FINRA = "short_interest/finra_shrt20210715_excerpt_first71rows.txt"
IWM_HOLD = "holdings/iShares_IWM_holdings_2026-05-05.csv"
IVV_HOLD = "holdings/iShares_IVV_holdings_2026-06-19.csv"
FF3_M = "factors/F-F_Research_Data_Factors.CSV"
FF3_D = "factors/F-F_Research_Data_Factors_daily_2023-01-03_2024-08-30.CSV"
FF5_M = "factors/F-F_Research_Data_5_Factors_2x3.csv"
XLSX = "estimates/sp-500-eps-est_2025-12.xlsx"


def text(rel: str) -> str:
    return raw(rel).decode("utf-8-sig")


def rows(rel: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text(rel)), delimiter=delimiter))


def name(rel: str) -> str:
    return Path(rel).name


def assert_schema(df: pl.DataFrame, dataset: str) -> None:
    assert dict(df.schema) == SCHEMAS[dataset]
    assert df.filter(pl.struct(list(KEYS[dataset])).is_duplicated()).height == 0 or dataset == "holdings"
    assert df.equals(df.sort(list(KEYS[dataset]), nulls_last=True, maintain_order=True))


def one(df: pl.DataFrame, **where) -> dict:
    sel = df.filter(pl.all_horizontal([pl.col(k) == v for k, v in where.items()]))
    assert sel.height == 1, (where, sel)
    return sel.row(0, named=True)


def expect_bad(data: bytes, filename: str, *needles: str, dataset: str | None = None) -> BadInput:
    with pytest.raises(BadInput) as info:
        formats.parse(data, filename, dataset)
    message = str(info.value)
    assert filename in message
    for needle in needles:
        assert needle in message, (needle, message)
    return info.value


@pytest.fixture(scope="module")
def spy() -> pl.DataFrame:
    return formats.parse(raw(SPY), name(SPY))


@pytest.fixture(scope="module")
def workbook_frame() -> pl.DataFrame:
    return formats.parse(raw(XLSX), name(XLSX))


# ----------------------------------------------------------------------------------------------
# detection


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        (SPY, ("prices", "yfinance_flat")),
        (IWM, ("prices", "yfinance_flat")),
        (MDY, ("prices", "yfinance_multiindex")),
        (STOOQ, ("prices", "stooq_bulk")),
        (FRED_SP500, ("prices", "fred_csv")),
        (CPIAUCSL, ("cpi", "fred_csv")),
        (CPI_EXCEL, ("cpi", "fred_csv")),
        (CPIAI, ("cpi", "datasets_cpi_csv")),
        (FEDFUNDS, ("cpi", "fred_json")),
        (FINRA, ("short_interest", "finra_pipe")),
        (IWM_HOLD, ("holdings", "ishares_csv")),
        (IVV_HOLD, ("holdings", "ishares_csv")),
        (FF3_M, ("factors", "french_csv")),
        (FF3_D, ("factors", "french_csv")),
        (FF5_M, ("factors", "french_csv")),
        (XLSX, ("estimates", "spdji_eps_xlsx")),
    ],
)
@pytest.mark.parametrize("filename", ["real", "report.xlsx", "IWM.csv", "cpi.json"])
def test_detect_by_content_not_name(rel, expected, filename):
    assert formats.detect(raw(rel), name(rel) if filename == "real" else filename) == expected


def test_unknown_content_names_file_header_and_accepted_formats():
    data = b"when,what,how much\n2025-01-02,thing,3\n"
    err = expect_bad(data, "mystery.csv", "when,what,how much", "row 1")
    assert "Yahoo CSV" in str(err) and "FINRA" in str(err) and "iShares" in str(err)
    expect_bad(b'{"foo": 1}', "x.json", "foo")
    expect_bad(b"", "empty.csv", "empty")


def test_parse_with_wrong_dataset_is_refused():
    expect_bad(raw(SPY), "SPY.csv", "prices", dataset="cpi")


# ----------------------------------------------------------------------------------------------
# prices


def test_yfinance_flat_matches_raw_lines(spy):
    table = rows(SPY)
    assert table[0] == ["Date", "Close", "High", "Low", "Open", "Volume"]
    assert_schema(spy, "prices")
    assert spy.height == len(table) - 1
    assert spy["symbol"].unique().to_list() == ["SPY"]
    assert spy["adj_close"].null_count() == spy.height  # no Adj Close column in this layout
    for line in (table[1], table[300], table[-1]):
        got = one(spy, trade_date=date.fromisoformat(line[0]))
        assert got["close"] == float(line[1])
        assert got["high"] == float(line[2])
        assert got["low"] == float(line[3])
        assert got["open"] == float(line[4])
        assert got["volume"] == float(line[5])


def test_symbol_from_file_name():
    iwm = formats.parse(raw(IWM), name(IWM))
    assert iwm["symbol"].unique().to_list() == ["IWM"]
    assert formats.parse(raw(IWM), "^RUT.csv")["symbol"].unique().to_list() == ["^RUT"]
    assert formats.parse(raw(IWM), "iwm.csv")["symbol"].unique().to_list() == ["IWM"]
    expect_bad(raw(IWM), "download.csv", "symbol")


def test_yfinance_multiindex_adj_close_is_second_column():
    table = rows(MDY)
    assert table[0][:3] == ["Price", "Price", "Close"]
    df = formats.parse(raw(MDY), "SPY.csv")  # misleading name: the symbol comes from the Ticker row
    assert_schema(df, "prices")
    assert df.height == len(table) - 4
    assert df["symbol"].unique().to_list() == [table[1][1]] == ["MDY"]
    for line in (table[4], table[-1]):
        got = one(df, trade_date=date.fromisoformat(line[0][:10]))
        assert (got["adj_close"], got["close"], got["high"], got["low"], got["open"], got["volume"]) == tuple(
            float(x) for x in line[1:7]
        )


def test_fred_sp500_drops_holiday_blanks():
    table = rows(FRED_SP500)
    df = formats.parse(raw(FRED_SP500), name(FRED_SP500))
    assert_schema(df, "prices")
    blanks = [r for r in table[1:] if r[1].strip() == ""]
    assert len(blanks) == 95
    assert df.height == len(table) - 1 - len(blanks)
    assert df["symbol"].unique().to_list() == ["^GSPC"]
    assert df.filter(pl.col("trade_date") == date.fromisoformat(blanks[0][0])).height == 0
    assert df.select(pl.col("open").null_count(), pl.col("high").null_count(), pl.col("low").null_count()).row(0) == (
        df.height,
    ) * 3
    assert one(df, trade_date=date.fromisoformat(table[-1][0]))["close"] == float(table[-1][1])
    # the same file is a price series even when the caller says so explicitly
    assert formats.parse(raw(FRED_SP500), "x.csv", dataset="prices").height == df.height


def test_stooq_bulk_layout():
    table = rows(STOOQ)
    assert table[0][:3] == ["<TICKER>", "<PER>", "<DATE>"]
    df = formats.parse(raw(STOOQ), "QQQ.csv")  # the symbol is a column
    assert_schema(df, "prices")
    assert df.height == len(table) - 1
    assert df["symbol"].unique().to_list() == ["SPY"]
    line = table[100]
    got = one(df, trade_date=date(int(line[2][:4]), int(line[2][4:6]), int(line[2][6:])))
    assert (got["open"], got["high"], got["low"], got["close"], got["volume"]) == tuple(float(x) for x in line[4:9])
    assert got["adj_close"] is None


def test_stooq_daily_csv_from_real_rows():
    table = rows(STOOQ)
    out = ["Date,Open,High,Low,Close,Volume"]
    for r in table[1:]:
        out.append(f"{r[2][:4]}-{r[2][4:6]}-{r[2][6:]},{r[4]},{r[5]},{r[6]},{r[7]},{r[8]}")
    data = ("\n".join(out) + "\n").encode()
    assert formats.detect(data, "prices.json") == ("prices", "stooq_csv")
    df = formats.parse(data, "spy.us.csv")
    bulk = formats.parse(raw(STOOQ), name(STOOQ))
    assert df.equals(bulk)


def test_yahoo_csv_from_recorded_response():
    envelope = json.loads(text(YAHOO_JSON))
    body = envelope["response"]["body"]
    line = next(csv.reader(io.StringIO(body.splitlines()[1])))
    data = body.encode()
    assert formats.detect(data, "holdings.csv") == ("prices", "yahoo_csv")
    df = formats.parse(data, "QQQ.csv")
    assert_schema(df, "prices")
    got = df.row(0, named=True)
    assert got["symbol"] == "QQQ" and got["trade_date"] == date.fromisoformat(line[0])
    assert (got["open"], got["high"], got["low"], got["close"], got["adj_close"], got["volume"]) == tuple(
        float(x) for x in line[1:7]
    )


def test_alphavantage_newest_first(spy):
    table = rows(SPY)
    out = ["timestamp,open,high,low,close,volume"]
    for r in reversed(table[1:]):
        out.append(f"{r[0]},{r[4]},{r[2]},{r[3]},{r[1]},{r[5]}")
    data = ("\n".join(out) + "\n").encode()
    assert formats.detect(data, "SPY.txt") == ("prices", "alphavantage_csv")
    df = formats.parse(data, "daily_SPY.csv")
    assert df.equals(spy)


def test_wide_closes_drop_empty_cells(spy):
    spy_rows, iwm_rows = rows(SPY)[1:], {r[0]: r[1] for r in rows(IWM)[1:]}
    out = ["Date,SPY,IWM"]
    for i, r in enumerate(spy_rows):
        out.append(f"{r[0]},{r[1]},{'' if i == 5 else iwm_rows[r[0]]}")
    data = ("\n".join(out) + "\n").encode()
    assert formats.detect(data, "x.csv") == ("prices", "wide_closes")
    df = formats.parse(data, "closes.csv")
    assert_schema(df, "prices")
    assert df.filter(pl.col("symbol") == "SPY").height == len(spy_rows)
    assert df.filter(pl.col("symbol") == "IWM").height == len(spy_rows) - 1
    assert df.filter(pl.col("symbol") == "IWM", pl.col("trade_date") == date.fromisoformat(spy_rows[5][0])).height == 0
    r = spy_rows[10]
    assert one(df, symbol="IWM", trade_date=date.fromisoformat(r[0]))["close"] == float(iwm_rows[r[0]])
    assert df.select(pl.col("open", "high", "low", "adj_close", "volume").null_count().sum()).row(0) == (df.height,) * 5


def test_month_day_year_dates(spy):
    lines = text(SPY).splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        y, m, d = line[:10].split("-")
        out.append(f"{int(m)}/{int(d)}/{y}{line[10:]}")
    df = formats.parse(("\n".join(out) + "\n").encode(), "SPY.csv")
    assert df.equals(spy)


def test_unsorted_and_exact_duplicates(spy):
    lines = text(SPY).splitlines()
    body = lines[1:] + lines[1:40]  # 39 exact duplicates
    random.Random(7).shuffle(body)
    df = formats.parse(("\n".join([lines[0], *body]) + "\r\n").encode(), "SPY.csv")
    assert df.equals(spy)


def test_conflicting_duplicate_names_both_lines():
    lines = text(SPY).splitlines()
    fields = lines[20].split(",")
    fields[1] = str(float(fields[1]) + 1)
    data = ("\n".join([*lines, ",".join(fields)]) + "\n").encode()
    err = expect_bad(data, "SPY.csv", "lines 21 and", f"{len(lines) + 1}", "close")
    assert err.row == len(lines) + 1


def test_corrupted_close_names_file_line_field_and_value():
    lines = text(SPY).splitlines()
    fields = lines[41].split(",")  # line 42 of the file
    fields[1] = "abc"
    lines[41] = ",".join(fields)
    err = expect_bad(("\n".join(lines) + "\n").encode(), "SPY_bad.csv", "row 42", "'Close'", "'abc'")
    assert (err.row, err.field, err.found) == (42, "Close", "abc")


def test_truncated_row_names_line():
    lines = text(SPY).splitlines()
    lines[99] = ",".join(lines[99].split(",")[:3])  # line 100 loses Low, Open, Volume
    err = expect_bad(("\n".join(lines) + "\n").encode(), "SPY_trunc.csv", "row 100", "'Low'", "truncated")
    assert err.row == 100


def test_bad_date_names_line():
    lines = text(SPY).splitlines()
    lines[9] = "2024-13-45" + lines[9][10:]
    expect_bad(("\n".join(lines) + "\n").encode(), "SPY.csv", "row 10", "'Date'", "2024-13-45")


def test_multiindex_bad_cell_names_line_and_column():
    lines = text(MDY).splitlines()
    fields = lines[10].split(",")
    fields[2] = "n/a?"
    lines[10] = ",".join(fields)
    expect_bad(("\n".join(lines) + "\n").encode(), "MDY.csv", "row 11", "Close (MDY)", "n/a?")


def test_stooq_bad_volume_names_line():
    lines = text(STOOQ).splitlines()
    fields = lines[4].split(",")
    fields[8] = "12x"
    lines[4] = ",".join(fields)
    expect_bad(("\n".join(lines) + "\n").encode(), "spy.us.txt", "row 5", "<VOL>", "12x")


# ----------------------------------------------------------------------------------------------
# cpi


@pytest.mark.parametrize(("rel", "series"), [(CPIAUCSL, "CPIAUCSL"), (CPILFESL, "CPILFESL")])
def test_fred_cpi_csv_keeps_unpublished_october_2025(rel, series):
    table = rows(rel)
    assert table[0] == ["date", "value"]
    df = formats.parse(raw(rel), name(rel))
    assert_schema(df, "cpi")
    assert df.height == len(table) - 1
    assert df["series_id"].unique().to_list() == [series]
    assert df["realtime_start"].null_count() == df.height
    october = one(df, ref_month=date(2025, 10, 1))
    assert october["value"] is None
    assert [r for r in table if r[0] == "2025-10-01"] == [["2025-10-01", ""]]
    for r in (table[1], table[-3], table[-1]):
        assert one(df, ref_month=date.fromisoformat(r[0]))["value"] == float(r[1])


def test_fred_cpi_series_from_header_and_excel_dates():
    table = rows(CPI_EXCEL)
    assert table[0] == ["observation_date", "CPIAUCSL"]
    assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", table[1][0])
    df = formats.parse(raw(CPI_EXCEL), "vintage.csv")  # the series id comes from the header
    assert_schema(df, "cpi")
    assert df.height == len(table) - 1
    assert df["series_id"].unique().to_list() == ["CPIAUCSL"]
    for r in (table[1], table[123], table[-1]):
        m, d, y = (int(x) for x in r[0].split("/"))
        assert one(df, ref_month=date(y, m, d))["value"] == float(r[1])
    fred = formats.parse(raw(CPIAUCSL), name(CPIAUCSL))
    # the Jan-2025 vintage and the later file agree on an old, unrevised month? (both are real)
    assert one(df, ref_month=date(1980, 1, 1))["value"] == one(fred, ref_month=date(1980, 1, 1))["value"]


def test_fred_cpi_csv_without_series_in_name_or_header():
    expect_bad(raw(CPIAUCSL), "download.csv", "series")


def test_datasets_cpi_is_bls_nsa_and_october_2025_absent():
    table = rows(CPIAI)
    assert table[0] == ["Date", "Index", "Inflation"]
    df = formats.parse(raw(CPIAI), "cpi.json")
    assert_schema(df, "cpi")
    assert df.height == len(table) - 1
    assert df["series_id"].unique().to_list() == ["CUUR0000SA0"]
    assert df.filter(pl.col("ref_month") == date(2025, 10, 1)).height == 0
    assert not any(r[0] == "2025-10-01" for r in table)
    for r in (table[1], table[-1]):
        assert one(df, ref_month=date.fromisoformat(r[0]))["value"] == float(r[1])


def test_fred_json_dot_is_null_and_vintage_kept():
    obj = json.loads(text(FEDFUNDS))
    df = formats.parse(raw(FEDFUNDS), "FEDFUNDS.json")
    assert_schema(df, "cpi")
    assert df.height == obj["count"] == len(obj["observations"])
    last = obj["observations"][-1]
    assert last["value"] == "."
    got = one(df, ref_month=date.fromisoformat(last["date"]))
    assert got["value"] is None and got["realtime_start"] == date.fromisoformat(last["realtime_start"])
    first = obj["observations"][0]
    assert one(df, ref_month=date.fromisoformat(first["date"]))["value"] == float(first["value"])
    assert df["series_id"].unique().to_list() == ["FEDFUNDS"]
    expect_bad(raw(FEDFUNDS), "observations.json", "series")


def test_fred_json_bad_value_names_observation():
    obj = json.loads(text(FEDFUNDS))
    obj["observations"][3]["value"] = "1,2x"
    err = expect_bad(json.dumps(obj).encode(), "FEDFUNDS.json", "observations[3].value", "1,2x")
    assert err.field == "observations[3].value"


def test_bls_json_built_from_real_values():
    table = {r[0]: r[1] for r in rows(CPIAI)[1:]}
    data = []
    for month in range(12, 0, -1):  # BLS lists newest first
        key = f"2025-{month:02d}-01"
        data.append({"year": "2025", "period": f"M{month:02d}", "periodName": "x", "value": table.get(key, "-"),
                     "footnotes": [{}]})
    data.insert(0, {"year": "2025", "period": "M13", "periodName": "Annual", "value": "999.0", "footnotes": []})
    body = {"status": "REQUEST_SUCCEEDED", "responseTime": 1, "message": [],
            "Results": {"series": [{"seriesID": "CUUR0000SA0", "data": data}]}}
    payload = json.dumps(body).encode()
    assert formats.detect(payload, "prices.csv") == ("cpi", "bls_json")
    df = formats.parse(payload, "bls.json")
    assert_schema(df, "cpi")
    assert df.height == 12  # M13 skipped
    assert one(df, ref_month=date(2025, 10, 1))["value"] is None
    assert one(df, ref_month=date(2025, 9, 1))["value"] == float(table["2025-09-01"])
    assert 999.0 not in df["value"].to_list()


# ----------------------------------------------------------------------------------------------
# short interest


def test_finra_pipe_values_and_sentinel():
    table = rows(FINRA, "|")
    header = table[0]
    df = formats.parse(raw(FINRA), "prices.csv")
    assert_schema(df, "short_interest")
    assert df.height == len(table) - 1 == 71
    by_symbol = {r[header.index("symbolCode")]: dict(zip(header, r)) for r in table[1:]}
    aapl = by_symbol["AAPL"]
    got = one(df, symbol="AAPL")
    assert got["settlement_date"] == date.fromisoformat(aapl["settlementDate"])
    assert got["short_interest"] == int(aapl["currentShortPositionQuantity"])
    assert got["prior_short_interest"] == int(aapl["previousShortPositionQuantity"])
    assert got["avg_daily_volume"] == int(aapl["averageDailyVolumeQuantity"])
    assert got["days_to_cover"] == float(aapl["daysToCoverQuantity"])
    assert got["issue_name"] == aapl["issueName"] and got["market"] == aapl["marketClassCode"]
    sentinel = [s for s, r in by_symbol.items() if r["daysToCoverQuantity"] == "999.99"]
    assert len(sentinel) == 7
    assert sorted(df.filter(pl.col("days_to_cover").is_null())["symbol"].to_list()) == sorted(sentinel)


def test_finra_json_equals_pipe_file():
    table = rows(FINRA, "|")
    records = [dict(zip(table[0], r)) for r in table[1:]]
    for rec in records:  # the API sends numbers as JSON numbers
        for key in ("currentShortPositionQuantity", "previousShortPositionQuantity", "averageDailyVolumeQuantity"):
            rec[key] = int(rec[key])
        rec["daysToCoverQuantity"] = float(rec["daysToCoverQuantity"])
    payload = json.dumps(records[::-1]).encode()
    assert formats.detect(payload, "shrt.txt") == ("short_interest", "finra_json")
    assert formats.parse(payload, "finra.json").equals(formats.parse(raw(FINRA), name(FINRA)))


def test_finra_bad_quantity_names_line():
    lines = text(FINRA).splitlines()
    lines[7] = lines[7].replace("|", "|x", 5).replace("|x", "|", 4)  # corrupt the 6th field of line 8
    assert "|x" in lines[7]
    expect_bad(("\n".join(lines) + "\n").encode(), "shrt.txt", "row 8", "currentShortPositionQuantity")


# ----------------------------------------------------------------------------------------------
# holdings


def _holding_rows(rel: str) -> tuple[list[str], list[list[str]]]:
    table = rows(rel)
    start = next(i for i, r in enumerate(table) if r and r[0] == "Ticker")
    body = []
    for r in table[start + 1 :]:
        if not r or not "".join(r).strip():
            break
        body.append(r)
    return table[start], body


def _num(s: str) -> float | None:
    return None if s == "-" else float(s.replace(",", ""))


def test_ishares_older_layout_iwm():
    header, body = _holding_rows(IWM_HOLD)
    df = formats.parse(raw(IWM_HOLD), name(IWM_HOLD))
    assert_schema(df, "holdings")
    assert df.height == len(body) == 1929
    assert df["fund"].unique().to_list() == ["IWM"]
    assert df["as_of_date"].unique().to_list() == [date(2026, 5, 5)]
    be = dict(zip(header, body[0]))
    got = one(df, symbol=be["Ticker"])
    assert got["name"] == be["Name"] and got["sector"] == be["Sector"] and got["asset_class"] == be["Asset Class"]
    assert got["market_value"] == _num(be["Market Value"])
    assert got["weight"] == pytest.approx(_num(be["Weight (%)"]) / 100)
    assert got["shares"] == _num(be["Quantity"])
    # cash and futures are kept; '-' tickers are null
    assert df.filter(pl.col("asset_class") == "Futures").height == sum(r[3] == "Futures" for r in body)
    assert df["symbol"].null_count() == sum(r[0] == "-" for r in body) == 3
    # the real file repeats a ticker (a share and its CVR): both kept
    assert df.filter(pl.col("symbol") == "ADRO").height == 2
    assert df["weight"].sum() == pytest.approx(sum(_num(r[5]) for r in body) / 100)


def test_ishares_fund_from_first_line_and_name_conflict():
    df = formats.parse(raw(IVV_HOLD), "holdings.csv")
    assert df["fund"].unique().to_list() == ["IVV"]
    assert df["as_of_date"].unique().to_list() == [date(2026, 6, 19)]
    expect_bad(raw(IVV_HOLD), "iShares_IWM_holdings_2026-06-19.csv", "IWM", "row 1")


def test_ishares_newer_layout_market_weight():
    header, body = _holding_rows(IVV_HOLD)
    col = {h: i for i, h in enumerate(header)}
    new_header = ["Ticker", "Name", "Type", "Sector", "Asset Class", "Market Value", "Notional Value", "Quantity",
                  "Price", "Location", "Exchange", "Currency", "FX Rate", "Market Currency", "Accrual Date",
                  "Notional Weight", "Market Weight"]
    out = io.StringIO()
    lines = text(IVV_HOLD).splitlines()
    preamble = lines[: next(i for i, line in enumerate(lines) if line.startswith("Ticker,"))]
    out.write("\n".join(preamble) + "\n")
    out.write(",".join(new_header) + "\n")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for r in body:
        values = {h: r[col[h]] for h in header if h in col}
        values["Type"] = "EQUITY" if r[col["Asset Class"]] == "Equity" else "CASH"
        values["Market Weight"] = r[col["Weight (%)"]]
        values["Notional Weight"] = r[col["Weight (%)"]]
        writer.writerow([values[h] for h in new_header])
    out.write("\n\"The content contained herein is owned or licensed by BlackRock.\"\n")
    data = out.getvalue().encode()
    assert formats.detect(data, "x.json") == ("holdings", "ishares_csv")
    assert formats.parse(data, "IVV.csv").equals(formats.parse(raw(IVV_HOLD), name(IVV_HOLD)))


def test_ishares_bad_number_names_line():
    lines = text(IWM_HOLD).splitlines()
    idx = next(i for i, line in enumerate(lines) if line.startswith('"CRDO"'))
    lines[idx] = lines[idx].replace('"741,955,358.56"', '"7x1"', 1)
    err = expect_bad(("\n".join(lines) + "\n").encode(), "IWM.csv", f"row {idx + 1}", "Market Value", "7x1")
    assert err.row == idx + 1


# ----------------------------------------------------------------------------------------------
# factors


def _ff_table(rel: str) -> tuple[list[str], list[list[str]]]:
    lines = text(rel).splitlines()
    h = next(i for i, line in enumerate(lines) if re.match(r"^\s*(Date)?\s*,\s*Mkt-RF", line))
    header = [c.strip() for c in lines[h].split(",")]
    body = []
    for line in lines[h + 1 :]:
        if not re.match(r"^\s*\d{6,8}\s*,", line):
            break
        body.append([c.strip() for c in line.split(",")])
    return header, body


def test_french_monthly_excludes_annual_block():
    header, body = _ff_table(FF3_M)
    assert header == ["Date", "Mkt-RF", "SMB", "HML", "RF"]
    assert "Annual Factors" in text(FF3_M)
    df = formats.parse(raw(FF3_M), "daily.json")
    assert_schema(df, "factors")
    assert df.height == len(body) * 4 == 1178 * 4
    assert set(df["model"].unique()) == {"ff3"} and set(df["frequency"].unique()) == {"monthly"}
    last = body[-1]
    assert last[0] == "202408"
    for factor, value in zip(header[1:], last[1:]):
        assert one(df, period_start=date(2024, 8, 1), factor=factor)["value"] == pytest.approx(float(value) / 100)
    assert df["period_start"].max() == date(2024, 8, 1)
    assert df.filter(pl.col("period_start").dt.day() != 1).height == 0


def test_french_daily_original_preamble_and_footer():
    header, body = _ff_table(FF3_D)
    assert header[0] == ""
    df = formats.parse(raw(FF3_D), name(FF3_D))
    assert df.height == len(body) * 4
    assert set(df["frequency"].unique()) == {"daily"}
    r = body[57]
    d = date(int(r[0][:4]), int(r[0][4:6]), int(r[0][6:]))
    assert one(df, period_start=d, factor="RF")["value"] == pytest.approx(float(r[4]) / 100)
    assert one(df, period_start=d, factor="Mkt-RF")["value"] == pytest.approx(float(r[1]) / 100)


def test_french_five_factor_model():
    header, body = _ff_table(FF5_M)
    df = formats.parse(raw(FF5_M), name(FF5_M))
    assert set(df["model"].unique()) == {"ff5"}
    assert set(df["factor"].unique()) == set(header[1:]) == {"Mkt-RF", "SMB", "HML", "RMW", "CMA", "RF"}
    assert df.height == len(body) * 6


def test_french_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("F-F_Research_Data_Factors.CSV", raw(FF3_M))
    data = buf.getvalue()
    assert formats.detect(data, "F-F_Research_Data_Factors.csv") == ("factors", "french_zip")
    assert formats.parse(data, "F-F_Research_Data_Factors_CSV.zip").equals(formats.parse(raw(FF3_M), "ff.csv"))


def test_french_corrupted_value_and_row():
    lines = text(FF3_M).splitlines()
    lines[6] = lines[6].replace("-0.03", "abc", 1)  # line 7: 192612, SMB
    assert lines[6].startswith("192612,") and "abc" in lines[6]
    expect_bad(("\n".join(lines) + "\n").encode(), "ff.csv", "row 7", "'SMB'", "abc")
    lines = text(FF3_M).splitlines()
    lines[9] = ",".join(lines[9].split(",")[:3])
    expect_bad(("\n".join(lines) + "\n").encode(), "ff.csv", "row 10", "HML")


# ----------------------------------------------------------------------------------------------
# estimates


@lru_cache(maxsize=1)
def _sheet_cells() -> dict[str, object]:
    wb = openpyxl.load_workbook(FIX / XLSX, read_only=True, data_only=True)
    ws = wb["ESTIMATES&PEs"]
    cells = {}
    for row in ws.iter_rows(min_row=1, max_row=170):
        for c in row:
            if getattr(c, "coordinate", None) and c.value is not None:
                cells[c.coordinate] = c.value
    wb.close()
    return cells


def test_workbook_values_by_label(workbook_frame):
    df = workbook_frame
    cells = _sheet_cells()
    assert_schema(df, "estimates")
    assert cells["A2"].date() == date(2025, 9, 30)
    assert df["as_of_date"].unique().to_list() == [date(2025, 9, 30)]
    # the P/E block: header cells and the S&P 500 row as they stand in this edition
    assert (cells["C55"], cells["C56"], cells["D56"], cells["E55"], cells["A57"]) == (
        "2025 EST", "OPER P/E", "GROWTH %", "PEG", "S&P 500")
    for code, (pe, growth, peg) in {"SP500": "CDE", "SP400": "GHI", "SP600": "KLM"}.items():
        assert one(df, index_code=code, metric="operating_pe", period="2025")["value"] == cells[f"{pe}57"]
        assert one(df, index_code=code, metric="growth_5y", period="2025")["value"] == pytest.approx(
            cells[f"{growth}57"] / 100)
        assert one(df, index_code=code, metric="peg", period="2025")["value"] == cells[f"{peg}57"]
    assert one(df, index_code="SP500", metric="growth_5y", period="2025")["value"] == pytest.approx(0.1611, abs=1e-4)
    # quarterly block
    assert cells["A123"] == "12/31/2026" and cells["A129"] == "6/30/2025 (Prelim.)"
    q = {"operating_eps": "C", "reported_eps": "D", "operating_eps_12m": "I", "reported_eps_12m": "J"}
    for row, period in ((123, "Q4 2026"), (129, "Q2 2025"), (138, "Q3 2023")):
        for metric, column in q.items():
            assert one(df, index_code="SP500", metric=metric, period=period)["value"] == cells[f"{column}{row}"]
    assert one(df, metric="operating_eps", period="Q4 2008")["value"] == -0.09  # the only negative quarter
    # calendar-year estimates from the OBSERVATION block's Current row
    assert (cells["A81"], cells["B81"], cells["F81"], cells["A88"]) == ("OBSERVATION", "2025E", "2026E", "Current")
    assert one(df, index_code="SP500", metric="operating_eps", period="2025")["value"] == cells["B88"]
    assert one(df, index_code="SP500", metric="operating_eps", period="2026")["value"] == cells["F88"]
    assert formats.edition_notice(raw(XLSX)) is None


def _synthetic_edition(notice: str | None = None) -> bytes:
    """A workbook with the same labels as the real edition but moved rows and columns, and real values."""
    c = _sheet_cells()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "ESTIMATES&PEs"
    ws["A1"] = notice or "S&P Dow Jones Indices"
    ws["B3"] = c["A2"]
    r = 12  # P/E block, moved down and right by one column
    for k, (label, col) in enumerate((("S&P 500", 3), ("MIDCAP", 8), ("SMALLCAP", 13))):
        ws.cell(r, col, label)
        ws.cell(r + 1, col, "2026 EST")
        ws.cell(r + 2, col, "OPER P/E")
        ws.cell(r + 2, col + 1, "GROWTH %")
        ws.cell(r + 1, col + 2, "PEG")
        src = "CDE GHI KLM".split()[k]
        for j in range(3):
            ws.cell(r + 3, col + j, c[f"{src[j]}57"])
    ws.cell(r + 3, 1, "S&P 500")
    ws.cell(r + 4, 1, "Energy")
    ws.cell(r + 4, 3, 1.0)
    r = 30  # observation block
    ws.cell(r, 1, "OBSERVATION")
    ws.cell(r, 2, "2026E")
    ws.cell(r, 3, "Q1 2026E")
    ws.cell(r, 4, "2027E")
    ws.cell(r + 1, 1, "Current")
    ws.cell(r + 1, 2, c["B88"])
    ws.cell(r + 1, 3, 1.0)
    ws.cell(r + 1, 4, c["F88"])
    r = 40  # quarterly block with the 12-month columns first
    ws.cell(r, 1, "QUARTER")
    ws.cell(r, 2, "12 MONTH EARNINGS PER SHARE")
    ws.cell(r + 1, 2, "OPERATING")
    ws.cell(r + 1, 3, "AS REPORTED")
    ws.cell(r, 5, "OPERATING")
    ws.cell(r + 1, 5, "EARNINGS")
    ws.cell(r + 2, 5, "PER SHR")
    ws.cell(r, 6, "AS REPORTED")
    ws.cell(r + 1, 6, "EARNINGS")
    ws.cell(r + 2, 6, "PER SHR")
    ws.cell(r + 4, 1, "ESTIMATES")
    for k, src in enumerate((123, 129)):
        ws.cell(r + 5 + k, 1, c[f"A{src}"])
        ws.cell(r + 5 + k, 2, c[f"I{src}"])
        ws.cell(r + 5 + k, 3, c[f"J{src}"])
        ws.cell(r + 5 + k, 5, c[f"C{src}"])
        ws.cell(r + 5 + k, 6, c[f"D{src}"])
    ws.cell(r + 8, 1, "ACTUALS")
    ws.cell(r + 9, 1, c["A161"])  # a date cell (2017-12-31)
    ws.cell(r + 9, 5, c["C161"])
    ws.cell(r + 11, 1, "Operating earnings:")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_workbook_cells_found_by_label_when_moved(workbook_frame):
    data = _synthetic_edition()
    assert formats.detect(data, "prices.csv") == ("estimates", "spdji_eps_xlsx")
    df = formats.parse(data, "edition.xlsx")
    real = workbook_frame
    for code in ("SP500", "SP400", "SP600"):
        for metric in ("operating_pe", "growth_5y", "peg"):
            # (openpyxl may write a float one unit in the last place off: compare to 1e-12)
            assert one(df, index_code=code, metric=metric, period="2026")["value"] == pytest.approx(one(
                real, index_code=code, metric=metric, period="2025")["value"], rel=1e-12)
    for metric in ("operating_eps", "reported_eps", "operating_eps_12m", "reported_eps_12m"):
        for period in ("Q4 2026", "Q2 2025"):
            assert one(df, metric=metric, period=period)["value"] == pytest.approx(
                one(real, metric=metric, period=period)["value"], rel=1e-12)
    assert one(df, metric="operating_eps", period="Q4 2017")["value"] == one(
        real, metric="operating_eps", period="Q4 2017")["value"]
    assert one(df, metric="operating_eps", period="2026")["value"] == one(real, metric="operating_eps", period="2025")[
        "value"]
    assert df.filter(pl.col("period").str.contains("Q1 2026") & (pl.col("value") == 1.0)).height == 0
    assert df.height == 9 + 4 * 2 + 1 + 2
    assert formats.edition_notice(data) is None
    notice = "NOTE: this report will be discontinued after the December edition"
    assert formats.edition_notice(_synthetic_edition(notice)) == notice


def test_workbook_bad_cell_names_cell():
    c = _sheet_cells()
    wb = openpyxl.load_workbook(io.BytesIO(_synthetic_edition()))
    wb.active["E45"] = "n.a."  # operating EPS of the first quarter row
    buf = io.BytesIO()
    wb.save(buf)
    err = expect_bad(buf.getvalue(), "edition.xlsx", "row 45", "E45", "n.a.")
    assert err.row == 45 and c["A123"] == "12/31/2026"


def test_generic_estimates_csv_roundtrip(workbook_frame):
    out = io.StringIO()
    out.write("index_code,as_of_date,metric,period,value\n")
    for r in workbook_frame.iter_rows(named=True):
        out.write(f"{r['index_code']},{r['as_of_date']},{r['metric']},{r['period']},{r['value']!r}\n")
    data = out.getvalue().encode()
    assert formats.detect(data, "sp-500-eps-est.xlsx") == ("estimates", "generic_estimates_csv")
    assert formats.parse(data, "vendor.csv").equals(workbook_frame)
    lines = out.getvalue().splitlines()
    lines[3] = lines[3].rsplit(",", 2)[0] + ",2025 Q4," + lines[3].rsplit(",", 1)[1]
    expect_bad(("\n".join(lines) + "\n").encode(), "vendor.csv", "row 4", "'period'", "2025 Q4")
