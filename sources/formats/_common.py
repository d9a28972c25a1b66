"""Shared helpers for the format parsers: decoding, line-numbered CSV reading, typed casts that
report the first bad cell, duplicate handling and symbol/series names from file names.

Every helper is pure: it works on the bytes or text it is given and never touches the disk.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from pathlib import PurePath

import polars as pl

from sources.errors import BadInput
from sources.schemas import DATE_COLUMN, KEYS, SCHEMAS, conform

LINE = "_line"  # 1-based line number of the row in the file (internal column, dropped by finish())

UTF8_HINT = "UTF-8 text (in a spreadsheet: save as 'CSV UTF-8')"

# the last date an observation may carry (set by the inbox scan: the day the run happens)
_NOT_AFTER: ContextVar[date | None] = ContextVar("capspread_formats_not_after", default=None)

# tokens that never name a symbol / series when found in a file name
_NAME_STOPWORDS = {
    "CSV", "TXT", "JSON", "XLSX", "ZIP", "DAILY", "MONTHLY", "WEEKLY", "FULL", "DATA", "PRICES",
    "PRICE", "HISTORY", "FRED", "YF", "YAHOO", "STOOQ", "BLS", "CPI", "SA", "NSA", "US", "USD",
}


# ----------------------------------------------------------------------------------------------
# text


def decode(data: bytes, filename: str) -> str:
    """Bytes → text with a leading BOM removed and every line ending turned into ``\\n``.

    Every text format is read as UTF-8 (with or without a BOM). Anything else is refused with
    ``BadInput`` naming the line and the first byte that is not UTF-8: guessing a legacy code page
    would silently garble names. An incomplete multi-byte character at the very end is dropped, so
    that a prefix of a valid file (format detection reads the first 64 KiB) still decodes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{filename}: expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise BadInput(filename, "the file is UTF-16 text (a spreadsheet's 'Unicode text' export)", row=1,
                       found=raw[:2], expected=UTF8_HINT)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(raw) - 3:
            text = raw[: exc.start].decode("utf-8-sig")
        else:
            line = raw.count(b"\n", 0, exc.start) + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            raise BadInput(
                filename,
                f"not UTF-8 text: byte 0x{raw[exc.start]:02x} (byte {column} of the line) cannot be decoded",
                row=line,
                found=raw[max(exc.start - 20, 0) : exc.start + 20],
                expected=UTF8_HINT,
            ) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def lines_of(data: bytes, filename: str) -> list[str]:
    """The file's lines (without line endings); ``lines[i]`` is line ``i + 1``."""
    text = decode(data, filename)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def split_csv_line(line: str, delimiter: str = ",") -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def norm(label: object) -> str:
    """A header label folded for comparison: stripped, lower case, inner blanks collapsed."""
    return re.sub(r"\s+", " ", str(label or "").strip()).lower()


# ----------------------------------------------------------------------------------------------
# reading rows


