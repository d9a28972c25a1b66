"""Kenneth R. French data-library factor files → the ``factors`` schema (long format).

* ``french_csv`` – the library's CSV in its original layout: a text preamble, a header line
  ``,Mkt-RF,SMB,HML,RF`` (or ``Date,Mkt-RF,…``), rows dated ``YYYYMMDD`` (daily) or ``YYYYMM``
  (monthly), then an ``Annual Factors: January-December`` block (excluded: only the first table is
  read, and four-digit dates never pass) and a copyright footer.
* ``french_zip`` – the zip the library serves, holding one such CSV.

Values are percent in the file and are stored as fractions (÷ 100). ``-99.99`` / ``-999`` (the
library's missing-value markers) become null. ``model`` is ``ff5`` when RMW and CMA are present,
``ff3`` for Mkt-RF/SMB/HML/RF; ``frequency`` is ``daily`` for 8-digit dates, ``monthly`` for 6-digit
dates (``period_start`` = the first of the month).
"""

from __future__ import annotations

import io
import re
import zipfile

import polars as pl

from sources.errors import BadInput
from sources.formats._common import LINE, finish, lines_of, read_rows, split_csv_line, to_float

_HEADER = re.compile(r"^\s*(date)?\s*,\s*Mkt-RF\s*,", re.IGNORECASE)
_ROW = re.compile(r"^\s*(\d{6}|\d{8})\s*,")
_MISSING = ("-99.99", "-999", "-99.990", "-999.00")


def sniff(lines: list[str]) -> str | None:
    return "french_csv" if any(_HEADER.match(line) for line in lines[:40]) else None


def zip_member(data: bytes, filename: str) -> tuple[str, bytes]:
    """The CSV inside a French-library zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [n for n in zf.namelist() if n.lower().endswith((".csv", ".txt"))]
            if len(members) != 1:
                raise BadInput(filename, "the zip should hold exactly one CSV", found=zf.namelist(),
                               expected="one .csv member")
            return members[0], zf.read(members[0])
    except zipfile.BadZipFile as exc:
        raise BadInput(filename, f"unreadable zip ({exc})", expected="a zip holding one CSV") from exc


def parse_french_csv(data: bytes, filename: str) -> pl.DataFrame:
    """French-library CSV (first table only; annual block and footer excluded)."""
    lines = lines_of(data, filename)
    header_index = next((i for i, line in enumerate(lines[:60]) if _HEADER.match(line)), None)
    if header_index is None:
        raise BadInput(filename, "no factor header line", expected=",Mkt-RF,SMB,HML,RF")
    factors = [c.strip() for c in split_csv_line(lines[header_index])[1:]]
    names = set(factors)
    if {"Mkt-RF", "SMB", "HML", "RMW", "CMA"} <= names:
        model = "ff5"
    elif {"Mkt-RF", "SMB", "HML"} <= names:
        model = "ff3"
    else:
        raise BadInput(filename, "unknown factor set", row=header_index + 1, found=factors,
                       expected="Mkt-RF,SMB,HML,RF (ff3) or Mkt-RF,SMB,HML,RMW,CMA,RF (ff5)")
    # the first table: dated rows right after the header, up to the first line that is not one
    end = header_index + 1
    while end < len(lines) and _ROW.match(lines[end]):
        end += 1
    if end == header_index + 1:
        raise BadInput(filename, "no dated rows under the header", row=header_index + 2,
                       found=lines[header_index + 1][:80] if header_index + 1 < len(lines) else "",
                       expected="YYYYMMDD or YYYYMM rows")
    # a truncated or garbled row inside the table (a non-blank line before the annual block)
    if end < len(lines) and lines[end].strip() and not re.match(r"^\s*(annual|copyright)", lines[end], re.I):
        raise BadInput(filename, "unreadable row in the factor table", row=end + 1, field="date",
                       found=lines[end][:80], expected="YYYYMMDD or YYYYMM, then the factor values")
    columns = ["date_raw", *factors]
    frame = read_rows(lines[:end], header_index + 1, columns, filename, labels=["date", *factors])
    widths = frame["date_raw"].str.strip_chars().str.len_chars().unique().to_list()
    if len(widths) != 1:
        raise BadInput(filename, "daily and monthly dates mixed in one table", field="date", found=widths,
                       expected="all YYYYMMDD or all YYYYMM")
    daily = widths[0] == 8
    text = pl.col("date_raw").str.strip_chars()
    frame = frame.with_columns(
        (text if daily else text + "01").str.strptime(pl.Date, "%Y%m%d", strict=False).alias("period_start")
    )
    bad = frame.filter(pl.col("period_start").is_null())
    if bad.height:
        raise BadInput(filename, "impossible date", row=bad[LINE][0], field="date", found=bad["date_raw"][0],
                       expected="a real YYYYMMDD / YYYYMM date")
    parts = []
    for factor in factors:
        empty = frame.filter(pl.col(factor).is_null() | (pl.col(factor).str.strip_chars() == ""))
        if empty.height:
            raise BadInput(filename, "empty factor value", row=empty[LINE][0], field=factor, found="",
                           expected="a number (percent)")
        part = to_float(frame, factor, filename, null_tokens=_MISSING)
        parts.append(
            part.select(
                LINE,
                "period_start",
                pl.lit(factor).alias("factor"),
                (pl.col(factor) / 100.0).alias("value"),
            )
        )
    long = pl.concat(parts).with_columns(
        pl.lit(model).alias("model"), pl.lit("daily" if daily else "monthly").alias("frequency")
    )
    return finish("factors", long, filename)


def parse_french_zip(data: bytes, filename: str) -> pl.DataFrame:
    """A zip holding one French-library CSV."""
    member, inner = zip_member(data, filename)
    return parse_french_csv(inner, f"{filename}!{member}")


PARSERS = {"french_csv": parse_french_csv, "french_zip": parse_french_zip}
