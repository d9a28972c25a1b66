"""Inbox files for the pipeline-level inbox tests, built from the real fixtures in tests/fixtures/.

``bad_cases(today)`` corrupts the real files one way each and says what the reason file must name;
``good_files()`` are real files (one lightly edited workbook whose rows moved) that must load.
Every expectation (line numbers, cells, values) is worked out here from the corrupted text itself,
with plain string, csv and regex handling, never with the parsers under test.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

FIX = Path(__file__).resolve().parent / "fixtures"

SPY = "prices/yf_SPY_daily_2024-01-02_2026-08-21.csv"
IWM = "prices/yf_IWM_daily_2024-01-02_2026-08-21.csv"
MDY = "prices/yf_multiindex_MDY_daily_2024-01-02_2025-09-26.csv"
STOOQ = "prices/stooq_spy.us_2024-01-02_2025-01-29.txt"
FRED_SP500 = "prices/fred_SP500_daily_2016-2026.csv"
YAHOO_V7 = "prices/historical-QQQ-2020-01-01-to-2020-01-03.json"
CPIAUCSL = "cpi/fred_CPIAUCSL_monthly.csv"
CPILFESL = "cpi/fred_CPILFESL_monthly.csv"
CPI_EXCEL = "cpi/fred_CPIAUCSL_excel-resaved_vintage-2025-01-26.csv"
CPIAI = "cpi/datasets_cpi-us_cpiai.csv"
FEDFUNDS = "cpi/fred_series_observations_fedfunds_2023.json"
FINRA = "short_interest/finra_shrt20210715_excerpt_first71rows.txt"
IWM_HOLDINGS = "holdings/iShares_IWM_holdings_2026-05-05.csv"
IVV_HOLDINGS = "holdings/iShares_IVV_holdings_2026-06-19.csv"
FF3_MONTHLY = "factors/F-F_Research_Data_Factors.CSV"
FF5_MONTHLY = "factors/F-F_Research_Data_5_Factors_2x3.csv"
WORKBOOK = "estimates/sp-500-eps-est_2025-12.xlsx"

SHEET = "xl/worksheets/sheet1.xml"  # ESTIMATES&PEs, the first sheet of the workbook
STRINGS = "xl/sharedStrings.xml"


@lru_cache(maxsize=None)
def raw(rel: str) -> bytes:
    return (FIX / rel).read_bytes()


def text(rel: str) -> str:
    """The fixture as text, BOM kept (so that writing it back gives the same bytes)."""
    return raw(rel).decode("utf-8")


class Lines:
    """A text file as a list of lines; ``line(n)`` is the 1-based line ``n`` without its ending.
    Line endings (LF or CRLF) and a leading BOM are kept when the text is put back together."""

    def __init__(self, body: str) -> None:
        self.bom = "\ufeff" if body.startswith("\ufeff") else ""
        body = body[len(self.bom):]
        self.eol = "\r\n" if "\r\n" in body else "\n"
        self.final = body.endswith(self.eol)
        self.items = body[: -len(self.eol)].split(self.eol) if self.final else body.split(self.eol)

    def line(self, n: int) -> str:
        return self.items[n - 1]

    def set(self, n: int, value: str) -> None:
        self.items[n - 1] = value

    def insert(self, n: int, value: str) -> None:
        """Insert ``value`` so that it becomes line ``n``."""
        self.items.insert(n - 1, value)

    def find(self, prefix: str) -> int:
        """The 1-based number of the only line starting with ``prefix``."""
        hits = [i + 1 for i, s in enumerate(self.items) if s.startswith(prefix)]
        assert len(hits) == 1, (prefix, hits)
        return hits[0]

    def bytes(self) -> bytes:
        body = self.eol.join(self.items) + (self.eol if self.final else "")
        return (self.bom + body).encode("utf-8")


def lines(rel: str) -> Lines:
    return Lines(text(rel))


@dataclass(frozen=True)
class Case:
    """One malformed inbox file and the reason it must be quarantined with.

    ``message`` must appear in the reason; ``row``/``field``/``found`` are the line (or sheet row),
    the field or cell and what was found, exactly as the reason file's ``where:`` block must show
    them (None: that line must be absent); ``expected`` must appear in its ``expected:`` line.
    ``by`` is what refuses the file: the parser (``BadInput``) or the dataset's landing suite (whose
    reason is the failed expectation, on column ``field``, and which has no ``where:`` block)."""

    id: str
    dataset: str
    name: str
    payload: bytes
    message: str
    row: int | None = None
    field: str | None = None
    found: object = None
    expected: str | None = None
    by: str = "parser"


# ----------------------------------------------------------------------------------------------
# workbook edits (on the xlsx XML, so that cached cell values survive)


def zip_of(members: dict[str, bytes], stamps: dict[str, tuple] | None = None) -> bytes:
    """A zip of ``members``, byte for byte the same on every call (fixed member time stamps)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in members.items():
            info = zipfile.ZipInfo(name, date_time=(stamps or {}).get(name, (2024, 10, 12, 0, 0, 0)))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, body)
    return out.getvalue()


