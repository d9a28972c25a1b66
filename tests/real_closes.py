"""Independent reading of the real yfinance CSV fixtures with the csv module (no Polars)."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def closes(symbol: str) -> dict[date, float]:
    """{date: close} from the real yfinance download slice of ``symbol``."""
    path = next((FIXTURES / "prices").glob(f"yf_{symbol}_daily_*.csv"))
    with path.open(newline="") as fh:
        return {date.fromisoformat(r["Date"][:10]): float(r["Close"]) for r in csv.DictReader(fh)}


def last_close_before(series: dict[date, float], day: date) -> float:
    return series[max(d for d in series if d < day)]


def week_closes(series: dict[date, float]) -> dict[tuple[int, int], tuple[date, float]]:
    """{(iso year, iso week): (last date, last close)} — weeks by the ISO calendar."""
    out: dict[tuple[int, int], tuple[date, float]] = {}
    for d in sorted(series):
        out[d.isocalendar()[:2]] = (d, series[d])
    return out
