"""The naive baseline: what a typical tutorial pipeline does with the same SYNTHETIC files.

- read: ``pandas.read_parquet`` of the files (measured on every file);
- validate: derived columns in pandas (``groupby().shift()``, ``isin``), then the same landing
  suite (``expectations.landing``) with Great Expectations on the pandas frame;
- load: row-wise ``executemany`` INSERTs into DuckDB (one insert per row, raw table only, which
  is less than the pipeline writes);
- transform: the scoreboard in pandas, symbol by symbol (``groupby`` loop with ``to_period``
  weeks, months and years, ``cummax``, a rolling count of up weeks, a rank per day).

The rest runs on subsets (the first ``k`` symbols, all years; the first ``n`` rows for the
inserts), two sizes each, and is extrapolated to the full universe with the measured slope:
``t(N) = t(r2) + (t(r2) - t(r1)) / (r2 - r1) * (N - r2)`` (proportionally from the larger point
when noise makes the slope negative). Nothing of it is run at full scale: the inserts alone would
take hours.
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path


def extrapolate(points: list[tuple[int, float]], n: int) -> tuple[float, float]:
    """(seconds at ``n`` rows, seconds per row) from two measured (rows, seconds) points."""
    (r1, t1), (r2, t2) = sorted(points)[:2]
    slope = (t2 - t1) / (r2 - r1) if r2 != r1 else 0.0
    if slope <= 0:
        slope = t2 / r2
        return slope * n, slope
    return t2 + slope * (n - r2), slope


def _gx_validate(name: str, pdf, suite) -> int:
    from expectations.runner import _context

    ctx = _context()
    source = ctx.data_sources.add_or_update_pandas(f"baseline_{name}")
    asset = source.add_dataframe_asset(name=name)
    batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(batch_parameters={"dataframe": pdf})
    result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
    ctx.data_sources.delete(f"baseline_{name}")
    return sum(not r.success for r in result.results)


def validate_prices(pdf, sessions_index, as_of: date) -> int:

    from expectations.landing import prices
    from sources.schemas import empty

    pdf = pdf.sort_values(["symbol", "trade_date"]).reset_index(drop=True)
    pdf["_move"] = (pdf["close"] / pdf.groupby("symbol")["close"].shift(1) - 1).abs()
    pdf["_is_session"] = pdf["trade_date"].isin(sessions_index)
    suite, _ = prices(empty("prices"), as_of)
    return _gx_validate("prices", pdf, suite)


def validate_short_interest(pdf, as_of: date) -> int:
    from expectations.landing import short_interest
    from sources.schemas import empty

    suite, _ = short_interest(empty("short_interest"), as_of)
    return _gx_validate("short_interest", pdf, suite)


def pandas_scoreboard(pdf):
    """The scoreboard's measures, the way a notebook computes them."""
    import pandas as pd

    pdf = pdf.copy()
    pdf["trade_date"] = pd.to_datetime(pdf["trade_date"])
    parts = []
    for _, g in pdf.sort_values(["symbol", "trade_date"]).groupby("symbol"):
        g = g.set_index("trade_date")
        out = g[["symbol", "close"]].copy()
        for period, column in (("W-FRI", "wtd_return"), ("M", "mtd_return"), ("Y", "ytd_return")):
            key = g.index.to_period(period)
            last = g["close"].groupby(key).last()
            prev = last.shift(1)
            out[column] = g["close"].values / prev.reindex(key).values - 1
        week = g.index.to_period("W-FRI")
        weekly = g["close"].groupby(week).last()
        up = (weekly.pct_change() > 0).astype(int).rolling(10, min_periods=1).sum()
        out["up_weeks_last_10"] = up.reindex(week).values
        out["record_high"] = g["close"].cummax()
        out["pct_from_record_high"] = g["close"] / out["record_high"] - 1
        parts.append(out.reset_index())
    board = pd.concat(parts, ignore_index=True)
    board["wtd_rank"] = board.groupby("trade_date")["wtd_return"].rank(method="min", ascending=False)
    return board


def _executemany(con, table: str, pdf) -> None:
    marks = ", ".join("?" for _ in pdf.columns)
    con.executemany(f"INSERT INTO {table} VALUES ({marks})", list(pdf.itertuples(index=False, name=None)))


