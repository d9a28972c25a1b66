"""The rates backdrop end to end on a real DuckDB file: FRED batches → landing suite → core.rates_daily
(fractions, vintages) → marts.rate_backdrop beside the inflation regime, and the analysts' query.

Data. No recorded FRED answer for DFF or DGS2 is on hand: the DFF batch is FRED's recorded
FEDFUNDS answer and the DGS2 batch FRED's recorded answer of a monthly CPI percent-change series
(tests/fixtures/api/fred/, both of vintage 2023-07-18; see NOTICE), landed under the names the
live source gives its DFF and DGS2 batches. Real FRED data in the real format, but other series:
the values below are FEDFUNDS's (e.g. June 2023: 5.08 %), not DFF's. CPI levels are the real
FRED CPIAUCSL and CPILFESL downloads (tests/fixtures/cpi/). Expected values are read from those
files with ``json``/``csv`` and worked out by hand, not with the code under test.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from capspread.config import Config, Home, known_at_for
from flows.landing import scan_inbox
from flows.load import apply_batches, finish_run
from flows.nightly import RunResult
from sources.http import parsed_batch
from warehouse import db

FIX = Path(__file__).resolve().parents[1] / "fixtures"
FEDFUNDS = FIX / "api" / "fred" / "fred_series_observations_fedfunds_2023.json"
OTHER = FIX / "api" / "fred" / "fred_series_observations_cpi_2023.json"
CPI = [FIX / "cpi" / "fred_CPIAUCSL_monthly.csv", FIX / "cpi" / "fred_CPILFESL_monthly.csv"]
VINTAGE = date(2023, 7, 18)
AS_OF = date(2023, 7, 20)
DOC_QUERY = next(q for q in re.findall(r"```sql\n(.*?)```", (Path(__file__).resolve().parents[2] / "docs" /
                                                            "analysts.md").read_text(), flags=re.S)
                 if "marts.rate_backdrop" in q)


def percent(path: Path) -> dict[date, str]:
    return {date.fromisoformat(o["date"]): o["value"] for o in json.loads(path.read_text())["observations"]}


def cpi_level(path: Path) -> dict[date, float]:
    return {date.fromisoformat(r["date"]): float(r["value"]) for r in csv.DictReader(path.read_text().splitlines())
            if r["value"]}


def batches(config: Config, as_of: date) -> list:
    out = [
        parsed_batch("fred", "rates", "DFF_2023-07-12_2023-07-20.json", FEDFUNDS.read_bytes(), as_of=as_of,
                     lags=config.publication_lag),
        parsed_batch("fred", "rates", "DGS2_2023-07-12_2023-07-20.json", OTHER.read_bytes(), as_of=as_of,
                     lags=config.publication_lag),
    ]
    out += [parsed_batch("inbox", "cpi", p.name, p.read_bytes(), as_of=as_of, lags=config.publication_lag) for p in CPI]
    assert all(b.error is None for b in out), [b.error for b in out]
    return out


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """One nightly load as of 2023-07-20 through flows.load (apply_batches + finish_run)."""
    home = Home(tmp_path_factory.mktemp("home")).ensure()
    config = Config.load()
    con = db.connect(home.warehouse)
    db.create_schema(con)
    run = RunResult(run_id="test-rates", as_of=AS_OF, profile="live")
    started = datetime.now(timezone.utc)
    con.execute("BEGIN TRANSACTION")
    apply_batches(con, home, config, run, batches(config, AS_OF), {}, started, known_at_for(AS_OF))
    finish_run(con, config, run, started)
    con.execute("COMMIT")
    yield con, config, run
    con.close()


def test_core_holds_fractions_with_their_vintage(warehouse):
    con, config, run = warehouse
    rows = con.execute("SELECT series_id, count(*), count(value), min(vintage), max(vintage), min(available_on) "
                       "FROM core.rates_daily GROUP BY series_id ORDER BY series_id").fetchall()
    ff, other = percent(FEDFUNDS), percent(OTHER)
    assert rows == [
        ("DFF", len(ff), sum(v != "." for v in ff.values()), VINTAGE, VINTAGE, VINTAGE),
        ("DGS2", len(other), len(other), VINTAGE, VINTAGE, VINTAGE),
    ]
    june = con.execute("SELECT value, known_at, source FROM core.rates_daily "
                       "WHERE series_id = 'DFF' AND date = '2023-06-01'").fetchall()[0]
    assert ff[date(2023, 6, 1)] == "5.08"
    assert june[0] == pytest.approx(0.0508, abs=1e-15) and june[1] == known_at_for(AS_OF) and june[2] == "fred"
    assert con.execute("SELECT value FROM core.rates_daily WHERE series_id = 'DFF' AND date = '2023-07-01'"
                       ).fetchall()[0] == (None,)  # FRED's "."
    # the same answer again adds nothing
    again = db.conform_core("rates", batches(config, AS_OF)[0].frame, "fred", known_at_for(date(2023, 7, 21)))
    assert db.merge_core(con, "rates", again) == 0
    health = con.execute("SELECT status, newest_observation, rows_held FROM meta.source_health "
                         "WHERE source = 'fred' AND dataset = 'rates'").fetchall()[0]
    # newest observation 2023-07-01, more than 7 days before the as-of date: flagged stale
    assert health == ("stale", date(2023, 7, 1), len(ff) + len(other))


def test_backdrop_beside_the_inflation_regime(warehouse):
    con, _, _ = warehouse
    ff, other = percent(FEDFUNDS), percent(OTHER)
    headline, core = cpi_level(CPI[0]), cpi_level(CPI[1])
    got = {r[0]: r for r in con.execute(
        "SELECT month, fed_funds, fed_funds_date, fed_funds_avg, treasury_2y, treasury_2y_date, "
        "treasury_2y_minus_fed_funds, headline_yoy, core_yoy, real_fed_funds, regime, is_complete "
        "FROM marts.rate_backdrop").fetchall()}
    # months 1954-07 .. 2023-06 have a fed funds value; July 2023 is "." and DGS2 ends in April
    assert min(got) == date(1954, 7, 1) and max(got) == date(2023, 6, 1)
    assert len(got) == (2023 - 1954) * 12 + (6 - 7) + 1 == 828

    june = got[date(2023, 6, 1)]
    yoy = headline[date(2023, 6, 1)] / headline[date(2022, 6, 1)] - 1
    assert june[1] == pytest.approx(0.0508, abs=1e-15) and june[2] == date(2023, 6, 1)
    assert june[3] == pytest.approx(0.0508, abs=1e-15)
    assert june[4] is None and june[5] is None and june[6] is None
    assert june[7] == pytest.approx(yoy, abs=1e-12)
    assert june[7] == pytest.approx(304.099 / 295.072 - 1, abs=1e-12)  # the CSV's CPIAUCSL levels, by hand
    assert june[8] == pytest.approx(core[date(2023, 6, 1)] / core[date(2022, 6, 1)] - 1, abs=1e-12)
    assert june[9] == pytest.approx(0.0508 - yoy, abs=1e-12)
    assert june[11] is True
    regime = con.execute("SELECT regime FROM marts.inflation_monthly WHERE ref_month = '2023-06-01'").fetchall()[0][0]
    assert regime is not None and june[10] == regime

    april = got[date(2023, 4, 1)]
    assert (ff[date(2023, 4, 1)], other[date(2023, 4, 1)]) == ("4.83", other[date(2023, 4, 1)])
    assert april[1] == pytest.approx(0.0483, abs=1e-15)
    assert april[4] == pytest.approx(float(other[date(2023, 4, 1)]) / 100, abs=1e-15)
    assert april[6] == pytest.approx(float(other[date(2023, 4, 1)]) / 100 - 0.0483, abs=1e-12)
    # 1998: fed funds only (the other answer starts in 1999-01)
    assert got[date(1998, 12, 1)][4] is None and got[date(1998, 12, 1)][1] == pytest.approx(
        float(ff[date(1998, 12, 1)]) / 100, abs=1e-15)


def test_the_analysts_query_on_the_backdrop(warehouse):
    con, _, _ = warehouse
    cursor = con.execute(DOC_QUERY)
    columns = [d[0] for d in cursor.description]
    rows = [dict(zip(columns, r)) for r in cursor.fetchall()]
    assert rows and rows[0]["month"] == date(2023, 6, 1)
    assert rows[0]["fed_funds"] == pytest.approx(0.0508, abs=1e-15)
    assert all(r["month"] <= date(2023, 6, 1) for r in rows)


def test_no_look_ahead_and_empty_without_rates(warehouse):
    con, _, _ = warehouse
    marts = {"inflation_monthly": pl.DataFrame(schema={"ref_month": pl.Date, "headline_yoy": pl.Float64,
                                                       "core_yoy": pl.Float64, "regime": pl.String})}
    # the day before FRED's vintage of 2023-07-18 the backdrop is empty, not an error
    from transforms.rates import rate_backdrop

    def backdrop(day, inflation):
        return rate_backdrop(db.read_core(con, "rates", day), inflation, day).collect()

    frame = backdrop(date(2023, 7, 17), marts["inflation_monthly"].lazy())
    assert frame.height == 0 and "fed_funds" in frame.columns
    frame = backdrop(date(2023, 7, 18), None)
    assert frame["month"].max() == date(2023, 6, 1) and frame["regime"].null_count() == frame.height


def test_landing_suite_refuses_percent_left_unconverted():
    from expectations.runner import validate

    config = Config.load()
    good = batches(config, AS_OF)[0].frame
    assert validate("rates", good, AS_OF).errors == []
    bad = validate("rates", good.with_columns(pl.col("value") * 100), AS_OF)  # 5.08 instead of 0.0508
    assert [c.column for c in bad.errors] == ["value"]


def test_inbox_fred_csv_goes_to_rates(tmp_path):
    """A FRED CSV ``observation_date,DFF``, built here from the recorded FEDFUNDS values (real
    values of the monthly series under the DFF header; no DFF download is on hand)."""
    ff = percent(FEDFUNDS)
    text = "observation_date,DFF\n" + "".join(f"{d},{'' if v == '.' else v}\n" for d, v in sorted(ff.items()))
    home = Home(tmp_path / "home").ensure()
    for folder in ("rates", "cpi"):
        (home.inbox / folder).mkdir(parents=True)
        (home.inbox / folder / "DFF.csv").write_text(text)
    found = {b.dataset: b for b in scan_inbox(home)}
    rates, cpi = found["rates"], found["cpi"]
    assert rates.error is None and rates.format == "fred_csv"
    assert rates.frame.height == len(ff) and set(rates.frame["series_id"]) == {"DFF"}
    assert rates.frame.filter(pl.col("date") == date(2023, 6, 1))["value"].item() == pytest.approx(0.0508, abs=1e-15)
    assert rates.frame["value"].null_count() == 1 and rates.frame["realtime_start"].null_count() == len(ff)
    assert cpi.error is not None and "inbox/rates/" in cpi.error.reason()