def read_rows(
    lines: Sequence[str],
    start: int,
    columns: Sequence[str],
    filename: str,
    *,
    delimiter: str = ",",
    stop_at_blank: bool = False,
    min_fields: int | None = None,
    labels: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Parse ``lines[start:]`` as CSV records with the given column names into a frame of strings.

    Each record must sit on one line (true of every accepted format). Blank lines are skipped, or
    end the table with ``stop_at_blank``. A record with fewer fields than ``min_fields`` (default:
    all columns) raises ``BadInput`` naming its line; missing trailing optional fields become null.
    The frame has a ``_line`` column with the 1-based line number of each record. ``labels`` are the
    file's own column names, used in error messages (default: ``columns``).
    """
    ncol = len(columns)
    labels = list(labels) if labels is not None else list(columns)
    need = ncol if min_fields is None else min_fields
    cols: list[list[str | None]] = [[] for _ in range(ncol)]
    line_numbers: list[int] = []
    for index in range(start, len(lines)):
        line = lines[index]
        if not line.strip():
            if stop_at_blank:
                break
            continue
        lineno = index + 1
        try:
            fields = split_csv_line(line, delimiter)
        except csv.Error as exc:
            raise BadInput(filename, f"unreadable CSV record ({exc})", row=lineno, found=line[:120]) from exc
        if len(fields) < need:
            missing = labels[len(fields)] if len(fields) < len(labels) else None
            raise BadInput(
                filename,
                f"record has {len(fields)} fields, the header has {ncol} (truncated row?)",
                row=lineno,
                field=missing,
                found=line[:120],
                expected=f"{ncol} {delimiter!r}-separated fields",
            )
        if len(fields) > ncol and any(f.strip() for f in fields[ncol:]):
            raise BadInput(
                filename,
                f"record has {len(fields)} fields, the header has {ncol}",
                row=lineno,
                found=line[:120],
                expected=f"{ncol} {delimiter!r}-separated fields",
            )
        for j in range(ncol):
            cols[j].append(fields[j] if j < len(fields) else None)
        line_numbers.append(lineno)
    frame = pl.DataFrame(
        {name: pl.Series(name, values, dtype=pl.String) for name, values in zip(columns, cols)}
    )
    return frame.with_columns(pl.Series(LINE, line_numbers, dtype=pl.Int64))


# ----------------------------------------------------------------------------------------------
# typed casts that name the first bad cell


def _raise_first_bad(
    frame: pl.DataFrame, bad: pl.Series, column: str, filename: str, field: str, expected: str
) -> None:
    if bad.any():
        row = frame.filter(bad).row(0, named=True)
        raise BadInput(
            filename,
            f"bad value in {field!r}",
            row=row.get(LINE),
            field=field,
            found=row[column],
            expected=expected,
        )


def numeric_expr(column: str, *, thousands: bool = False, null_tokens: Iterable[str] = ()) -> pl.Expr:
    """The column as Float64; blanks and ``null_tokens`` become null, anything else unparsable too."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    if thousands:
        text = text.str.replace_all(",", "", literal=True)
    tokens = ["", *null_tokens]
    return pl.when(text.is_in(tokens) | text.is_null()).then(None).otherwise(text).cast(pl.Float64, strict=False)


def to_float(
    frame: pl.DataFrame,
    column: str,
    filename: str,
    *,
    field: str | None = None,
    thousands: bool = False,
    null_tokens: Iterable[str] = (),
    required: bool = False,
    target: str | None = None,
) -> pl.DataFrame:
    """Cast ``column`` (strings) to Float64 into ``target``; a non-numeric cell raises BadInput."""
    tokens = list(null_tokens)
    field = field or column
    target = target or column
    parsed = frame.select(numeric_expr(column, thousands=thousands, null_tokens=tokens).alias("v"))["v"]
    raw = frame[column].cast(pl.String).str.strip_chars()
    blank = raw.is_null() | raw.is_in(["", *tokens])
    _raise_first_bad(frame, parsed.is_null() & ~blank, column, filename, field, "a number")
    # inf / nan spelled out are numbers to polars but never valid market data
    finite = parsed.is_finite().fill_null(True)
    _raise_first_bad(frame, ~finite, column, filename, field, "a finite number")
    if required:
        _raise_first_bad(frame, blank, column, filename, field, "a number (the cell is empty)")
    return frame.with_columns(parsed.alias(target))


_DATE_PATTERNS: list[tuple[str, str, str]] = [
    # regex on the stripped cell, strptime format applied to the matched part
    (r"^\d{4}-\d{2}-\d{2}$", "%Y-%m-%d", "full"),
    (r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?$", "%Y-%m-%d", "head10"),
    (r"^\d{1,2}/\d{1,2}/\d{4}$", "%m/%d/%Y", "full"),
    (r"^\d{8}$", "%Y%m%d", "full"),
]


def date_expr(column: str, formats: Sequence[str] = ("iso", "iso_time", "mdy", "ymd8")) -> pl.Expr:
    """The column parsed as a Date from any of the accepted spellings (null where none fits)."""
    names = ["iso", "iso_time", "mdy", "ymd8"]
    text = pl.col(column).cast(pl.String).str.strip_chars()
    parts = []
    for name, (pattern, fmt, how) in zip(names, _DATE_PATTERNS):
        if name not in formats:
            continue
        source = text.str.slice(0, 10) if how == "head10" else text
        parts.append(
            pl.when(text.str.contains(pattern)).then(source.str.strptime(pl.Date, fmt, strict=False))
        )
    return pl.coalesce(parts) if parts else pl.lit(None, dtype=pl.Date)


def to_date(
    frame: pl.DataFrame,
    column: str,
    filename: str,
    *,
    field: str | None = None,
    target: str | None = None,
    formats: Sequence[str] = ("iso", "iso_time", "mdy", "ymd8"),
    expected: str = "a date like 2025-01-31, 1/31/2025 or 20250131",
) -> pl.DataFrame:
    """Parse ``column`` into a Date column ``target``; a missing or unparsable date raises BadInput,
    and so does a date after ``not_after()`` when an inbox scan set it."""
    field = field or column
    target = target or column
    parsed = frame.select(date_expr(column, formats).alias("d"))["d"]
    _raise_first_bad(frame, parsed.is_null(), column, filename, field, expected)
    frame = frame.with_columns(parsed.alias(target))
    check_not_after(frame, target, filename, field)
    return frame


def check_month_start(frame: pl.DataFrame, column: str, raw_column: str, filename: str, field: str) -> None:
    bad = frame[column].dt.day() != 1
    _raise_first_bad(frame, bad.fill_null(False), raw_column, filename, field, "the first day of a month")


# ----------------------------------------------------------------------------------------------
# observations from the future


@contextmanager
def dates_not_after(day: date | None) -> Iterator[None]:
    """While active, parsers refuse an observation dated after ``day`` (the day a run actually
    happens: nothing can have been observed later), naming its line. Without it (replay, live
    payloads) no such check is made here; the landing suites still make it."""
    token = _NOT_AFTER.set(day)
    try:
        yield
    finally:
        _NOT_AFTER.reset(token)


def not_after() -> date | None:
    """The date limit set by ``dates_not_after`` (None when unset)."""
    return _NOT_AFTER.get()


def future_date_error(filename: str, day: date, *, row: int | None, field: str | None) -> BadInput:
    limit = not_after()
    return BadInput(
        filename,
        "date after the day of the run (an observation cannot come from the future)",
        row=row,
        field=field,
        found=day.isoformat(),
        expected=f"a date on or before {limit.isoformat() if limit else 'today'}",
    )


def check_not_after(frame: pl.DataFrame, column: str, filename: str, field: str | None = None) -> None:
    """Refuse the first row (in file order) whose ``column`` date lies after ``not_after()``."""
    limit = not_after()
    if limit is None or column not in frame.columns or not frame.height:
        return
    late = frame.filter(pl.col(column) > limit)
    if late.height:
        if LINE in late.columns:
            late = late.sort(LINE, nulls_last=True)
        row = late.row(0, named=True)
        raise future_date_error(filename, row[column], row=row.get(LINE), field=field or column)


# ----------------------------------------------------------------------------------------------
# finishing


def finish(
    dataset: str,
    frame: pl.DataFrame,
    filename: str,
    *,
    key: Sequence[str] | None = None,
    check_conflicts: bool = True,
) -> pl.DataFrame:
    """Drop exact duplicate rows, refuse conflicting ones, conform to the schema, sort by key.

    Two rows with the same ``key`` (default: the dataset's key) but different values raise
    ``BadInput`` naming both lines. Exact duplicates keep the first occurrence.
    """
    schema = SCHEMAS[dataset]
    key = list(key or KEYS[dataset])
    if LINE not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias(LINE))
    frame = frame.select([*schema, LINE])
    typed = conform(dataset, frame).with_columns(frame[LINE])
    check_not_after(typed, DATE_COLUMN[dataset], filename)
    typed = typed.unique(subset=list(schema), keep="first", maintain_order=True)
    if check_conflicts:
        dup = typed.filter(pl.struct(key).is_duplicated())
        if dup.height:
            first_key = dup.row(0, named=True)
            same = dup.filter(pl.all_horizontal([pl.col(k).eq_missing(first_key[k]) for k in key]))
            a, b = same.row(0, named=True), same.row(1, named=True)
            differs = [c for c in schema if c not in key and a[c] != b[c]]
            where = ", ".join(f"{k}={a[k]}" for k in key)
            lines = [str(r[LINE]) if r[LINE] is not None else "?" for r in (a, b)]
            raise BadInput(
                filename,
                f"conflicting duplicate rows for {where} on lines {lines[0]} and {lines[1]}",
                row=b[LINE],
                field=differs[0] if differs else None,
                found=(a[differs[0]], b[differs[0]]) if differs else None,
                expected="one value per key (exact duplicates are dropped)",
            )
    sort_key = list(KEYS[dataset])
    return conform(dataset, typed.drop(LINE)).sort(sort_key, nulls_last=True, maintain_order=True)


# ----------------------------------------------------------------------------------------------
# names from file names


def stem_of(filename: str) -> str:
    name = PurePath(filename.replace("\\", "/")).name
    for suffix in (".csv", ".txt", ".json", ".xlsx", ".zip", ".CSV", ".TXT", ".JSON", ".XLSX", ".ZIP"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name.rsplit(".", 1)[0] if "." in name else name


_TICKER = re.compile(r"^\^?[A-Za-z0-9][A-Za-z0-9.=\-]{0,11}$")
_UPPER_TOKEN = re.compile(r"^\^?[A-Z][A-Z0-9.=\-]{0,11}$")


def symbol_from_filename(filename: str) -> str | None:
    """``IWM.csv`` → ``IWM``; ``^RUT.csv`` → ``^RUT``; ``spy.us.txt`` / ``iwm.csv`` → ``SPY`` / ``IWM``;
    ``yf_SPY_daily_full.csv`` → ``SPY`` (the first upper-case token that is not a common word).

    A lower-case stem counts only when it is short (at most 5 characters, plus ``.us``), so that
    ``download.csv`` or ``prices.csv`` name no symbol.
    """
    stem = stem_of(filename).strip()
    if "_" not in stem and " " not in stem:
        base = stem[:-3] if stem.upper().endswith(".US") else stem
        if _UPPER_TOKEN.match(base) and base.upper() not in _NAME_STOPWORDS:
            return base
        if _TICKER.match(base) and len(base.lstrip("^")) <= 5 and base.upper() not in _NAME_STOPWORDS:
            return base.upper()
    for token in re.split(r"[_\s]+", stem):
        if _UPPER_TOKEN.match(token) and token.upper() not in _NAME_STOPWORDS and not token.isdigit():
            return token[:-3] if token.endswith(".US") else token
    return None


def series_from_filename(filename: str) -> str | None:
    """``CPIAUCSL.csv`` / ``fred_CPIAUCSL_monthly.csv`` → ``CPIAUCSL``."""
    stem = stem_of(filename).strip()
    for token in re.split(r"[_\s.\-]+", stem):
        if re.fullmatch(r"[A-Z][A-Z0-9]{2,}", token) and token not in _NAME_STOPWORDS:
            return token
    return None
