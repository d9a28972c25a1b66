"""Short-interest revisions are vintages: a revised row adds a row with its own ``known_at``, an
unchanged re-delivery adds nothing, and everything reading ``core.short_interest`` (marts, source
health) uses the latest vintage known as of the run's date — never a revision learned later.

Data: FINRA's real biweekly file of settlement 2021-07-15 (71-row excerpt,
tests/fixtures/short_interest/, provenance in NOTICE) and the real iShares IWM and IVV holdings
(tests/fixtures/holdings/) for the size buckets. No real *revised* FINRA file is on hand, so the
revised delivery is that real file with one number changed by this test: AAPL's
``currentShortPositionQuantity`` raised by ``BUMP`` shares. That number is a test value, not
market data; every other value is FINRA's.

Expected values are worked out from the raw pipe file with the ``csv`` module, and by hand: of the
71 symbols, A, AAPL and ABBV are IVV (large bucket) holdings, AAOI, AAP, AAT and ABCB IWM (small).
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from capspread.config import Config, known_at_for
from flows.load import source_health
from flows.marts import build_marts
from flows.nightly import RunResult
from sources import formats
from warehouse import db

FIX = Path(__file__).resolve().parents[1] / "fixtures"
PIPE = FIX / "short_interest" / "finra_shrt20210715_excerpt_first71rows.txt"
HOLDINGS = [FIX / "holdings" / "iShares_IWM_holdings_2026-05-05.csv", FIX / "holdings" / "iShares_IVV_holdings_2026-06-19.csv"]
SETTLED = date(2021, 7, 15)
# runs in 2026, after both holdings snapshots were public, so that the buckets have members
FIRST_RUN, REVISION_RUN = date(2026, 6, 22), date(2026, 7, 1)
BETWEEN, AFTER = date(2026, 6, 26), date(2026, 7, 2)
BUMP = 1_000_000
LARGE = ("A", "AAPL", "ABBV")


def raw_rows() -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(PIPE.read_text().splitlines(), delimiter="|"))
    return {r["symbolCode"]: r for r in rows}


def revised_file() -> bytes:
    lines = PIPE.read_text().splitlines()
    header = lines[0].split("|")
    col = header.index("currentShortPositionQuantity")
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split("|")
        if fields[1] == "AAPL":
            fields[col] = str(int(fields[col]) + BUMP)
        out.append("|".join(fields))
    return ("\n".join(out) + "\n").encode()


def load(con, dataset: str, frame: pl.DataFrame, source: str, run_as_of: date) -> int:
    """What ``flows.load.apply_batches`` does with a validated batch's usable rows."""
    config = Config.load()
    core = db.conform_core(dataset, frame, source, known_at_for(run_as_of), config.publication_lag)
    return db.load_core(con, dataset, core, config.source_priority)


@pytest.fixture
def con(tmp_path):
    con = db.connect(tmp_path / "warehouse.duckdb")
    db.create_schema(con)
    for path in HOLDINGS:
        load(con, "holdings", formats.parse(path.read_bytes(), path.name, "holdings"), "ishares", FIRST_RUN)
    yield con
    con.close()


def original() -> pl.DataFrame:
    return formats.parse(PIPE.read_bytes(), "shrt20210715.csv", "short_interest")


def revised() -> pl.DataFrame:
    return formats.parse(revised_file(), "shrt20210715.csv", "short_interest")


def large_bucket(con, as_of: date) -> dict:
    marts = build_marts(con, Config.load(), as_of)
    frame = marts["short_interest_by_bucket"].filter(pl.col("bucket") == "large", pl.col("settlement_date") == SETTLED)
    return frame.row(0, named=True)


def test_a_revision_adds_a_vintage_and_a_redelivery_adds_nothing(con):
    assert load(con, "short_interest", original(), "finra", FIRST_RUN) == 71
    assert load(con, "short_interest", original(), "finra", FIRST_RUN) == 0  # same values again: nothing
    assert load(con, "short_interest", revised(), "finra", REVISION_RUN) == 1  # only the changed row
    assert load(con, "short_interest", revised(), "finra", AFTER) == 0
    assert con.execute("SELECT count(*) FROM core.short_interest").fetchone()[0] == 72
    aapl = con.execute(
        "SELECT short_interest, available_on, known_at FROM core.short_interest WHERE symbol = 'AAPL' "
        "ORDER BY known_at").fetchall()
    first = int(raw_rows()["AAPL"]["currentShortPositionQuantity"])
    assert first == 96355309  # as printed in FINRA's file
    assert [r[0] for r in aapl] == [first, first + BUMP]
    # the original is public from settlement + 9 days; the revision from the day the pipeline saw it
    assert [r[1] for r in aapl] == [date(2021, 7, 24), REVISION_RUN]
    assert [r[2] for r in aapl] == [known_at_for(FIRST_RUN), known_at_for(REVISION_RUN)]


def test_readers_use_the_latest_vintage_known_as_of_the_run(con):
    load(con, "short_interest", original(), "finra", FIRST_RUN)
    load(con, "short_interest", revised(), "finra", REVISION_RUN)
    raw = raw_rows()
    before = sum(int(raw[s]["currentShortPositionQuantity"]) for s in LARGE)
    prior = sum(int(raw[s]["previousShortPositionQuantity"]) for s in LARGE)
    assert before == 2571122 + 96355309 + 14655916 == 113582347

    old = large_bucket(con, BETWEEN)  # a run (or a replay) as of a day before the revision was learned
    assert (old["symbols"], old["short_interest"], old["prior_short_interest"]) == (3, before, prior)
    assert old["short_interest_change"] == pytest.approx(before / prior - 1)
    new = large_bucket(con, AFTER)
    assert (new["symbols"], new["short_interest"], new["prior_short_interest"]) == (3, before + BUMP, prior)
    assert new["short_interest_change"] == pytest.approx((before + BUMP) / prior - 1)

    def aapl(as_of: date) -> int:
        frame = db.read_core(con, "short_interest", as_of).collect()
        assert frame.height == 71  # one row per symbol and settlement, whatever the vintages
        return frame.filter(pl.col("symbol") == "AAPL")["short_interest"].item()

    assert aapl(BETWEEN) == 96355309 and aapl(AFTER) == 96355309 + BUMP

    run = RunResult(run_id="test-run", as_of=AFTER, profile="live")
    source_health(con, run)
    held = con.execute("SELECT rows_held, newest_observation FROM meta.source_health "
                       "WHERE source = 'finra' AND dataset = 'short_interest'").fetchone()
    assert held == (71, SETTLED)  # vintages are not counted twice


def test_a_reverted_value_is_one_more_vintage_not_one_per_held_vintage(con):
    """FINRA sending the original value again after a revision adds exactly one row (the batch is
    not multiplied by the two vintages already held)."""
    load(con, "short_interest", original(), "finra", FIRST_RUN)
    load(con, "short_interest", revised(), "finra", REVISION_RUN)
    assert load(con, "short_interest", original(), "finra", AFTER) == 1
    rows = con.execute("SELECT short_interest FROM core.short_interest WHERE symbol = 'AAPL' ORDER BY known_at").fetchall()
    assert [r[0] for r in rows] == [96355309, 96355309 + BUMP, 96355309]
    assert db.read_core(con, "short_interest", AFTER).collect().filter(
        pl.col("symbol") == "AAPL")["short_interest"].item() == 96355309
    # a lower-priority source never adds a vintage over the preferred one
    assert load(con, "short_interest", revised(), "inbox", date(2026, 7, 3)) == 0
