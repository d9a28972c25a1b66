"""Proposed changes to the pipeline, measured before and after on the backfilled SYNTHETIC home.

Nothing here changes the pipeline: each prototype calls the pipeline's own functions and SQL
(``warehouse.db``, ``flows.marts``, ``expectations``, ``warehouse.publish``) on a copy of the
warehouse, or on the same files, once as the pipeline does it today ("before") and once as
proposed ("after"), in the same process, and checks that both give the same answer.

1. **Set-based validation** — the same GX suites (``expectations/landing.py``, ``expectations/marts.py``)
   evaluated as one Polars aggregate per batch (``polars_checks``: every expectation of the suite
   becomes an expression; examples are fetched only for failing ones) instead of GX's pandas engine.
   Same ``Check`` rows (expectation, column, severity, success, counts, examples).
2. **One MERGE per dataset and run** — the batches of a dataset concatenated and merged once
   (``db.prefer_sources`` + ``db.merge_core`` once) instead of once per batch.
3. **Incremental marts for the nightly run** — marts built from a window of core (the last four
   calendar years: enough for year-to-date anchors, ten-week counts and the 36-month correlation)
   with the record high carried from the previous day's scoreboard row, instead of from all of
   history; only the new rows replaced.
4. **Incremental publish** — the previous snapshot copied (a file copy) and the day's rows
   applied, big Parquet tables partitioned by year so only the current year is rewritten, instead
   of writing every table again.
5. **sha256 once per payload** — ``Batch.sha256`` hashes the payload on every access (four per
   landed batch).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl

# --------------------------------------------------------------------------------------------
# 1. set-based validation


def _plain(value):
    """GX kwargs hold pandas Timestamps for dates."""
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value


def _bound(frame: pl.DataFrame, column: str, value):
    value = _plain(value)
    if value is None:
        return None
    dtype = frame.schema[column]
    if dtype == pl.Date and isinstance(value, datetime):
        return value.date()
    return pl.lit(value)


def _condition(frame: pl.DataFrame, cond) -> pl.Expr | None:
    if not cond:
        return None
    if isinstance(cond, dict) and {"column", "operator", "parameter"} <= set(cond) and cond["operator"] == "==":
        name = cond["column"]["name"] if isinstance(cond["column"], dict) else cond["column"]
        return pl.col(name) == pl.lit(cond["parameter"])
    raise NotImplementedError(f"row condition {cond!r}")


def polars_checks(suite, frame: pl.DataFrame):
    """``expectations.runner.Check`` rows for ``suite`` on ``frame``, computed set-based with one
    Polars aggregate (plus one small query per failing map expectation for its examples)."""
    from expectations.runner import Check

    n = frame.height
    specs = []  # (config, kind, bad-row expression or None, aggregate expressions)
    aggs: list[pl.Expr] = []
    for i, exp in enumerate(suite.expectations):
        cfg = exp.configuration
        kw = dict(cfg.kwargs)
        t = cfg.type
        cond = _condition(frame, kw.get("row_condition"))
        bad = None
        if t == "expect_table_columns_to_match_ordered_list":
            specs.append((cfg, "table", frame.columns == list(kw["column_list"]), None))
            continue
        if t == "expect_compound_columns_to_be_unique":
            cols = list(kw["column_list"])
            bad = pl.struct(cols).is_duplicated() & ~pl.all_horizontal([pl.col(c).is_null() for c in cols])
        elif t == "expect_column_values_to_be_unique":
            c = pl.col(kw["column"])
            bad = c.is_duplicated() & c.is_not_null()
        elif t == "expect_column_values_to_not_be_null":
            bad = pl.col(kw["column"]).is_null()
        elif t == "expect_column_values_to_be_between":
            col = kw["column"]
            c = pl.col(col)
            lo, hi = _bound(frame, col, kw.get("min_value")), _bound(frame, col, kw.get("max_value"))
            parts = []
            if lo is not None:
                parts.append(c <= lo if kw.get("strict_min") else c < lo)
            if hi is not None:
                parts.append(c >= hi if kw.get("strict_max") else c > hi)
            bad = c.is_not_null() & pl.any_horizontal(parts) if parts else pl.lit(False)
        elif t == "expect_column_values_to_be_in_set":
            c = pl.col(kw["column"])
            bad = c.is_not_null() & ~c.is_in(pl.lit(pl.Series(list(kw["value_set"]), dtype=frame.schema[kw["column"]])))
        elif t == "expect_column_pair_values_a_to_be_greater_than_b":
            a, b = pl.col(kw["column_A"]), pl.col(kw["column_B"])
            worse = a < b if kw.get("or_equal") else a <= b
            bad = a.is_not_null() & b.is_not_null() & worse
        elif t in ("expect_column_max_to_be_between", "expect_column_min_to_be_between"):
            c = pl.col(kw["column"])
            agg = c.max() if t.endswith("max_to_be_between") else c.min()
            aggs.append(agg.alias(f"_obs{i}"))
            specs.append((cfg, "aggregate", None, i))
            continue
        elif t == "expect_column_distinct_values_to_contain_set":
            c = pl.col(kw["column"])
            scope = c.filter(cond) if cond is not None else c
            aggs.append(scope.unique().implode().alias(f"_obs{i}"))
            specs.append((cfg, "contains", None, i))
            continue
        else:
            raise NotImplementedError(t)
        if cond is not None:
            bad = bad & cond
        aggs.append(bad.sum().alias(f"_bad{i}"))
        specs.append((cfg, "map", bad, i))
    row = frame.select(aggs).row(0, named=True) if aggs else {}
    checks = []
    for cfg, kind, payload, i in specs:
        kw = cfg.kwargs
        column = kw.get("column") or (",".join(kw["column_list"]) if "column_list" in kw else None)
        if column is None and "column_A" in kw:
            column = f"{kw['column_A']},{kw['column_B']}"
        cond = kw.get("row_condition")
        if isinstance(cond, dict) and {"column", "operator", "parameter"} <= set(cond):  # as runner.run_suite names it
            name = cond["column"].get("name") if isinstance(cond["column"], dict) else cond["column"]
            column = f"{column} where {name} {cond['operator']} {cond['parameter']!r}"
        severity = "warn" if str(cfg.severity).lower().endswith("warning") else "error"
        if kind == "table":
            checks.append(Check(cfg.type, column, severity, bool(payload), None, None))
        elif kind == "aggregate":
            obs = row[f"_obs{i}"]
            lo = _plain(kw.get("min_value"))
            hi = _plain(kw.get("max_value"))
            if isinstance(obs, date) and not isinstance(obs, datetime):
                lo = lo.date() if isinstance(lo, datetime) else lo
                hi = hi.date() if isinstance(hi, datetime) else hi
            ok = obs is None or ((lo is None or obs >= lo) and (hi is None or obs <= hi))
            checks.append(Check(cfg.type, column, severity, bool(ok), None, None))
        elif kind == "contains":
            have = set(row[f"_obs{i}"] or [])
            missing = sorted(set(kw["value_set"]) - have)
            checks.append(Check(cfg.type, column, severity, not missing, None, None, missing[:5]))
        else:
            unexpected = int(row[f"_bad{i}"])
            examples = []
            if unexpected:
                cols = column.split(" where ")[0].split(",") if column else []
                examples = frame.filter(payload).select(cols).head(5).to_series(0).to_list() if len(cols) == 1 else \
                    [list(r) for r in frame.filter(payload).select(cols).head(5).rows()]
                examples = json.loads(json.dumps(examples, default=str))
            checks.append(Check(cfg.type, column, severity, unexpected == 0, n, unexpected, examples))
    return checks


def gx_result(suite, checks):
    """The GX validation result Data Docs render, built from the set-based checks (same order as
    the suite's expectations): the part of GX's work that the docs need, without its engine."""
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult

    results = []
    for exp, c in zip(suite.expectations, checks):
        result = {"element_count": c.element_count, "unexpected_count": c.unexpected_count,
                  "partial_unexpected_list": c.examples}
        if c.unexpected_count is not None and c.element_count:
            result["unexpected_percent"] = 100.0 * c.unexpected_count / c.element_count
        results.append(ExpectationValidationResult(success=c.success, expectation_config=exp.configuration,
                                                   result=result))
    ok = sum(c.success for c in checks)
    return ExpectationSuiteValidationResult(
        success=all(c.success for c in checks), results=results, suite_name=suite.name,
        statistics={"evaluated_expectations": len(checks), "successful_expectations": ok,
                    "unsuccessful_expectations": len(checks) - ok,
                    "success_percent": 100.0 * ok / len(checks) if checks else None})


def setbased(suite, frame):
    """Set-based checks plus the GX result for Data Docs: what ``run_suite`` would return."""
    checks = polars_checks(suite, frame)
    return checks, gx_result(suite, checks)


def _same(gx_checks, pl_checks) -> tuple[bool, list[str]]:
    """Compare by (expectation, column): GX orders its results its own way."""
    diffs = []
    mine: dict[tuple, list] = {}
    for p in pl_checks:
        mine.setdefault((p.expectation, p.column), []).append(p)
    for g in gx_checks:
        same_key = mine.get((g.expectation, g.column)) or []
        p = same_key.pop(0) if same_key else None
        if p is None:
            diffs.append(f"{g.expectation} {g.column}: missing in Polars")
        elif g.success != p.success or (g.unexpected_count is not None and g.unexpected_count != p.unexpected_count):
            diffs.append(f"{g.expectation} {g.column}: GX {g.success}/{g.unexpected_count}, "
                         f"Polars {p.success}/{p.unexpected_count}")
    diffs += [f"{k[0]} {k[1]}: missing in GX" for k, left in mine.items() for _ in left]
    return not diffs, diffs


def _peak_during(fn, *args, **kwargs):
    """(result, wall s, CPU s, peak resident memory above the start, bytes), sampled every 5 ms."""
    import threading

    from benchmarks.measure import rss_bytes

    start = rss_bytes()
    top = [start]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.005):
            top[0] = max(top[0], rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out, w, c = _timed(fn, *args, **kwargs)
    finally:
        stop.set()
        thread.join()
    return out, w, c, max(top[0], rss_bytes()) - start


def _timed(fn, *args, **kwargs):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


def setbased_landing(batches, as_of: date, sample: int) -> list[dict]:
    """GX vs Polars on ``sample`` batches per dataset (same process), and Polars on every batch."""
    from expectations.landing import SUITES
    from expectations.runner import run_suite

    by_dataset: dict[str, list] = {}
    for b in batches:
        by_dataset.setdefault(b.dataset, []).append(b)
    picked = []
    for ds, bs in by_dataset.items():
        bs = sorted(bs, key=lambda b: -b.frame.height)[:sample]
        picked += bs
    before = after = before_cpu = after_cpu = 0.0
    rows = 0
    diffs: list[str] = []
    for b in picked:
        opts = {"max_daily_move": 0.35} if b.dataset == "prices" else {}
        (suite, derived), w, c = _timed(SUITES[b.dataset], b.frame, as_of, **opts)
        g, w1, c1 = _timed(run_suite, b.dataset, suite, derived)
        (p, _), w2, c2 = _timed(setbased, suite, derived)
        before, before_cpu = before + w + w1, before_cpu + c + c1
        after, after_cpu = after + w + w2, after_cpu + c + c2
        rows += b.frame.height
        ok, d = _same(g.checks, p)
        diffs += [f"{b.name}: {x}" for x in d]
    full_w = full_c = 0.0
    full_rows = moves = 0
    for b in batches:
        opts = {"max_daily_move": 0.35} if b.dataset == "prices" else {}
        (suite, derived), w, c = _timed(SUITES[b.dataset], b.frame, as_of, **opts)
        (checks, _), w2, c2 = _timed(setbased, suite, derived)
        full_w, full_c, full_rows = full_w + w + w2, full_c + c + c2, full_rows + b.frame.height
        moves += sum(ch.unexpected_count or 0 for ch in checks if ch.column == "_move")
    return [
        {"name": "Set-based landing validation", "what": f"derive + suite on the {len(picked)} largest batches "
         f"({rows:,} rows): GX pandas vs one Polars aggregate",
         "before": before, "before_cpu": before_cpu, "after": after, "after_cpu": after_cpu,
         "check": "same results" if not diffs else "DIFFERENT: " + "; ".join(diffs[:3]),
         "detail": "In expectations/runner.py, `run_suite` hands the frame to GX's pandas engine (a pandas copy, then "
         "one pass per expectation plus GX's metric and result machinery). The suites stay GX suites; only their "
         "evaluation changes: every expectation type the suites use (`benchmarks/prototypes.py: polars_checks` — "
         "ordered columns, compound/single uniqueness, not-null, between incl. strict bounds and dates, in-set, "
         "A >= B, column max, distinct values containing a set with a row condition) becomes a Polars expression, "
         "all evaluated in one `frame.select(...)`, with examples fetched only for failing expectations; the GX "
         "`ExpectationSuiteValidationResult` that Data Docs render is built from those counts (`gx_result`). The "
         "Check rows (meta.validations) are identical; an expectation type without a translation falls back to GX."},
        {"name": "Set-based landing validation, every batch", "what": f"all {len(batches)} batches ({full_rows:,} rows); "
         "before = the backfill's validate stage", "before_from": "validate (Prefect task)",
         "after": full_w, "after_cpu": full_c, "check": "", "moves_flagged_per_batch": moves,
         "detail": f"Per batch, the day-over-day move of each symbol's first row in a file is not checked (its "
         f"previous close is in another file): the per-file suites flag {moves:,} moves above 35 %; the floor's "
         "query over the whole history flags the number given under Floor. Validating the dataset once per run "
         "(all of a run's batches together, set-based), or looking back at core for each symbol's last close, "
         "closes that gap."},
    ]


def setbased_marts(marts: dict[str, pl.DataFrame], with_prices: list[str]) -> dict:
    from expectations.marts import SUITES, suite as mart_suite
    from expectations.runner import run_suite

    before = after = bc = ac = 0.0
    diffs: list[str] = []
    for name, frame in marts.items():
        if name not in SUITES:
            continue
        opts = {"symbols_with_prices": with_prices} if name == "market_scoreboard" else {}
        (s, derived), w, c = _timed(mart_suite, name, frame, **opts)
        g, w1, c1 = _timed(run_suite, f"marts.{name}", s, derived)
        (p, _), w2, c2 = _timed(setbased, s, derived)
        before, bc, after, ac = before + w + w1, bc + c + c1, after + w + w2, ac + c + c2
        ok, d = _same(g.checks, p)
        diffs += [f"{name}: {x}" for x in d]
    rows = sum(f.height for f in marts.values())
    return {"name": "Set-based mart suites", "what": f"every mart suite on the full marts ({rows:,} rows): GX pandas vs "
            "one Polars aggregate per mart", "before": before, "before_cpu": bc, "after": after, "after_cpu": ac,
            "check": "same results" if not diffs else "DIFFERENT: " + "; ".join(diffs[:3]),
            "detail": "The same translation for `validate_mart` (flows/load.py check_marts). The scoreboard is the "
            "largest mart (one row per symbol and session: every loaded symbol, not only the configured universe), "
            "and GX converts it to pandas whole."}


# --------------------------------------------------------------------------------------------
# 2. one MERGE per dataset


def merge_once(batches, work: Path, config) -> list[dict]:
    """The load of the history inside one transaction, as apply_batches does it (raw insert, prefer
    sources and core MERGE per batch) vs one prefer + MERGE per dataset, and the latter with a
    DuckDB memory limit (the default is 80 % of the machine's memory: the uncommitted rows of the
    run's one transaction stay in memory up to it)."""
    import duckdb

    from warehouse import db

    known_at = datetime.now(timezone.utc).replace(microsecond=0)
    started = known_at
    out = {}

    def load(mode: str, con) -> None:
        con.execute("BEGIN TRANSACTION")
        for ds in ("prices", "short_interest"):
            mine = [b for b in batches if b.dataset == ds]
            for b in mine:
                db.insert_raw(con, ds, b.frame, f"landing/{b.name}", "proto", started)
            cores = [db.conform_core(ds, b.frame, b.source, known_at, config.publication_lag) for b in mine]
            if mode != "before":
                cores = [pl.concat(cores)]
            for core in cores:
                core = db.prefer_sources(con, ds, core, config.source_priority)
                db.merge_core(con, ds, core)
            del cores
        con.execute("COMMIT")

    for mode in ("before", "after", "after_limit"):
        path = work / f"SYNTHETIC_proto_merge_{mode}.duckdb"
        for p in (path, path.with_name(path.name + ".wal")):
            p.unlink(missing_ok=True)
        con = duckdb.connect(str(path))
        db.create_schema(con)
        if mode == "after_limit":
            con.execute("SET memory_limit = '2GB'")
        _, w, c, grew = _peak_during(load, mode, con)
        out[mode] = (w, c, grew, con.execute("SELECT count(*), sum(close) FROM core.prices_daily").fetchone(),
                     con.execute("SELECT count(*), sum(short_interest) FROM core.short_interest").fetchone())
        con.close()
        for p in (path, path.with_name(path.name + ".wal")):
            p.unlink(missing_ok=True)

    def same(a, b):
        return all(x[0] == y[0] and abs(x[1] - y[1]) <= 1e-9 * abs(x[1]) for x, y in zip(a[3:], b[3:]))

    n = sum(1 for b in batches if b.dataset in ("prices", "short_interest"))
    b, a, al = out["before"], out["after"], out["after_limit"]
    return [
        {"name": "One core MERGE per dataset", "what": f"raw insert + prefer_sources + merge_core of the history in one "
         f"transaction: {n} batches one by one vs one prefer + MERGE per dataset",
         "before": b[0], "before_cpu": b[1], "after": a[0], "after_cpu": a[1],
         "before_rss": b[2], "after_rss": a[2],
         "check": "same core rows and sums" if same(b, a) else f"DIFFERENT: {b[3:]} vs {a[3:]}",
         "detail": "flows/load.py apply_batches runs prefer_sources (a join of the batch against the whole core table) "
         "and MERGE (a join of the batch against the whole, growing core table) once per batch, so a backfill of "
         "k files scans core k times. Proposed: keep the per-batch work (quarantine, landing, raw insert, journal), "
         "collect each dataset's conformed core rows in batch order, then per dataset: keep one row per key (the "
         "best-ranked source, the latest batch among equals, i.e. what the sequence of merges yields today), one "
         "prefer_sources, one merge_core. CPI (vintages appended) keeps its per-batch path."},
        {"name": "DuckDB memory limit for the run's transaction", "what": "the same one-MERGE load with "
         "SET memory_limit = '2GB' (default: 80 % of RAM); memory = growth of the process's resident set",
         "before": a[0], "before_cpu": a[1], "after": al[0], "after_cpu": al[1], "before_rss": a[2], "after_rss": al[2],
         "check": "same core rows and sums" if same(a, al) else f"DIFFERENT: {a[3:]} vs {al[3:]}",
         "detail": ("A question more than a change: does DuckDB's memory (the uncommitted rows of the run's one "
                    "transaction, kept up to 80 % of the machine by default) drive the backfill's resident set? "
                    + ("Yes: with a 2 GB limit the load grows the process by much less; `SET memory_limit` (and "
                       "`temp_directory` under the home) in warehouse/db.py connect() would cap it."
                       if al[2] < 0.8 * a[2] else
                       "No: with a 2 GB limit the load grows the process by as much, so the memory is on the Python "
                       "side — the batches' frames and payloads, held from collect to the end of load, and their "
                       "conformed copies — and, later, in the marts (see the backfill table); a limit would only "
                       "slow the load."))},
    ]


def prefect_inputs(batches, config) -> dict:
    """A Prefect task called with the run's batches, as ``validate`` and ``load`` are: the default
    cache policy hashes every input (the frames and payloads are serialised to be hashed)."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    from benchmarks.workloads import warm_up_prefect

    warm_up_prefect()

    @task(name="proto-default-policy")
    def hashed(batches, config, as_of):
        return len(batches)

    @task(name="proto-no-cache", cache_policy=NO_CACHE)
    def plain(batches, config, as_of):
        return len(batches)

    today = date.today()
    hashed([], config, today)  # first calls register the tasks: not what is measured
    plain([], config, today)
    _, w0, c0, r0 = _peak_during(hashed, batches, config, today)
    _, w1, c1, r1 = _peak_during(plain, batches, config, today)
    size = sum(len(b.payload) for b in batches) + sum(b.frame.estimated_size() for b in batches)
    import flows.nightly as nightly

    applied = all(isinstance(getattr(getattr(nightly, t), "cache_policy", None), type(NO_CACHE))
                  for t in ("collect", "validate", "load", "publish_snapshot"))
    return {"applied": applied, "name": "Prefect tasks without input hashing",
            "what": f"one task call with the run's batches as input "
            f"({size / 2**30:.1f} GiB of frames and payloads): the default cache policy vs cache_policy=NO_CACHE; "
            "the flow makes two such calls (validate, load)",
            "before": w0, "before_cpu": c0, "after": w1, "after_cpu": c1, "before_rss": r0, "after_rss": r1,
            "check": "same result",
            "detail": "Prefect 3's default cache policy (task source + run id + inputs) serialises every input to hash "
            "it, even though results are not persisted: a call with the run's batches pays a full serialised copy in "
            "time and memory. `@task(cache_policy=NO_CACHE)` on collect, validate, load and publish_snapshot in "
            "flows/nightly.py removes it; no caching is lost (nothing is cached today)."}


# --------------------------------------------------------------------------------------------
# 3. incremental marts


def _window_read_core(original, start: date, pair_start: date, pair_symbols: list[str]):
    from warehouse.db import CORE_TABLE

    column = {"prices": "trade_date", "short_interest": "settlement_date"}

    def read_core(con, dataset, as_of):
        if dataset not in column:
            return original(con, dataset, as_of)
        col = column[dataset]
        extra, params = "", {"as_of": as_of, "start": start}
        if dataset == "prices" and pair_symbols:  # the size-spread pairs: 36 months of monthly returns
            quoted = ", ".join("'" + x.replace("'", "''") + "'" for x in pair_symbols)
            extra = f" OR ({col} >= $pair_start AND symbol IN ({quoted}))"
            params["pair_start"] = pair_start
        rel = con.sql(f"SELECT * FROM core.{CORE_TABLE[dataset]} WHERE available_on <= $as_of AND ({col} >= $start{extra})",
                      params=params)
        return pl.from_arrow(rel.to_arrow_table()).lazy()

    return read_core


def incremental_marts(con, config, as_of: date) -> tuple[list[dict], dict[str, pl.DataFrame]]:
    import flows.marts as fm
    from warehouse import db

    full, w0, c0 = _timed(fm.build_marts, con, config, as_of)
    start, pair_start = date(as_of.year - 1, 1, 1), date(as_of.year - 4, 1, 1)
    pair_symbols = sorted({x for p in config.pairs for x in (p.small, p.large)})
    original = fm.read_core
    fm.read_core = _window_read_core(original, start, pair_start, pair_symbols)
    try:
        (window, w1, c1) = _timed(fm.build_marts, con, config, as_of)
    finally:
        fm.read_core = original
    # the record high before the window, carried from each symbol's latest scoreboard row of the
    # last 30 days (a symbol halted the day before has none that day)
    t = time.perf_counter()
    c = time.process_time()
    carried = pl.from_arrow(con.sql(
        "SELECT symbol, max(record_high) AS _carried FROM marts.market_scoreboard "
        "WHERE as_of_date < $d AND as_of_date >= $d - INTERVAL 30 DAY GROUP BY symbol", params={"d": as_of}
    ).to_arrow_table())
    new = window["market_scoreboard"].filter(pl.col("as_of_date") == as_of).join(carried, on="symbol", how="left")
    new = new.with_columns(record_high=pl.max_horizontal("record_high", "_carried")).with_columns(
        pct_from_record_high=pl.col("close") / pl.col("record_high") - 1,
        is_record_high=pl.col("close") >= pl.col("record_high")).drop("_carried")
    w1 += time.perf_counter() - t
    c1 += time.process_time() - c
    ref = full["market_scoreboard"].filter(pl.col("as_of_date") == as_of)
    diff = _frame_diff(ref, new)
    weekly_ref = full["index_weekly"].filter(pl.col("week_end") == pl.col("week_end").max())
    weekly_new = window["index_weekly"].filter(pl.col("week_end") == pl.col("week_end").max())
    wdiff = _frame_diff(weekly_ref, weekly_new)
    changes = [{
        "name": "Incremental marts (nightly)", "what": f"build_marts from all history vs from {start} on ({pair_start} "
        "for the size-pair symbols; record high carried from the previous scoreboard rows)",
        "before": w0, "before_cpu": c0, "after": w1, "after_cpu": c1,
        "check": (f"new scoreboard rows identical ({ref.height:,})" if not diff else f"scoreboard DIFFERENT: {diff}")
        + ("; last week of index_weekly identical" if not wdiff else f"; index_weekly differs: {wdiff}"),
        "detail": "A nightly run only needs the rows of the new session; every mart's look-back is bounded (year-to-date "
        "anchors: the previous year; up weeks: ten weeks; the size-spread correlation: 36 months) except the record "
        "high and the up streak, which carry over from the previous row. Today build_marts reads every core table in "
        "full (read_core) and rebuilds every mart, so the nightly run costs as much as the backfill's marts and grows "
        "with the years held."}]
    # replace: every row of every mart vs the new session's rows (+ small marts in full)
    t = time.perf_counter()
    c = time.process_time()
    con.execute("BEGIN TRANSACTION")
    for name, frame in full.items():
        db.replace_mart(con, name, frame)
    con.execute("ROLLBACK")
    w2, c2 = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    c = time.process_time()
    con.execute("BEGIN TRANSACTION")
    for name, frame in window.items():
        if name == "market_scoreboard":
            con.execute("DELETE FROM marts.market_scoreboard WHERE as_of_date >= $d", {"d": as_of})
            con.register("stage", new.to_arrow())
            con.execute("INSERT INTO marts.market_scoreboard BY NAME SELECT * FROM stage")
            con.unregister("stage")
        elif name == "index_weekly":
            last = frame.filter(pl.col("week_end") == pl.col("week_end").max())
            con.execute("DELETE FROM marts.index_weekly WHERE week_end >= $d", {"d": last["week_end"].min()})
            con.register("stage", last.to_arrow())
            con.execute("INSERT INTO marts.index_weekly BY NAME SELECT * FROM stage")
            con.unregister("stage")
        else:
            db.replace_mart(con, name, full[name])
    con.execute("ROLLBACK")
    w3, c3 = time.perf_counter() - t, time.process_time() - c
    changes.append({"name": "Replace only the new mart rows (nightly)", "what": "replace_mart of every row of every "
                    "mart vs delete-insert of the new session (scoreboard, index_weekly) and the small marts in full",
                    "before": w2, "before_cpu": c2, "after": w3, "after_cpu": c3, "check": "both rolled back"})
    return changes, full


def _frame_diff(a: pl.DataFrame, b: pl.DataFrame) -> str:
    """'' when equal; else the differing columns and how many rows differ."""
    if a.height != b.height:
        return f"{a.height} vs {b.height} rows"
    keys = [c for c in ("as_of_date", "week_end", "symbol") if c in a.columns]
    a, b = a.sort(keys), b.select(a.columns).sort(keys)
    bad = []
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype.is_float():
            same = ((x - y).abs() <= 1e-9 * (x.abs() + 1)) | (x.is_null() & y.is_null()) | (x.is_nan() & y.is_nan())
            same = same.fill_null(False)
        else:
            same = (x == y).fill_null(False) | (x.is_null() & y.is_null())
        n = int((~same).sum())
        if n:
            bad.append(f"{c} ({n} rows)")
    return ", ".join(bad)


def incremental_health(con, as_of: date) -> dict:
    """flows.load.source_health as it is (a window function over every core table, and the
    cross-source disagreements over all of raw.prices) vs plain aggregates and the disagreements of
    the days the run touched."""
    from types import SimpleNamespace

    from flows.load import source_health
    from sources.schemas import DATASETS, DATE_COLUMN
    from warehouse import db

    run_id = con.execute("SELECT _run_id FROM raw.prices ORDER BY _loaded_at DESC LIMIT 1").fetchone()[0]
    run = SimpleNamespace(as_of=as_of, run_id=run_id, health_notes=[], source_failures=[], source_events=[])
    con.execute("BEGIN TRANSACTION")
    _, w0, c0 = _timed(source_health, con, run)
    before = sorted(con.execute("SELECT source, dataset, newest_observation, rows_held, sentinel_count "
                                "FROM meta.source_health").fetchall())
    found0 = con.execute("SELECT count(*) FROM meta.source_disagreements").fetchone()[0]
    con.execute("ROLLBACK")

    def health():
        rows = []
        for dataset in DATASETS:
            table, col = db.CORE_TABLE[dataset], DATE_COLUMN[dataset]
            for source, newest, held in con.execute(
                    f"SELECT source, max({col}), count(*) FROM core.{table} WHERE available_on <= ? GROUP BY source",
                    [as_of]).fetchall():
                sentinels = con.execute(
                    f"SELECT count(*) FROM core.{table} WHERE source = ? AND {col} = ? AND available_on <= ? "
                    "AND days_to_cover IS NULL AND avg_daily_volume IS NOT NULL", [source, newest, as_of]
                ).fetchone()[0] if dataset == "short_interest" else None
                rows.append((source, dataset, newest, held, sentinels))
        # disagreements: only the (symbol, day) keys this run loaded into raw
        con.execute("DELETE FROM meta.source_disagreements WHERE dataset = 'prices' AND (symbol, observation_date) IN "
                    "(SELECT symbol, trade_date FROM raw.prices WHERE _run_id = $run_id)", {"run_id": run_id})
        sql = db.sql_file("meta_source_disagreements.sql").replace("DELETE FROM meta.source_disagreements;", "").replace(
            "WHERE r.close IS NOT NULL AND r.trade_date <= $as_of",
            "WHERE r.close IS NOT NULL AND r.trade_date <= $as_of AND (r.symbol, r.trade_date) IN "
            "(SELECT symbol, trade_date FROM raw.prices WHERE _run_id = $run_id)")
        con.execute(sql, {"as_of": as_of, "run_id": run_id})
        return sorted(rows)

    con.execute("BEGIN TRANSACTION")
    after, w1, c1 = _timed(health)
    found1 = con.execute("SELECT count(*) FROM meta.source_disagreements").fetchone()[0]
    con.execute("ROLLBACK")
    same = [r[:5] for r in before] == after and found0 == found1
    return {"name": "Source health without full scans (nightly)", "what": "source_health as it is vs GROUP BY "
            "aggregates (no window over every row) and the disagreements of the keys the run loaded",
            "before": w0, "before_cpu": c0, "after": w1, "after_cpu": c1,
            "check": "same health rows and disagreements" if same else f"DIFFERENT: {before} vs {after}",
            "detail": "flows/load.py source_health computes `max(date) OVER (PARTITION BY source)` over every row of "
            "every core table to find the newest day's sentinels, and meta_source_disagreements.sql regroups all of "
            "raw.prices joined with meta.landing_files on every run. The newest day and the row count are plain "
            "aggregates (the sentinel count a second query on that one day), and disagreements only change for the "
            "(symbol, day) keys the run loaded (raw.prices._run_id): delete and recompute those."}


# --------------------------------------------------------------------------------------------
# 4. incremental publish


def incremental_publish(warehouse: Path, snapshot: Path, work: Path, as_of: date) -> dict:
    import duckdb

    from warehouse import publish as pub

    before_dir = work / "SYNTHETIC_proto_publish_before"
    shutil.rmtree(before_dir, ignore_errors=True)
    manifest, w0, c0 = _timed(pub.publish, warehouse, before_dir, run_id="proto-before", as_of=as_of)
    shutil.rmtree(before_dir, ignore_errors=True)
    after_dir = work / "SYNTHETIC_proto_publish_after"
    shutil.rmtree(after_dir, ignore_errors=True)
    after_dir.mkdir(parents=True)
    w, c = time.perf_counter(), time.process_time()
    target = after_dir / "capspread.duckdb"
    shutil.copyfile(snapshot, target)  # the previous snapshot (same storage version)
    con = duckdb.connect()
    con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
    con.execute(f"ATTACH '{target}' AS snap")
    tables, _ = pub._catalogue(con)
    delta = {  # the rows a nightly run adds to the big tables
        ("core", "prices_daily"): "known_at >= (SELECT max(known_at) FROM wh.core.prices_daily)",
        ("core", "short_interest"): "known_at >= (SELECT max(known_at) FROM wh.core.short_interest)",
        ("marts", "market_scoreboard"): f"as_of_date >= DATE '{as_of}'",
        ("marts", "index_weekly"): "week_end >= (SELECT max(week_end) FROM wh.marts.index_weekly)",
    }
    counts = {}
    con.execute("BEGIN TRANSACTION")
    for schema, table, _comment in tables:
        name = f'"{schema}"."{table}"'
        where = delta.get((schema, table))
        if where:
            # delete the keys of the delta, then insert it (here: the same rows, as a nightly run would)
            con.execute(f"DELETE FROM snap.{name} WHERE {where}")
            con.execute(f"INSERT INTO snap.{name} SELECT * FROM wh.{name} WHERE {where}")
        else:
            con.execute(f"DELETE FROM snap.{name}")
            con.execute(f"INSERT INTO snap.{name} SELECT * FROM wh.{name}")
        counts[f"{schema}.{table}"] = con.execute(f"SELECT count(*) FROM snap.{name}").fetchone()[0]
    con.execute("COMMIT")
    con.execute("DETACH snap")
    # Parquet: big tables partitioned by year, only the current year's file rewritten
    gen = after_dir / "parquet"
    for schema, table, _comment in tables:
        path = gen / schema / f"{table}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        name = f'"{schema}"."{table}"'
        big = (schema, table) in delta
        if big:
            col = {"prices_daily": "trade_date", "short_interest": "settlement_date", "market_scoreboard": "as_of_date",
                   "index_weekly": "week_end"}[table]
            part = f"{path.with_suffix('')}_{as_of.year}.parquet"
            con.execute(f"COPY (SELECT * FROM wh.{name} WHERE year({col}) = {as_of.year}) TO '{part}' "
                        "(FORMAT parquet, COMPRESSION zstd)")
        else:
            con.execute(f"COPY wh.{name} TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
    con.close()
    w1, c1 = time.perf_counter() - w, time.process_time() - c
    same = all(counts.get(k) == v for k, v in manifest["tables"].items())
    shutil.rmtree(after_dir, ignore_errors=True)
    return {"name": "Incremental publish (nightly)", "what": "publish() of every table vs copy of the previous snapshot "
            "+ the day's rows of the four big tables (small tables in full) + Parquet of the current year only",
            "before": w0, "before_cpu": c0, "after": w1, "after_cpu": c1,
            "check": "same row counts per table" if same else "row counts DIFFER",
            "detail": "publish() rewrites every row of core, marts and meta into a new DuckDB file and new Parquet files on "
            "every run, so the nightly publish costs as much as the backfill's. The snapshot stays atomic with the "
            "change: the copy is written beside the live file and renamed over it as today; the Parquet generation "
            "links the unchanged year files of the previous generation (hard links) and writes the current year."}


# --------------------------------------------------------------------------------------------
# 5. sha256


def sha256_once(batches) -> dict:
    payloads = [b.payload for b in batches]
    size = sum(len(p) for p in payloads)
    w, c = time.perf_counter(), time.process_time()
    for _ in range(4):
        for p in payloads:
            hashlib.sha256(p).hexdigest()
    w0, c0 = time.perf_counter() - w, time.process_time() - c
    w, c = time.perf_counter(), time.process_time()
    for p in payloads:
        hashlib.sha256(p).hexdigest()
    w1, c1 = time.perf_counter() - w, time.process_time() - c
    import functools

    from sources.base import Batch

    applied = isinstance(Batch.__dict__["sha256"], functools.cached_property)
    return {"applied": applied, "name": "sha256 once per payload",
            "what": f"hashing {size / 2**20:,.0f} MiB of payloads four times "
            "(Batch.sha256 is a property: apply_batches, land and the landing row each hash again) vs once "
            "(functools.cached_property)", "before": w0, "before_cpu": c0, "after": w1, "after_cpu": c1, "check": "",
            "detail": "sources/base.py: `sha256` as `functools.cached_property` (the payload never changes once a "
            "Batch exists). Small, but it is paid on every landed byte."}


# --------------------------------------------------------------------------------------------


def run(spec: dict) -> dict:
    import duckdb

    from benchmarks.synthetic import MANIFEST, SyntheticSource
    from capspread.config import Config
    from expectations.runner import _context

    if spec.get("prefect_home"):
        from benchmarks.workloads import prefect_env

        prefect_env(Path(spec["prefect_home"]))
    _context()
    data, work, home = Path(spec["data"]), Path(spec["work"]), Path(spec["home"])
    manifest = json.loads((data / MANIFEST).read_text())
    end, nightly = date.fromisoformat(manifest["end"]), date.fromisoformat(manifest["nightly"])
    config = Config.load(Path(spec["config"]))
    source = SyntheticSource(data)
    batches = [b for ds in ("prices", "short_interest", "holdings") for b in source.fetch(ds, end, None)]
    changes: list[dict] = []
    errors: list[str] = []

    def attempt(fn, *args):
        try:
            out = fn(*args)
            return out
        except Exception as exc:  # one prototype failing must not lose the others
            errors.append(f"{getattr(fn, '__name__', fn)}: {type(exc).__name__}: {exc}")
            return None

    for step in (lambda: setbased_landing(batches, end, int(spec.get("validate_sample", 2))),
                 lambda: merge_once(batches, work, config),
                 lambda: [prefect_inputs(batches, config)],
                 lambda: [sha256_once(batches)]):
        got = attempt(step)
        if got:
            changes += got
    del batches
    copy = work / "SYNTHETIC_proto_warehouse.duckdb"
    shutil.copyfile(home / "warehouse.duckdb", copy)
    con = duckdb.connect(str(copy))
    got = attempt(incremental_marts, con, config, nightly)
    if got:
        inc, full = got
        changes += inc
        latest = full["market_scoreboard"]["as_of_date"].max()
        configured = {s.symbol for s in config.universe}
        with_prices = sorted(configured & {r[0] for r in con.execute(
            "SELECT DISTINCT symbol FROM core.prices_daily WHERE trade_date = ?", [latest]).fetchall()})
        got = attempt(setbased_marts, full, with_prices)
        if got:
            changes.append(got)
        del full
    got = attempt(incremental_health, con, nightly)
    if got:
        changes.append(got)
    con.close()
    got = attempt(incremental_publish, copy, home / "published" / "capspread.duckdb", work, nightly)
    if got:
        changes.append(got)
    copy.unlink(missing_ok=True)
    order = ["Prefect tasks without input hashing", "Set-based landing validation",
             "Set-based landing validation, every batch", "Set-based mart suites",
             "One core MERGE per dataset", "DuckDB memory limit for the run's transaction",
             "Incremental marts (nightly)", "Replace only the new mart rows (nightly)",
             "Source health without full scans (nightly)",
             "Incremental publish (nightly)", "sha256 once per payload"]
    changes.sort(key=lambda c: order.index(c["name"]) if c["name"] in order else 99)
    return {"changes": changes, "errors": errors}