def rewrite_zip(data: bytes, edits: dict[str, Callable[[str], str]]) -> bytes:
    """A copy of the zip ``data`` with ``edits[member](text) -> text`` applied."""
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        members = {info.filename: src.read(info.filename) for info in src.infolist()}
        stamps = {info.filename: info.date_time for info in src.infolist()}
    for name, edit in edits.items():
        members[name] = edit(members[name].decode("utf-8")).encode("utf-8")
    return zip_of(members, stamps)


@lru_cache(maxsize=1)
def sheet_xml() -> str:
    return sheet_of(raw(WORKBOOK))


@lru_cache(maxsize=1)
def shared_strings() -> list[str]:
    with zipfile.ZipFile(io.BytesIO(raw(WORKBOOK))) as zf:
        xml = zf.read(STRINGS).decode("utf-8")
    return [re.sub(r"<[^>]+>", "", si).replace("&amp;", "&") for si in re.findall(r"<si>(.*?)</si>", xml, re.S)]


def sheet_of(book: bytes) -> str:
    """The ESTIMATES&PEs sheet XML of a workbook."""
    with zipfile.ZipFile(io.BytesIO(book)) as zf:
        return zf.read(SHEET).decode("utf-8")


def cell(ref: str, xml: str | None = None) -> object:
    """The cached value of a cell of the ESTIMATES&PEs sheet (of the real workbook unless ``xml``
    is given): a float, or the text of a shared string."""
    m = re.search(rf'<c r="{ref}"([^>]*?)(?:/>|>(.*?)</c>)', xml or sheet_xml(), re.S)
    assert m, ref
    value = re.search(r"<v>([^<]*)</v>", m.group(2) or "")
    if value is None:
        return None
    if 't="s"' in m.group(1):
        return shared_strings()[int(value.group(1))]
    return float(value.group(1))


def rename_label(old: str, new: str) -> Callable[[str], str]:
    def edit(xml: str) -> str:
        target = f"<t>{old}</t>"
        assert xml.count(target) == 1, old
        return xml.replace(target, f"<t>{new}</t>")

    return edit


def set_text(ref: str, value: str) -> Callable[[str], str]:
    """Replace cell ``ref`` with an inline text cell."""

    def edit(xml: str) -> str:
        pattern = rf'<c r="{ref}"( s="\d+")?[^>]*?(?:/>|>.*?</c>)'
        new, n = re.subn(pattern, lambda m: f'<c r="{ref}"{m.group(1) or ""} t="inlineStr"><is><t>{value}</t></is></c>',
                         xml, count=1, flags=re.S)
        assert n == 1, ref
        return new

    return edit


def shift_rows(move) -> Callable[[str], str]:
    """Move every row ``r`` of the sheet to ``move(r)`` (cells, merged ranges, dimension)."""

    def ref_of(token: str) -> str:
        m = re.fullmatch(r"(\$?[A-Z]{1,3}\$?)(\d+)", token)
        return f"{m.group(1)}{move(int(m.group(2)))}" if m else token

    def refs(value: str) -> str:
        return " ".join(":".join(ref_of(t) for t in part.split(":")) for part in value.split(" "))

    def edit(xml: str) -> str:
        xml = re.sub(r'<row r="(\d+)"', lambda m: f'<row r="{move(int(m.group(1)))}"', xml)
        return re.sub(r'\b(r|ref|sqref)="([^"]*)"', lambda m: f'{m.group(1)}="{refs(m.group(2))}"', xml)

    return edit


