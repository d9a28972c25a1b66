"""A generic CSV for index-level estimates exported from any vendor → the ``estimates`` schema.

Format ``generic_estimates_csv``. UTF-8, comma-separated, one header line, exactly these columns in
this order::

    index_code,as_of_date,metric,period,value
    SP500,2025-09-30,operating_eps,2025,257.99
    SP600,2025-09-30,growth_5y,2025,0.1295
    SP500,2025-09-30,operating_eps,Q4 2026,80.42

* ``index_code`` – the index (``SP500``, ``SP400``, ``SP600``, …), non-empty.
* ``as_of_date`` – the date the vendor's numbers are as of (``YYYY-MM-DD``; ``M/D/YYYY`` accepted).
* ``metric`` – ``operating_eps``, ``reported_eps``, ``operating_eps_12m``, ``reported_eps_12m``,
  ``operating_pe``, ``growth_5y``, ``peg`` or another lower-case snake_case name.
* ``period`` – a calendar year ``2025``, a quarter ``Q4 2025``, or ``current``.
* ``value`` – a plain number in the contract's units: EPS in index points, P/E and PEG as ratios,
  growth rates as fractions (0.1611, not 16.11). An empty value is an error.

One row per ``(index_code, as_of_date, metric, period)``; exact duplicate rows are dropped,
conflicting ones are refused.
"""

from __future__ import annotations

import re

import polars as pl

from sources.errors import BadInput
from sources.formats._common import LINE, finish, lines_of, norm, read_rows, split_csv_line, to_date, to_float

HEADER = ("index_code", "as_of_date", "metric", "period", "value")
_PERIOD = re.compile(r"^(\d{4}|Q[1-4] \d{4}|current)$")
_METRIC = re.compile(r"^[a-z][a-z0-9_]*$")


def sniff(lines: list[str]) -> str | None:
    if lines and tuple(norm(c) for c in split_csv_line(lines[0])) == HEADER:
        return "generic_estimates_csv"
    return None


def parse_generic_estimates_csv(data: bytes, filename: str) -> pl.DataFrame:
    """``index_code,as_of_date,metric,period,value`` (see the module docstring)."""
    lines = lines_of(data, filename)
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None or tuple(norm(c) for c in split_csv_line(lines[start])) != HEADER:
        raise BadInput(filename, "not the generic estimates CSV", row=(start or 0) + 1,
                       found=lines[start][:120] if start is not None else "", expected=",".join(HEADER))
    frame = read_rows(lines, start + 1, list(HEADER), filename)
    frame = frame.with_columns([pl.col(c).str.strip_chars() for c in ("index_code", "metric", "period")])
    frame = to_date(frame, "as_of_date", filename, formats=("iso", "mdy"))
    frame = to_float(frame, "value", filename, required=True)
    for column, pattern, expected in (
        ("index_code", re.compile(r"^\S+$"), "an index code such as SP600"),
        ("metric", _METRIC, "a snake_case metric such as operating_eps"),
        ("period", _PERIOD, "2025, 'Q4 2025' or 'current'"),
    ):
        ok = frame[column].fill_null("").str.contains(pattern.pattern)
        if not ok.all():
            row = frame.filter(~ok).row(0, named=True)
            raise BadInput(filename, f"bad {column}", row=row[LINE], field=column, found=row[column],
                           expected=expected)
    return finish("estimates", frame, filename)


PARSERS = {"generic_estimates_csv": parse_generic_estimates_csv}
