"""Source health on a real warehouse file: the health rows are plain aggregates and the
disagreements are recomputed only for the keys a run loaded, yet both equal what a computation over
everything gives. The expectations are computed here in Polars from the rows inserted, never with
the module's SQL."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import combinations
from types import SimpleNamespace

import polars as pl
import pytest

from flows import health
from warehouse import db

DAYS = [date(2025, 3, 3) + timedelta(days=i) for i in range(14)]
LANDING = {  # path -> (source, format)
    "landing/sample/prices/one.csv": ("sample", "csv"),
    "landing/inbox/prices/stooq.txt": ("inbox", "stooq_bulk"),
    "landing/inbox/prices/yahoo.csv": ("inbox", "yahoo_csv"),
    "landing/sample/prices/two.csv": ("sample", "csv"),
}


def _run(run_id: str, as_of: date, profile: str = "sample", **kw) -> SimpleNamespace:
    return SimpleNamespace(run_id=run_id, as_of=as_of, profile=profile, health_notes=[],
                           source_failures=kw.get("failures", []), source_events=kw.get("events", []))


def _raw(rows: list[tuple], run_id: str) -> pl.DataFrame:
    return pl.DataFrame(
        [{"symbol": s, "trade_date": d, "close": c, "_landing_file": f, "_run_id": run_id} for s, d, c, f in rows],
        schema={"symbol": pl.String, "trade_date": pl.Date, "close": pl.Float64, "_landing_file": pl.String,
                "_run_id": pl.String})


def _load_raw(con, frame: pl.DataFrame) -> None:
    con.register("incoming", frame.to_arrow())
    con.execute("INSERT INTO raw.prices BY NAME SELECT *, now() AS _loaded_at FROM incoming")
    con.unregister("incoming")


def _expected_disagreements(raw: pl.DataFrame, as_of: date) -> list[tuple]:
    """Every pair of sources (inbox files by format) whose closes of a symbol and day differ by more
    than a cent, from every raw row public by ``as_of``."""
    label = {p: s + (f":{f}" if s == "inbox" else "") for p, (s, f) in LANDING.items()}
    per = (raw.filter(pl.col("close").is_not_null() & (pl.col("trade_date") <= as_of))
           .with_columns(source=pl.col("_landing_file").replace_strict(label))
           .group_by("symbol", "trade_date", "source").agg(pl.col("close").first()))
    out = []
    for (symbol, day), group in per.group_by("symbol", "trade_date"):
        closes = dict(zip(group["source"], group["close"]))
        for a, b in combinations(sorted(closes), 2):
            if abs(closes[b] - closes[a]) > 0.01:
                out.append(("prices", symbol, day, a, closes[a], b, closes[b], pytest.approx(closes[b] - closes[a])))
    return sorted(out, key=lambda r: r[:4])


def _disagreements(con, with_run: bool = False) -> list[tuple]:
    cols = "dataset, symbol, observation_date, source_a, value_a, source_b, value_b, difference"
    return [tuple(r) for r in con.execute(
        f"SELECT {cols}{', run_id' if with_run else ''} FROM meta.source_disagreements ORDER BY 2, 3, 4, 6"
    ).fetchall()]


@pytest.fixture()
def con(tmp_path):
    con = db.connect(tmp_path / "warehouse.duckdb")
    db.create_schema(con)
    con.executemany("INSERT INTO meta.landing_files (path, source, dataset, format) VALUES (?, ?, 'prices', ?)",
                    [(p, s, f) for p, (s, f) in LANDING.items()])
    yield con
    con.close()


def test_disagreements_are_recomputed_for_the_keys_a_run_loaded(con):
    sample, stooq, yahoo, sample2 = LANDING
    # run 1: the sample and a Stooq file for days 0-9; Stooq is off on some of AAA's days, by under a
    # cent on others, sends a NULL close once and a row dated after the run's as-of date
    one = [("AAA", DAYS[i], 100.0 + i, sample) for i in range(10)] + [("BBB", DAYS[i], 50.0 + i, sample)
                                                                     for i in range(10)]
    one += [("AAA", DAYS[i], 100.0 + i + (0.5 if i % 3 == 0 else 0.004), stooq) for i in range(10)]
    one += [("BBB", DAYS[i], 50.0 + i, stooq) for i in range(9)] + [("BBB", DAYS[9], None, stooq)]
    one += [("AAA", DAYS[10], 777.0, stooq)]
    raw = _raw(one, "run-1")
    _load_raw(con, raw)
    health.source_health(con, _run("run-1", DAYS[9]))
    first = _expected_disagreements(raw, DAYS[9])
    assert len(first) == 4 and {r[3:6:2] for r in first} == {("inbox:stooq_bulk", "sample")}
    assert _disagreements(con) == first
    assert {r[-1] for r in _disagreements(con, with_run=True)} == {"run-1"}

    # run 2: two new days, and a Yahoo file that revisits day 5 (disagreeing with both) and day 10
    two = [("AAA", DAYS[i], 100.0 + i, sample2) for i in (10, 11)] + [("BBB", DAYS[i], 50.0 + i, sample2)
                                                                     for i in (10, 11)]
    two += [("AAA", DAYS[5], 105.0 + 2, yahoo), ("AAA", DAYS[10], 110.0 - 1, yahoo), ("BBB", DAYS[3], 53.0, yahoo)]
    _load_raw(con, _raw(two, "run-2"))
    raw = pl.concat([raw, _raw(two, "run-2")])
    health.source_health(con, _run("run-2", DAYS[11]))
    second = _expected_disagreements(raw, DAYS[11])
    assert len(second) > len(first)
    assert _disagreements(con) == second
    # the rows of the keys run 2 loaded are run 2's; the others are left as run 1 found them
    touched = {(s, d) for s, d, *_ in two}
    for row in _disagreements(con, with_run=True):
        assert row[-1] == ("run-2" if (row[1], row[2]) in touched else "run-1"), row

    # run 3 loads no prices: the table is left alone
    before = _disagreements(con, with_run=True)
    health.source_health(con, _run("run-3", DAYS[12]))
    assert _disagreements(con, with_run=True) == before

    # a replay (raw reloaded under the journals' run ids) rebuilds every key, with the same result
    con.execute("DELETE FROM meta.source_disagreements")
    health.source_health(con, _run("replay-run", DAYS[11], profile="replay"))
    assert _disagreements(con) == second
    assert {r[-1] for r in _disagreements(con, with_run=True)} == {"replay-run"}
    # a full rebuild as of the same day equals the incremental result (the old computation)
    health.update_disagreements(con, "full-run", DAYS[11], full=True)
    assert _disagreements(con) == second


def _core_rows(con) -> tuple[pl.DataFrame, pl.DataFrame]:
    prices = pl.DataFrame(
        [{"symbol": s, "trade_date": d, "close": 1.0, "available_on": d, "source": src}
         for s in ("AAA", "BBB") for d in DAYS[:12] for src in ("sample",)]
        + [{"symbol": "CCC", "trade_date": d, "close": 1.0, "available_on": d, "source": "inbox"} for d in DAYS[:3]]
        + [{"symbol": "AAA", "trade_date": DAYS[13], "close": 1.0, "available_on": DAYS[13], "source": "sample"}],
        schema_overrides={"trade_date": pl.Date, "available_on": pl.Date})
    s1, s2, s3 = date(2025, 1, 15), date(2025, 1, 31), date(2025, 2, 14)
    lag = timedelta(days=9)
    short = pl.DataFrame(
        [  # FINRA: at the newest public settlement X sent the 999.99 sentinel; Y has no volume at all
            {"symbol": "X", "settlement_date": s1, "avg_daily_volume": 10, "days_to_cover": 2.0, "source": "finra"},
            {"symbol": "X", "settlement_date": s2, "avg_daily_volume": 10, "days_to_cover": None, "source": "finra"},
            {"symbol": "Y", "settlement_date": s2, "avg_daily_volume": None, "days_to_cover": None, "source": "finra"},
            {"symbol": "Z", "settlement_date": s2, "avg_daily_volume": 10, "days_to_cover": 1.5, "source": "finra"},
            {"symbol": "W", "settlement_date": s1, "avg_daily_volume": 10, "days_to_cover": None, "source": "finra"},
            # not public yet by the as-of date: neither newest nor counted
            {"symbol": "X", "settlement_date": s3, "avg_daily_volume": 10, "days_to_cover": None, "source": "finra"},
            {"symbol": "V", "settlement_date": s1, "avg_daily_volume": 10, "days_to_cover": None, "source": "inbox"},
        ],
        schema_overrides={"settlement_date": pl.Date, "avg_daily_volume": pl.Int64, "days_to_cover": pl.Float64},
    ).with_columns(available_on=pl.col("settlement_date") + lag)
    con.register("p", prices.to_arrow())
    con.execute("INSERT INTO core.prices_daily BY NAME SELECT * FROM p")
    con.register("s", short.to_arrow())
    con.execute("INSERT INTO core.short_interest BY NAME SELECT * FROM s")
    return prices, short


def test_health_rows_equal_the_aggregates_over_every_row(con):
    prices, short = _core_rows(con)
    as_of = DAYS[11]
    run = _run("run-h", as_of, failures=[("yahoo", "prices", "timed out")],
               events=[("spdji", "estimates", "ended", "discontinued")])
    health.source_health(con, run)
    got = {(r[0], r[1]): r[2:] for r in con.execute(
        "SELECT source, dataset, status, newest_observation, staleness_days, rows_held, sentinel_count, "
        "expected_every_days, message, run_id FROM meta.source_health").fetchall()}

    expected = {}
    for dataset, frame, column in (("prices", prices, "trade_date"), ("short_interest", short, "settlement_date")):
        public = frame.filter(pl.col("available_on") <= as_of)
        for (source,), group in public.group_by("source"):
            newest = group[column].max()
            sentinels = None
            if dataset == "short_interest":
                sentinels = group.filter((pl.col(column) == newest) & pl.col("days_to_cover").is_null()
                                         & pl.col("avg_daily_volume").is_not_null()).height
            stale = (as_of - newest).days
            status = "stale" if stale > health.CADENCE_DAYS[dataset] else "ok"
            expected[(source, dataset)] = (status, newest, stale, group.height, sentinels)
    assert expected[("finra", "short_interest")][4] == 1 and expected[("inbox", "short_interest")][4] == 1
    assert expected[("inbox", "prices")][0] == "stale"

    assert set(got) == set(expected) | {("yahoo", "prices"), ("spdji", "estimates")}
    for key, (status, newest, stale, held, sentinels) in expected.items():
        row = got[key]
        assert row[:5] == (status, newest, stale, held, sentinels), key
        assert row[5] == health.CADENCE_DAYS[key[1]] and row[7] == "run-h"
        assert ("FINRA 999.99 sentinels" in row[6]) == bool(sentinels)
    assert got[("yahoo", "prices")][0] == "failed" and "timed out" in got[("yahoo", "prices")][6]
    assert got[("spdji", "estimates")][0] == "ended"
    assert any("inbox/prices is stale" in n for n in run.health_notes)
    assert any("could not be fetched" in n for n in run.health_notes)


def test_source_health_is_still_importable_from_flows_load():
    from flows.load import source_health

    assert source_health is health.source_health