def moved_rows(r: int) -> int:
    """The edition's layout with blank rows added: 4 above the P/E block, 6 more above the
    quarterly block (the edition date in A2 stays where it is)."""
    return r + (4 if r >= 40 else 0) + (6 if r >= 100 else 0)


# ----------------------------------------------------------------------------------------------
# the malformed files


def bad_cases(today: date) -> list[Case]:
    """Every malformed file of the single quarantine run. ``today`` is the day the run happens (UTC)."""
    limit = today + timedelta(days=1)
    future = today + timedelta(days=40)
    cases: list[Case] = []

    # --- prices -------------------------------------------------------------------------------
    f = lines(IWM)
    n = f.find("2024-03-01,")
    day, rest = f.line(n).split(",", 1)
    f.set(n, f"{day},,{rest}")  # an extra empty cell after the date shifts every value right
    cases.append(Case("shifted_columns", "prices", "IWM.csv", f.bytes(), "record has 7 fields, the header has 6",
                      row=n, found=f.line(n), expected="6 ','-separated fields"))

    f = lines(STOOQ)
    n = next(i for i in range(1, len(f.items) + 1) if f.line(i).split(",")[2:3] == ["20240315"])
    cells = f.line(n).split(",")
    header = f.line(1).split(",")
    vol = header.index("<VOL>")
    cells[vol] = "1.2M"
    f.set(n, ",".join(cells))
    cases.append(Case("text_in_numeric_field", "prices", "spy.us.txt", f.bytes(), "bad value in '<VOL>'",
                      row=n, field="<VOL>", found="1.2M", expected="a number"))

    f = lines(MDY)
    n = f.find("2024-02-29 00:00:00,")
    f.set(n, f.line(n).replace("2024-02-29", "2024-02-30", 1))
    cases.append(Case("impossible_date", "prices", "MDY.csv", f.bytes(), "bad value in 'Date'",
                      row=n, field="Date", found="2024-02-30 00:00:00", expected="a date like"))

    f = lines(SPY)
    n = f.find("2024-04-01,")
    cells = f.line(n).split(",")
    close = f.line(1).split(",").index("Close")
    cells[close] = "-" + cells[close]
    f.set(n, ",".join(cells))
    cases.append(Case("negative_price", "prices", "SPY.csv", f.bytes(), "zero or negative price",
                      row=n, field="Close", found=float(cells[close]), expected="a positive price"))

    f = lines(IWM)
    n = f.find("2024-05-01,")
    cells = f.line(n).split(",")
    volume = f.line(1).split(",").index("Volume")
    cells[volume] = "-" + cells[volume]
    f.set(n, ",".join(cells))
    cases.append(Case("negative_volume", "prices", "IWM_volume.csv", f.bytes(), "negative volume",
                      row=n, field="Volume", found=float(cells[volume]), expected="a non-negative volume"))

    f = lines(SPY)
    n = f.find("2024-06-03,")
    cells = f.line(n).split(",")
    first = float(cells[close])
    cells[close] = f"{first + 1.5}"
    f.insert(n + 1, ",".join(cells))  # the same day again, right below, with another close
    cases.append(Case("duplicate_key_different_values", "prices", "SPY_dupes.csv", f.bytes(),
                      f"conflicting duplicate rows for symbol=SPY, trade_date=2024-06-03 on lines {n} and {n + 1}",
                      row=n + 1, field="close", found=(first, first + 1.5), expected="one value per key"))

    f = lines(FRED_SP500)
    last = f.line(len(f.items)).split(",")[1]
    f.items.append(f"{future.isoformat()},{last}")
    cases.append(Case("date_after_the_run_day", "prices", "SP500_future.csv", f.bytes(),
                      "date after the day of the run", row=len(f.items), field="observation_date",
                      found=future.isoformat(), expected=f"a date on or before {limit.isoformat()}"))

    semicolons = text(IWM).replace(",", ";")
    cases.append(Case("wrong_delimiter", "prices", "IWM_semicolon.csv", semicolons.encode(),
                      "unrecognised file format: the header is separated by semicolons", row=1,
                      found=semicolons.split("\n", 1)[0], expected="comma-separated fields"))

    cases.append(Case("empty_file", "prices", "SPY_empty.csv", b"", "empty file", expected="Yahoo CSV"))

    cases.append(Case("utf16_text", "prices", "IWM_utf16.csv", text(IWM).encode("utf-16"), "UTF-16", row=1,
                      found=text(IWM).encode("utf-16")[:2], expected="UTF-8"))

    cases.append(Case("wrong_inbox_folder", "short_interest", "SPY.csv", raw(SPY),
                      "content is a prices file (yfinance_flat) but it was dropped in inbox/short_interest/",
                      expected="move it to inbox/prices/"))

    # --- cpi ----------------------------------------------------------------------------------
    f = lines(CPILFESL)
    header_only = f.line(1) + f.eol
    cases.append(Case("header_only", "cpi", "CPILFESL.csv", header_only.encode(), "no data rows", row=1,
                      found=f.line(1), expected="at least one data row under the header"))

    f = lines(CPIAI)
    n = f.find("1990-03-01,")
    f.set(n, f.line(n).replace("1990-03-01", "1990-03-15", 1))
    cases.append(Case("date_not_a_month_start", "cpi", "cpiai.csv", f.bytes(), "bad value in 'Date'", row=n,
                      field="Date", found="1990-03-15", expected="the first day of a month"))

    body = json.loads(text(FEDFUNDS))
    i = next(k for k, ob in enumerate(body["observations"]) if ob["date"] == "2000-01-01")
    body["observations"][i]["value"] = "n.a."
    cases.append(Case("fred_json_text_value", "cpi", "FEDFUNDS.json", json.dumps(body).encode(),
                      f"bad value at observations[{i}].value", field=f"observations[{i}].value", found="n.a.",
                      expected="a number or '.'"))

    f = lines(CPIAUCSL)
    n = f.find("2000-01-01,")
    day, value = f.line(n).split(",")
    f.set(n, f"{day},-{value}")
    cases.append(Case("negative_index_level", "cpi", "CPIAUCSL.csv", f.bytes(), "index level not above zero",
                      row=n, field="value", found=-float(value), expected="a positive index level"))

    # --- short interest -----------------------------------------------------------------------
    f = lines(FINRA)
    header = f.line(1).split("|")
    n = next(i for i in range(2, len(f.items) + 1) if f.line(i).split("|")[1] == "AAPL")
    f.set(n, "|".join(f.line(n).split("|")[:11]))
    cases.append(Case("finra_row_with_too_few_fields", "short_interest", "shrt20210715_cut.txt", f.bytes(),
                      f"record has 11 fields, the header has {len(header)}", row=n, field=header[11],
                      found=f.line(n), expected=f"{len(header)} '|'-separated fields"))

    f = lines(FINRA)
    n = next(i for i in range(2, len(f.items) + 1) if f.line(i).split("|")[1] == "AAL")
    cells = f.line(n).split("|")
    current = header.index("currentShortPositionQuantity")
    cells[current] = "-" + cells[current]
    f.set(n, "|".join(cells))
    cases.append(Case("negative_short_interest", "short_interest", "shrt20210715_negative.txt", f.bytes(),
                      "negative currentShortPositionQuantity", row=n, field="currentShortPositionQuantity",
                      found=float(cells[current]), expected="a number of zero or more"))

    # --- holdings -----------------------------------------------------------------------------
    f = lines(IWM_HOLDINGS)
    assert f.line(1) == "iShares Russell 2000 ETF"
    f.set(1, "iShares Russell 2000 Value ETF")
    cases.append(Case("holdings_of_an_unknown_fund", "holdings", "fund_holdings.csv", f.bytes(),
                      "cannot tell the fund", row=1, found="iShares Russell 2000 Value ETF", expected="one of"))

    assert lines(IVV_HOLDINGS).line(1) == "iShares Core S&P 500 ETF"
    cases.append(Case("holdings_file_named_for_another_fund", "holdings", "IWM_holdings.csv", raw(IVV_HOLDINGS),
                      "the file name says fund IWM but the file is 'iShares Core S&P 500 ETF'", row=1,
                      found="iShares Core S&P 500 ETF", expected="a file of fund IWM"))

    f = lines(IWM_HOLDINGS)
    n = f.find("Ticker,")
    assert f.line(n).count("Weight (%)") == 1
    f.set(n, f.line(n).replace("Weight (%)", "Wgt"))
    cases.append(Case("holdings_column_renamed", "holdings", "iShares_IWM_holdings_renamed.csv", f.bytes(),
                      "holdings header lacks columns for ['weight']", row=n, found=f.line(n)[:200],
                      expected="Weight (%)|Market Weight"))

    f = lines(IWM_HOLDINGS)
    n = f.find("Fund Holdings as of,")
    f.set(n, f'Fund Holdings as of,"{future:%b %d, %Y}"')
    cases.append(Case("holdings_dated_after_the_run_day", "holdings", "iShares_IWM_holdings_future.csv", f.bytes(),
                      "date after the day of the run", row=n, field="Fund Holdings as of",
                      found=future.isoformat(), expected=f"a date on or before {limit.isoformat()}"))

    # parses, but its landing suite refuses it: a weight of 193 % (the file's 1.93 typed as 193)
    f = lines(IWM_HOLDINGS)
    n = f.find('"BE",')
    cells = next(csv.reader([f.line(n)]))
    header = next(csv.reader([f.line(f.find("Ticker,"))]))
    w = header.index("Weight (%)")
    cells[w] = f"{float(cells[w]) * 100:.2f}"
    f.set(n, ",".join(f'"{x}"' for x in cells))
    cases.append(Case("holdings_weight_out_of_range", "holdings", "iShares_IWM_holdings_weight.csv", f.bytes(),
                      f"error: column values to be between on 'weight': 1 unexpected, e.g. [{float(cells[w]) / 100!r}]",
                      field="weight", by="expectations"))

    # a spreadsheet's legacy code page: the curly quotes of the legal footer are not UTF-8
    legacy = text(IWM_HOLDINGS).lstrip("\ufeff").encode("cp1252")
    pos = next(k for k, b in enumerate(legacy) if b >= 0x80)
    cases.append(Case("non_utf8_encoding", "holdings", "iShares_IWM_holdings_cp1252.csv", legacy,
                      f"not UTF-8 text: byte 0x{legacy[pos]:02x}", row=legacy.count(b"\n", 0, pos) + 1,
                      found=legacy[max(pos - 20, 0):pos + 20], expected="UTF-8"))

    # --- factors ------------------------------------------------------------------------------
    f = lines(FF3_MONTHLY)
    n = f.find("199902,")
    f.set(n, "199913," + f.line(n).split(",", 1)[1])
    cases.append(Case("impossible_month", "factors", "F-F_Research_Data_Factors_bad_month.CSV", f.bytes(),
                      "impossible date", row=n, field="date", found="199913", expected="a real YYYYMMDD / YYYYMM date"))

    f = lines(FF5_MONTHLY)
    n = f.find("200001,")
    header = next(f.line(i) for i in range(1, n) if ",Mkt-RF," in f.line(i)).split(",")
    f.set(n, ",".join(f.line(n).split(",")[:3]))
    cases.append(Case("factor_row_cut_short", "factors", "F-F_Research_Data_5_Factors_2x3_cut.csv", f.bytes(),
                      f"record has 3 fields, the header has {len(header)}", row=n, field=header[3].strip(),
                      found=f.line(n), expected=f"{len(header)} ','-separated fields"))

    cases.append(Case("zip_without_csv", "factors", "F-F_Research_Data_Factors_CSV.zip",
                      zip_of({"F-F_Research_Data_Factors.dat": raw(FF3_MONTHLY)}),
                      "unknown zip content", found="members ['F-F_Research_Data_Factors.dat']",
                      expected="a Kenneth French zip holding one CSV"))

    # --- estimates ----------------------------------------------------------------------------
    book = raw(WORKBOOK)
    cases.append(Case("truncated_xlsx", "estimates", "sp-500-eps-est_truncated.xlsx", book[: len(book) // 2],
                      "unreadable zip/xlsx", expected="S&P DJI"))

    cases.append(Case("workbook_label_renamed", "estimates", "sp-500-eps-est_renamed_pe.xlsx",
                      rewrite_zip(book, {STRINGS: rename_label("OPER P/E", "OPERATING P/E")}),
                      "no 'OPER P/E' label", expected="P/E block"))

    cases.append(Case("workbook_row_label_renamed", "estimates", "sp-500-eps-est_renamed_estimates.xlsx",
                      rewrite_zip(book, {STRINGS: rename_label("ESTIMATES", "FORECASTS")}),
                      "no 'ESTIMATES' row label", expected="the quarterly EPS block"))

    pe_header = next(r for r in range(1, 120) if cell(f"C{r}") == "OPER P/E")
    assert cell(f"D{pe_header}") == "GROWTH %"
    cases.append(Case("workbook_label_missing", "estimates", "sp-500-eps-est_no_growth.xlsx",
                      rewrite_zip(book, {STRINGS: rename_label("GROWTH %", "")}),
                      "SP500: no GROWTH % or PEG column next to OPER P/E", row=pe_header, field=f"C{pe_header}",
                      expected="'GROWTH %' and 'PEG' columns"))

    pe_row = next(r for r in range(pe_header + 1, pe_header + 8) if cell(f"A{r}") == "S&P 500")
    cases.append(Case("workbook_text_in_a_number_cell", "estimates", "sp-500-eps-est_text_cell.xlsx",
                      rewrite_zip(book, {SHEET: set_text(f"C{pe_row}", "n/a")}),
                      "not a number", row=pe_row, field=f"C{pe_row} (SP500 OPER P/E)", found="n/a",
                      expected="a number"))

    # the generic estimates CSV, written from the workbook's own P/E row, with a bad period
    edition = date(1899, 12, 30) + timedelta(days=int(cell("A2")))
    rows = [["index_code", "as_of_date", "metric", "period", "value"]]
    for code, column in (("SP500", "C"), ("SP400", "G"), ("SP600", "K")):
        rows.append([code, edition.isoformat(), "operating_pe", "2025", repr(cell(f"{column}{pe_row}"))])
    rows[2][3] = "2025Q4"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    cases.append(Case("generic_estimates_bad_period", "estimates", "estimates_export.csv", out.getvalue().encode(),
                      "bad period", row=3, field="period", found="2025Q4", expected="2025, 'Q4 2025' or 'current'"))
    return cases


# ----------------------------------------------------------------------------------------------
# good files


def yahoo_v7_csv(swap_high_low_on: int | None = None) -> tuple[bytes, list[list[str]]]:
    """The Yahoo v7 download CSV recorded in the QQQ fixture (``response.body``); optionally with
    High and Low swapped on data row ``swap_high_low_on`` (1-based)."""
    body = json.loads(text(YAHOO_V7))["response"]["body"]
    table = list(csv.reader(io.StringIO(body)))
    if swap_high_low_on is not None:
        hi, lo = table[0].index("High"), table[0].index("Low")
        row = table[swap_high_low_on]
        row[hi], row[lo] = row[lo], row[hi]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    return out.getvalue().encode(), table


def cpi_before_1980() -> bytes:
    """The Excel-resaved FRED CPIAUCSL download (M/D/YYYY dates) cut to 1947-1979, the range FRED
    serves for a download from 1947 to 1979. The sample's CPIAUCSL starts in 1980, so these months
    come from this file alone."""
    f = lines(CPI_EXCEL)
    f.items = [f.items[0]] + [line for line in f.items[1:] if int(line.split(",")[0].split("/")[2]) < 1980]
    return f.bytes()


def good_files() -> dict[tuple[str, str], bytes]:
    """(dataset folder, file name) → payload of the files the good run must load."""
    qqq, _ = yahoo_v7_csv(swap_high_low_on=1)
    return {
        ("prices", "SP500.csv"): raw(FRED_SP500),
        ("prices", "SP500_again.csv"): raw(FRED_SP500),  # the same file twice: loaded once
        ("prices", "QQQ.csv"): qqq,
        ("cpi", "CPIAUCSL_1947-1979.csv"): cpi_before_1980(),
        ("short_interest", "shrt20210715.txt"): raw(FINRA),
        ("holdings", "iShares_IWM_holdings_2026-05-05.csv"): raw(IWM_HOLDINGS),
        ("estimates", "sp-500-eps-est_moved.xlsx"): rewrite_zip(raw(WORKBOOK), {SHEET: shift_rows(moved_rows)}),
        ("factors", "F-F_Research_Data_Factors.CSV"): raw(FF3_MONTHLY),
        ("factors", "F-F_Research_Data_5_Factors_2x3_CSV.zip"): zip_of({"F-F_Research_Data_5_Factors_2x3.csv": raw(FF5_MONTHLY)}),
    }
