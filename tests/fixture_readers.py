"""Independent readings of real fixture files with the standard library (never the parsers under
test), shared by the source tests and the end-to-end live test."""

from __future__ import annotations

import csv
from pathlib import Path


def finra_records(path: Path) -> list[dict]:
    """The records of a FINRA pipe-delimited short-interest file as the Query API returns them:
    quantities as int, days to cover and change percent as float, empty fields as None."""
    rows = list(csv.reader(path.read_text().splitlines(), delimiter="|"))
    out = []
    for r in rows[1:]:
        rec: dict = dict(zip(rows[0], r))
        for key in ("currentShortPositionQuantity", "previousShortPositionQuantity", "averageDailyVolumeQuantity",
                    "changePreviousNumber"):
            rec[key] = int(rec[key])
        for key in ("daysToCoverQuantity", "changePercent"):
            rec[key] = float(rec[key])
        out.append({k: (None if v == "" else v) for k, v in rec.items()})
    return out


def french_values(text: str) -> dict[str, dict[str, float]]:
    """A Kenneth French factor CSV: date → factor → percent, first table only."""
    out: dict[str, dict[str, float]] = {}
    header = None
    for r in csv.reader(text.splitlines()):
        if r and r[0].strip() in ("", "Date") and len(r) > 1 and r[1].strip() == "Mkt-RF":
            header = [c.strip() for c in r]
            continue
        if header is not None:
            if not r or not r[0].strip().isdigit() or len(r[0].strip()) < 6:
                break
            out[r[0].strip()] = {h: float(v) for h, v in zip(header[1:], r[1:])}
    return out