def run(spec: dict) -> dict:
    import duckdb
    import pandas as pd

    from benchmarks.measure import Recorder
    from benchmarks.synthetic import MANIFEST, files_of
    from transforms.calendar import sessions

    folder = Path(spec["data"])
    manifest = json.loads((folder / MANIFEST).read_text())
    as_of = date.fromisoformat(manifest["end"])
    full = {d: sum(f["rows"] for f in manifest["files"] if f["dataset"] == d and f["role"] == "history")
            for d in ("prices", "short_interest")}
    total_symbols = manifest["universe"]["symbols"]
    ks = sorted({min(k, total_symbols) for k in spec.get("subset_symbols", (100, 200))})
    ns = sorted(spec.get("insert_rows", (1000, 2000)))
    rec = Recorder().start()
    with rec.stage("imports (pandas, GX)"):
        import expectations.landing  # noqa: F401
        from expectations.runner import _context

        _context()
    sess = pd.to_datetime(pd.Series(sessions(date.fromisoformat(manifest["start"]), as_of)["trade_date"].to_list()))
    points: dict[str, list[tuple[int, float]]] = {}
    measured = []
    # reading is cheap enough to measure on every file (not extrapolated)
    t = time.perf_counter()
    whole = [pd.read_parquet(files_of(manifest, folder, d, "history")) for d in ("prices", "short_interest")]
    t_read_all = time.perf_counter() - t
    del whole
    for k in ks:
        symbols = [f"SYN{i:05d}" for i in range(k)]
        filters = [("symbol", "in", symbols)]
        prices = pd.read_parquet(files_of(manifest, folder, "prices", "history"), filters=filters)
        short = pd.read_parquet(files_of(manifest, folder, "short_interest", "history"), filters=filters)
        prices["trade_date"] = pd.to_datetime(prices["trade_date"])
        short["settlement_date"] = pd.to_datetime(short["settlement_date"])
        rows = len(prices) + len(short)
        t = time.perf_counter()
        validate_prices(prices.copy(), sess, as_of)
        validate_short_interest(short.copy(), as_of)
        t_validate = time.perf_counter() - t
        t = time.perf_counter()
        pandas_scoreboard(prices)
        t_transform = time.perf_counter() - t
        points.setdefault("validate (pandas derive + GX pandas)", []).append((rows, t_validate))
        points.setdefault("transform (pandas scoreboard, per-symbol loop)", []).append((len(prices), t_transform))
        measured.append({"symbols": k, "rows": rows, "validate": t_validate, "transform": t_transform})
    con = duckdb.connect(str(Path(spec["work"]) / "SYNTHETIC_baseline.duckdb"))
    sample = pd.read_parquet(files_of(manifest, folder, "prices", "history")[-1]).head(max(ns))
    sample["trade_date"] = pd.to_datetime(sample["trade_date"]).dt.date
    for n in ns:
        con.execute("CREATE OR REPLACE TABLE raw_prices (symbol VARCHAR, trade_date DATE, open DOUBLE, high DOUBLE, "
                    "low DOUBLE, close DOUBLE, adj_close DOUBLE, volume DOUBLE)")
        t = time.perf_counter()
        _executemany(con, "raw_prices", sample.head(n))
        points.setdefault("load (row-wise executemany)", []).append((n, time.perf_counter() - t))
    con.close()
    (Path(spec["work"]) / "SYNTHETIC_baseline.duckdb").unlink(missing_ok=True)
    rec.stop()
    n_total = full["prices"] + full["short_interest"]
    target = {"validate (pandas derive + GX pandas)": n_total,
              "transform (pandas scoreboard, per-symbol loop)": full["prices"], "load (row-wise executemany)": n_total}
    stages = [{"name": "read (pandas.read_parquet of every file, measured in full)", "points": [(n_total, t_read_all)],
               "rows": n_total, "seconds": t_read_all, "rows_per_second": n_total / t_read_all if t_read_all else None}]
    for name, pts in points.items():
        seconds, per_row = extrapolate(pts, target[name])
        stages.append({"name": name, "points": pts, "rows": target[name], "seconds": seconds,
                       "rows_per_second": 1 / per_row if per_row else None})
    return {"stages": stages, "measured": measured, "total_seconds": sum(s["seconds"] for s in stages),
            "recorder": rec.as_dicts(), "full_rows": full}
