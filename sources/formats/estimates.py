"""The S&P Dow Jones Indices ``sp-500-eps-est.xlsx`` workbook → the ``estimates`` schema.

Format ``spdji_eps_xlsx``. Cells are found by their labels, never by fixed positions (rows move
between editions). From sheet ``ESTIMATES&PEs`` (the first sheet whose name starts with
``ESTIMATES``):

* ``as_of_date`` – the edition date: the first date cell in the top rows of the sheet.
* P/E block – the row holding ``OPER P/E`` labels, under group labels ``S&P 500`` / ``MIDCAP`` /
  ``SMALLCAP`` and a ``<year> EST`` label; with the ``GROWTH %`` and ``PEG`` columns of each group.
  The ``S&P 500`` row below it (the index row of the block) gives, for SP500, SP400 (MIDCAP) and
  SP600 (SMALLCAP): ``operating_pe`` (period = the year of the ``2025 EST`` label), ``growth_5y``
  (the projected 5-year annual growth; the file shows percent, stored as a fraction) and ``peg``,
  all three with that same period.
* Quarterly block – the rows under ``ESTIMATES`` and ``ACTUALS`` labelled with quarter-end dates
  (``12/31/2026``, ``6/30/2025 (Prelim.)`` or date cells), whose column headers read
  ``OPERATING EARNINGS PER SHR``, ``AS REPORTED EARNINGS PER SHR`` and, under
  ``12 MONTH EARNINGS PER SHARE``, ``OPERATING`` / ``AS REPORTED``: SP500 ``operating_eps``,
  ``reported_eps``, ``operating_eps_12m``, ``reported_eps_12m`` with period ``Q4 2026`` etc.
  Estimates and actuals are both included (a quarter appears once in an edition).
* Observation block (optional) – the ``OBSERVATION, 2025E, …, 2026E`` header and its ``Current``
  row: SP500 ``operating_eps`` for the calendar years (periods ``2025``, ``2026``). The quarterly
  columns of that block repeat the quarterly block and are not read.

``edition_notice(data)`` returns the text of a cell in the top rows of the first sheet that mentions a
discontinuation (S&P DJI announced the end of this report), or None.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime

import polars as pl

from sources.errors import BadInput
from sources.formats._common import LINE, finish, future_date_error, not_after

Grid = list[list[object]]

GROUPS = (("SMALLCAP", "SP600"), ("MIDCAP", "SP400"), ("S&P 500", "SP500"))


def _load(data: bytes, filename: str):
    import openpyxl  # imported lazily: only this format needs it

    try:
        return openpyxl.load_workbook(io.BytesIO(bytes(data)), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise BadInput(filename, f"unreadable workbook ({exc})", expected="an .xlsx workbook") from exc


def _grid(ws, max_row: int | None = None) -> Grid:
    return [list(row) for row in ws.iter_rows(max_row=max_row, values_only=True)]


def _text(value: object) -> str:
    return re.sub(r"\s+", " ", value.strip()).upper() if isinstance(value, str) else ""


def _coord(r: int, c: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(c + 1)}{r + 1}"


def _cell(grid: Grid, r: int, c: int) -> object:
    return grid[r][c] if 0 <= r < len(grid) and 0 <= c < len(grid[r]) else None


def _number(grid: Grid, r: int, c: int, filename: str, label: str) -> float | None:
    value = _cell(grid, r, c)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(filename, "not a number", row=r + 1, field=f"{_coord(r, c)} ({label})", found=value,
                       expected="a number")
    return float(value)


def _estimates_sheet(wb, filename: str):
    for name in wb.sheetnames:
        if name.strip().upper().startswith("ESTIMATES"):
            return wb[name]
    raise BadInput(filename, "no ESTIMATES sheet", found=wb.sheetnames, expected="a sheet 'ESTIMATES&PEs'")


def _edition_date(grid: Grid, filename: str) -> date:
    for r in range(min(8, len(grid))):
        for c, value in enumerate(grid[r]):
            if isinstance(value, (datetime, date)):
                day = value.date() if isinstance(value, datetime) else value
                limit = not_after()
                if limit is not None and day > limit:
                    raise future_date_error(filename, day, row=r + 1, field=f"{_coord(r, c)} (edition date)")
                return day
    raise BadInput(filename, "no edition date in the top rows of the ESTIMATES sheet", row=1,
                   expected="a date cell such as 9/30/2025 near the top")


def _pe_block(grid: Grid, filename: str) -> list[tuple]:
    hits = [(r, c) for r, row in enumerate(grid) for c, v in enumerate(row) if _text(v) == "OPER P/E"]
    if not hits:
        raise BadInput(filename, "no 'OPER P/E' label", expected="the S&P 500 / MIDCAP / SMALLCAP P/E block")
    r0 = hits[0][0]
    cols = [c for r, c in hits if r == r0]
    index_row = None
    for r in range(r0 + 1, min(r0 + 8, len(grid))):
        if any(_text(v) == "S&P 500" for v in grid[r][:2]):
            index_row = r
            break
    if index_row is None:
        raise BadInput(filename, "no 'S&P 500' row under the OPER P/E header", row=r0 + 1,
                       expected="an 'S&P 500' row below 'OPER P/E'")
    out = []
    for k, c in enumerate(cols):
        stop = cols[k + 1] if k + 1 < len(cols) else c + 6
        year = code = None
        for r in range(r0 - 1, max(r0 - 6, -1), -1):
            t = _text(_cell(grid, r, c))
            m = re.search(r"(\d{4})\s*EST", t)
            if m and year is None:
                year = m.group(1)
            for label, idx in GROUPS:
                if code is None and label in t:
                    code = idx
                    break
        if year is None or code is None:
            raise BadInput(filename, "OPER P/E column without its index or year label", row=r0 + 1,
                           field=_coord(r0, c), expected="'S&P 500'/'MIDCAP'/'SMALLCAP' and '<year> EST' above it")
        growth_col = next((x for x in range(c + 1, stop) if _text(_cell(grid, r0, x)).startswith("GROWTH")), None)
        peg_col = next(
            (x for x in range(c + 1, stop) for r in range(max(r0 - 5, 0), r0 + 1) if _text(_cell(grid, r, x)) == "PEG"),
            None,
        )
        if growth_col is None or peg_col is None:
            raise BadInput(filename, f"{code}: no GROWTH % or PEG column next to OPER P/E", row=r0 + 1,
                           field=_coord(r0, c), expected="'GROWTH %' and 'PEG' columns in the group")
        pe = _number(grid, index_row, c, filename, f"{code} OPER P/E")
        growth = _number(grid, index_row, growth_col, filename, f"{code} GROWTH %")
        peg = _number(grid, index_row, peg_col, filename, f"{code} PEG")
        line = index_row + 1
        if pe is not None:
            out.append((code, "operating_pe", year, pe, line))
        if growth is not None:
            out.append((code, "growth_5y", year, growth / 100.0, line))
        if peg is not None:
            out.append((code, "peg", year, peg, line))
    return out


_QDATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\b")


def _quarter_label(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        m = _QDATE.match(value)
        if m:
            return date(int(m.group(3)), int(m.group(1)), int(m.group(2)))
    return None


def _quarterly_block(grid: Grid, filename: str) -> list[tuple]:
    r_est = next((r for r, row in enumerate(grid) if row and _text(row[0]) == "ESTIMATES"), None)
    if r_est is None:
        raise BadInput(filename, "no 'ESTIMATES' row label", expected="the quarterly EPS block (ESTIMATES / ACTUALS)")
    top = next((r for r in range(r_est - 1, max(r_est - 12, -1), -1) if _text(_cell(grid, r, 0)).startswith("QUARTER")),
               max(r_est - 6, 0))
    width = max(len(grid[r]) for r in range(top, r_est))
    vtext = {c: " ".join(_text(_cell(grid, r, c)) for r in range(top, r_est)) for c in range(1, width)}
    # the '12 MONTH …' label spans the columns up to the next label in its row
    hit12 = next(((r, c) for r in range(top, r_est) for c in range(1, width) if "12 MONTH" in _text(_cell(grid, r, c))),
                 None)
    if hit12 is None:
        span12 = range(0)
    else:
        h12, c12 = hit12
        end12 = next((c for c in range(c12 + 1, width) if _text(_cell(grid, h12, c))), width)
        span12 = range(c12, end12)

    def pick(cond) -> int | None:
        return next((c for c in range(1, width) if cond(c in span12, vtext[c])), None)

    columns = {
        "operating_eps": pick(lambda m12, t: not m12 and "OPERATING" in t and "PER SH" in t),
        "reported_eps": pick(lambda m12, t: not m12 and "AS REPORTED" in t and "PER SH" in t),
        "operating_eps_12m": pick(lambda m12, t: m12 and "OPERATING" in t),
        "reported_eps_12m": pick(lambda m12, t: m12 and "AS REPORTED" in t),
    }
    missing = [m for m, c in columns.items() if c is None]
    if missing:
        raise BadInput(filename, f"quarterly block without columns for {missing}", row=top + 1,
                       expected="OPERATING / AS REPORTED EARNINGS PER SHR and 12 MONTH … columns")
    out = []
    for r in range(r_est + 1, len(grid)):
        label = _cell(grid, r, 0)
        t = _text(label)
        if t in ("ACTUALS", "ESTIMATES") or label is None or (isinstance(label, str) and not t):
            continue
        qdate = _quarter_label(label)
        if qdate is None:
            break  # the notes under the table
        if qdate.month not in (3, 6, 9, 12):
            raise BadInput(filename, "not a quarter-end date", row=r + 1, field=_coord(r, 0), found=label,
                           expected="a quarter end such as 12/31/2025")
        period = f"Q{qdate.month // 3} {qdate.year}"
        for metric, c in columns.items():
            value = _number(grid, r, c, filename, f"{metric} {period}")
            if value is not None:
                out.append(("SP500", metric, period, value, r + 1))
    if not out:
        raise BadInput(filename, "no quarter rows under 'ESTIMATES'", row=r_est + 1,
                       expected="rows labelled with quarter-end dates")
    return out


def _observation_block(grid: Grid, filename: str) -> list[tuple]:
    r0 = next((r for r, row in enumerate(grid) if row and _text(row[0]) == "OBSERVATION"), None)
    if r0 is None:
        return []
    years = {c: m.group(1) for c, v in enumerate(grid[r0]) if (m := re.fullmatch(r"(\d{4})E", _text(v)))}
    current = next((r for r in range(r0 + 1, min(r0 + 20, len(grid))) if _text(_cell(grid, r, 0)) == "CURRENT"), None)
    if current is None or not years:
        raise BadInput(filename, "OBSERVATION block without a 'Current' row or year columns", row=r0 + 1,
                       expected="'2025E'… columns and a 'Current' row")
    out = []
    for c, year in years.items():
        value = _number(grid, current, c, filename, f"Current {year}E")
        if value is not None:
            out.append(("SP500", "operating_eps", year, value, current + 1))
    return out


def parse_spdji_eps_xlsx(data: bytes, filename: str) -> pl.DataFrame:
    """The S&P DJI ``sp-500-eps-est.xlsx`` workbook (any edition)."""
    wb = _load(data, filename)
    try:
        grid = _grid(_estimates_sheet(wb, filename))
    finally:
        wb.close()
    as_of = _edition_date(grid, filename)
    rows = _pe_block(grid, filename) + _quarterly_block(grid, filename) + _observation_block(grid, filename)
    frame = pl.DataFrame(
        rows,
        schema={"index_code": pl.String, "metric": pl.String, "period": pl.String, "value": pl.Float64,
                LINE: pl.Int64},
        orient="row",
    ).with_columns(pl.lit(as_of).alias("as_of_date"))
    return finish("estimates", frame, filename)


def edition_notice(data: bytes) -> str | None:
    """A discontinuation notice in the top rows of the first sheet, or None."""
    try:
        wb = _load(data, "workbook")
    except BadInput:
        return None
    try:
        grid = _grid(wb[wb.sheetnames[0]], max_row=15)
    finally:
        wb.close()
    for row in grid:
        for value in row:
            if isinstance(value, str) and "discontinu" in value.lower():
                return value.strip()
    return None


PARSERS = {"spdji_eps_xlsx": parse_spdji_eps_xlsx}
