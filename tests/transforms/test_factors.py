"""Tests for transforms.factors: tiny hand-made frames for each rule, and numbers worked out by
hand from the real FRED CPI, FINRA short-interest and iShares holdings files in
tests/fixtures/factors_marts/ (provenance in its NOTICE.md)."""

from __future__ import annotations

import csv
import statistics
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms.factors import (
    earnings_outlook,
    etf_short_interest,
    factor_monthly,
    inflation_monthly,
    inflation_regime,
    short_interest_by_bucket,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "factors_marts"
KNOWN = datetime(2026, 1, 2, 22, 0, tzinfo=timezone.utc)
BUCKETS = {"IWM": "small", "IVV": "large"}

SI_SCHEMA = {
    "symbol": pl.String,
    "settlement_date": pl.Date,
    "short_interest": pl.Int64,
    "prior_short_interest": pl.Int64,
    "avg_daily_volume": pl.Int64,
    "days_to_cover": pl.Float64,
}
HOLDINGS_SCHEMA = {
    "fund": pl.String,
    "as_of_date": pl.Date,
    "symbol": pl.String,
    "asset_class": pl.String,
    "weight": pl.Float64,
}
CPI_SCHEMA = {
    "series_id": pl.String,
    "ref_month": pl.Date,
    "value": pl.Float64,
    "known_at": pl.Datetime("us", "UTC"),
    "source": pl.String,
}
EST_SCHEMA = {
    "index_code": pl.String,
    "as_of_date": pl.Date,
    "metric": pl.String,
    "period": pl.String,
    "value": pl.Float64,
    "source": pl.String,
    "known_at": pl.Datetime("us", "UTC"),
}


# ---------------------------------------------------------------------------------------------
# helpers that build input frames


def short_interest_frame(rows: list[tuple]) -> pl.LazyFrame:
    """rows: (symbol, settlement_date, short_interest, prior, adv, days_to_cover)."""
    return pl.LazyFrame(rows, schema=SI_SCHEMA, orient="row")


def holdings_frame(rows: list[tuple]) -> pl.LazyFrame:
    """rows: (fund, as_of_date, symbol[, asset_class])."""
    full = [(r + ("Equity",))[:4] + (0.01,) for r in rows]
    return pl.LazyFrame(full, schema=HOLDINGS_SCHEMA, orient="row")


def cpi_frame(
    series: dict[str, dict[date, float | None]], known_at: datetime = KNOWN
) -> pl.LazyFrame:
    rows = [
        (sid, month, value, known_at, "test")
        for sid, values in series.items()
        for month, value in values.items()
    ]
    return pl.LazyFrame(rows, schema=CPI_SCHEMA, orient="row")


def month_seq(start: date, n: int) -> list[date]:
    out, y, m = [], start.year, start.month
    for _ in range(n):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def row_for(frame: pl.DataFrame, **keys) -> dict:
    match = frame.filter(*[pl.col(k) == v for k, v in keys.items()])
    assert match.height == 1, f"expected one row for {keys}, got {match.height}"
    return match.row(0, named=True)


# ---------------------------------------------------------------------------------------------
# short interest by bucket: rules on tiny frames

D1 = date(2021, 7, 15)


def test_symbol_in_two_funds_counts_once_in_the_first_listed_funds_bucket():
    si = short_interest_frame(
        [
            ("A", D1, 100, 50, 10, 10.0),
            ("B", D1, 1000, 2000, 100, 10.0),
            ("C", D1, 7, 7, 7, 1.0),
        ]
    )
    holdings = holdings_frame(
        [("IWM", date(2021, 7, 1), "A"), ("IWM", date(2021, 7, 1), "B"),
         ("IVV", date(2021, 7, 1), "B"), ("IVV", date(2021, 7, 1), "C")]
    )

    small_first = short_interest_by_bucket(si, holdings, {"IWM": "small", "IVV": "large"}).collect()
    assert row_for(small_first, bucket="small")["symbols"] == 2
    assert row_for(small_first, bucket="small")["short_interest"] == 1100
    assert row_for(small_first, bucket="large")["symbols"] == 1
    assert row_for(small_first, bucket="large")["short_interest"] == 7

    large_first = short_interest_by_bucket(si, holdings, {"IVV": "large", "IWM": "small"}).collect()
    assert row_for(large_first, bucket="small")["short_interest"] == 100
    assert row_for(large_first, bucket="large")["short_interest"] == 1007
    assert row_for(large_first, bucket="large")["symbols"] == 2


def test_two_funds_in_one_bucket_do_not_double_count():
    si = short_interest_frame([("A", D1, 10, 20, 5, 2.0), ("B", D1, 30, 10, 5, 6.0)])
    holdings = holdings_frame(
        [("IWM", date(2021, 7, 1), "A"), ("IWM", date(2021, 7, 1), "B"),
         ("IJR", date(2021, 7, 1), "B")]
    )
    out = short_interest_by_bucket(si, holdings, {"IWM": "small", "IJR": "small"}).collect()
    assert out.height == 1
    assert out.row(0, named=True)["symbols"] == 2
    assert out.row(0, named=True)["short_interest"] == 40


def test_snapshot_in_force_and_later_snapshot_flag():
    d2 = date(2021, 7, 30)
    si = short_interest_frame(
        [("A", D1, 10, 10, 1, 1.0), ("B", D1, 20, 20, 1, 1.0),
         ("A", d2, 10, 10, 1, 1.0), ("B", d2, 20, 20, 1, 1.0), ("X", d2, 5, 5, 1, 1.0)]
    )
    holdings = holdings_frame(
        [
            # IWM: first snapshot after D1 -> later_snapshot on D1, in force on d2
            ("IWM", date(2021, 7, 20), "A"),
            ("IWM", date(2021, 8, 20), "A"),
            ("IWM", date(2021, 8, 20), "X"),
            # IVV: a snapshot dated exactly on D1 is in force; 2021-07-16 is in force for d2
            ("IVV", date(2021, 6, 30), "X"),
            ("IVV", D1, "B"),
            ("IVV", date(2021, 7, 16), "B"),
            ("IVV", date(2021, 7, 16), "X"),
        ]
    )
    out = short_interest_by_bucket(si, holdings, BUCKETS).collect()

    small_d1 = row_for(out, settlement_date=D1, bucket="small")
    assert small_d1["holdings_as_of"] == date(2021, 7, 20)
    assert small_d1["membership_flag"] == "later_snapshot"
    small_d2 = row_for(out, settlement_date=d2, bucket="small")
    assert small_d2["holdings_as_of"] == date(2021, 7, 20)
    assert small_d2["membership_flag"] == "in_force"
    assert small_d2["symbols"] == 1  # X joins IWM only in the 2021-08-20 snapshot

    large_d1 = row_for(out, settlement_date=D1, bucket="large")
    assert (large_d1["holdings_as_of"], large_d1["membership_flag"]) == (D1, "in_force")
    assert large_d1["short_interest"] == 20
    large_d2 = row_for(out, settlement_date=d2, bucket="large")
    assert large_d2["holdings_as_of"] == date(2021, 7, 16)
    assert large_d2["short_interest"] == 25


def test_ticker_listed_twice_in_a_snapshot_counts_once():
    # the real IWM file of 2026-05-05 lists ADRO twice
    si = short_interest_frame([("ADRO", D1, 10, 20, 1, 1.0), ("B", D1, 5, 5, 1, 1.0)])
    holdings = holdings_frame([("IWM", D1, "ADRO"), ("IWM", D1, "ADRO"), ("IWM", D1, "B")])
    row = short_interest_by_bucket(si, holdings, {"IWM": "small"}).collect().row(0, named=True)
    assert (row["symbols"], row["short_interest"], row["prior_short_interest"]) == (2, 15, 25)


def test_only_equity_rows_define_membership():
    si = short_interest_frame([("A", D1, 10, 10, 1, 1.0), ("RTYU1", D1, 999, 1, 1, 1.0)])
    holdings = holdings_frame(
        [
            ("IWM", D1, "A", "Equity"),
            ("IWM", D1, "RTYU1", "Futures"),
            ("IWM", D1, "XTSLA", "Money Market"),
        ]
    )
    out = short_interest_by_bucket(si, holdings, {"IWM": "small"}).collect()
    assert out.row(0, named=True)["symbols"] == 1
    assert out.row(0, named=True)["short_interest"] == 10


def test_days_to_cover_sentinel_and_null_are_never_averaged():
    si = short_interest_frame(
        [
            ("A", D1, 100, 200, 50, 2.0),
            ("B", D1, 300, 300, 0, 999.99),  # ADV 0: FINRA's cap, must not count
            ("C", D1, 80, 40, 20, 4.0),
            ("D", D1, 10, 20, 1, None),  # sentinel already nulled upstream
            ("E", D1, 500, 100, 5, 100.0),
        ]
    )
    holdings = holdings_frame([("IWM", D1, s) for s in "ABCDE"])
    row = short_interest_by_bucket(si, holdings, {"IWM": "small"}).collect().row(0, named=True)

    assert row["median_days_to_cover"] == 4.0  # median of 2, 4, 100
    # ADV > 0 only: (100 + 80 + 10 + 500) / (50 + 20 + 1 + 5)
    assert row["vw_days_to_cover"] == pytest.approx(690 / 76)
    assert row["symbols"] == 5
    assert row["short_interest"] == 990
    assert row["prior_short_interest"] == 660
    assert row["short_interest_change"] == pytest.approx(990 / 660 - 1)
    assert row["pct_symbols_decreasing"] == pytest.approx(2 / 5)  # A and D fell


def test_bucket_with_members_but_no_short_interest_data_has_zero_symbols_and_null_measures():
    si = short_interest_frame([("A", D1, 10, 10, 1, 1.0), ("Y", D1, None, 10, 1, None)])
    holdings = holdings_frame([("IWM", D1, "A"), ("IVV", D1, "ZZZ"), ("IVV", D1, "Y")])
    out = short_interest_by_bucket(si, holdings, BUCKETS).collect()
    large = row_for(out, bucket="large")
    assert large["symbols"] == 0
    assert large["short_interest"] is None
    assert large["short_interest_change"] is None
    assert large["median_days_to_cover"] is None
    assert out.columns == [
        "settlement_date", "bucket", "symbols", "short_interest", "prior_short_interest",
        "short_interest_change", "median_days_to_cover", "vw_days_to_cover",
        "pct_symbols_decreasing", "holdings_as_of", "membership_flag",
    ]


def test_change_is_null_when_every_prior_is_zero():
    # FINRA sends previous = 0 (and changePercent 100.00) for a new short position
    si = short_interest_frame(
        [("AACS", D1, 357, 0, 29980509, 1.0), ("AAIRF", D1, 6664, 0, 35394, 1.0)]
    )
    holdings = holdings_frame([("IWM", D1, "AACS"), ("IWM", D1, "AAIRF")])
    row = short_interest_by_bucket(si, holdings, {"IWM": "small"}).collect().row(0, named=True)
    assert row["short_interest_change"] is None
    assert row["pct_symbols_decreasing"] == 0.0


def test_empty_bucket_funds_is_an_error():
    with pytest.raises(ValueError, match="bucket_funds"):
        short_interest_by_bucket(short_interest_frame([]), holdings_frame([]), {})


def test_etf_short_interest_keeps_only_the_etfs_present():
    si = short_interest_frame(
        [("IWM", D1, 120, 100, 10, 12.0), ("AAPL", D1, 1, 1, 1, 1.0), ("QQQ", D1, 50, 0, 0, 999.99)]
    )
    out = etf_short_interest(si).collect()
    assert out["symbol"].to_list() == ["IWM", "QQQ"]
    assert row_for(out, symbol="IWM")["short_interest_change"] == pytest.approx(0.2)
    assert row_for(out, symbol="QQQ")["short_interest_change"] is None
    assert row_for(out, symbol="QQQ")["days_to_cover"] is None


# ---------------------------------------------------------------------------------------------
# short interest by bucket: the real FINRA excerpt against the real iShares holdings


def read_finra(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="|"))


def read_ishares(path: Path, fund: str) -> tuple[date, list[dict]]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    as_of_text = next(csv.reader([lines[1]]))[1]  # Fund Holdings as of,"May 05, 2026"
    as_of = datetime.strptime(as_of_text, "%b %d, %Y").date()
    rows = [r for r in csv.DictReader(lines[9:]) if r.get("Asset Class")]  # drop the legal footer
    out = [
        {
            "fund": fund,
            "as_of_date": as_of,
            "symbol": r["Ticker"],
            "asset_class": r["Asset Class"],
            "weight": float(r["Weight (%)"].replace(",", "")) / 100,
        }
        for r in rows
    ]
    return as_of, out


def finra_frame(rows: list[dict]) -> pl.LazyFrame:
    dtc = [float(r["daysToCoverQuantity"]) for r in rows]
    return pl.LazyFrame(
        {
            "symbol": [r["symbolCode"] for r in rows],
            "settlement_date": [date.fromisoformat(r["settlementDate"]) for r in rows],
            "short_interest": [int(r["currentShortPositionQuantity"]) for r in rows],
            "prior_short_interest": [int(r["previousShortPositionQuantity"]) for r in rows],
            "avg_daily_volume": [int(r["averageDailyVolumeQuantity"]) for r in rows],
            # as core.short_interest stores it: NULL where FINRA sent 999.99
            "days_to_cover": [None if d == 999.99 else d for d in dtc],
        },
        schema=SI_SCHEMA,
    )


def test_real_finra_excerpt_with_real_ishares_holdings():
    finra = read_finra(FIXTURES / "finra_shrt20210715_excerpt_first71rows.txt")
    assert len(finra) == 71
    iwm_as_of, iwm = read_ishares(FIXTURES / "iShares_IWM_holdings_2026-05-05.csv", "IWM")
    ivv_as_of, ivv = read_ishares(FIXTURES / "iShares_IVV_holdings_2026-06-19.csv", "IVV")
    assert (iwm_as_of, ivv_as_of) == (date(2026, 5, 5), date(2026, 6, 19))
    holdings = pl.LazyFrame(iwm + ivv, schema=HOLDINGS_SCHEMA)

    out = short_interest_by_bucket(finra_frame(finra), holdings, BUCKETS).collect()
    assert sorted(out["bucket"].to_list()) == ["large", "small"]

    for bucket, fund_rows, as_of, others in (
        ("large", ivv, ivv_as_of, iwm),
        ("small", iwm, iwm_as_of, ivv),
    ):
        held = {h["symbol"] for h in fund_rows if h["asset_class"] == "Equity"}
        if bucket == "large":  # IWM is listed first: its equities are never large
            held -= {h["symbol"] for h in others if h["asset_class"] == "Equity"}
        raw = [r for r in finra if r["symbolCode"] in held]
        cur = sum(int(r["currentShortPositionQuantity"]) for r in raw)
        prev = sum(int(r["previousShortPositionQuantity"]) for r in raw)
        dtc = [float(r["daysToCoverQuantity"]) for r in raw]
        dtc = [d for d in dtc if d != 999.99]
        with_adv = [r for r in raw if int(r["averageDailyVolumeQuantity"]) > 0]
        falling = [
            r
            for r in raw
            if int(r["currentShortPositionQuantity"]) < int(r["previousShortPositionQuantity"])
        ]

        row = row_for(out, bucket=bucket)
        assert row["settlement_date"] == date(2021, 7, 15)
        assert row["symbols"] == len(raw)
        assert row["short_interest"] == cur
        assert row["prior_short_interest"] == prev
        assert row["short_interest_change"] == pytest.approx(cur / prev - 1)
        assert row["median_days_to_cover"] == pytest.approx(statistics.median(dtc))
        assert row["vw_days_to_cover"] == pytest.approx(
            sum(int(r["currentShortPositionQuantity"]) for r in with_adv)
            / sum(int(r["averageDailyVolumeQuantity"]) for r in with_adv)
        )
        assert row["pct_symbols_decreasing"] == pytest.approx(len(falling) / len(raw))
        # holdings are from 2026, the settlement from 2021: only a later snapshot exists
        assert row["holdings_as_of"] == as_of
        assert row["membership_flag"] == "later_snapshot"

    # the same figures read off the raw lines by eye:
    # large = A, AAPL, ABBV; small = AAOI, AAP, AAT, ABCB
    large = row_for(out, bucket="large")
    assert large["symbols"] == 3
    assert large["short_interest"] == 2571122 + 96355309 + 14655916
    assert large["prior_short_interest"] == 2456982 + 90213531 + 13769117
    assert large["median_days_to_cover"] == pytest.approx(1.56)
    small = row_for(out, bucket="small")
    assert small["symbols"] == 4
    assert small["short_interest"] == 3862083 + 3441200 + 907078 + 1694181
    assert small["median_days_to_cover"] == pytest.approx((4.60 + 5.82) / 2)
    assert small["pct_symbols_decreasing"] == pytest.approx(0.5)  # AAOI and ABCB fell


# ---------------------------------------------------------------------------------------------
# inflation: rules on tiny frames


def test_gap_month_stays_null_and_months_align_by_calendar():
    months = month_seq(date(2024, 1, 1), 36)  # 2024-01 .. 2026-12
    # values that grow 1 % a month, so any mis-aligned comparison gives a different number
    values = {m: 100 * 1.01**i for i, m in enumerate(months)}
    headline = {m: (None if m == date(2025, 10, 1) else v) for m, v in values.items()}  # null value
    core = {m: v for m, v in values.items() if m != date(2025, 10, 1)}  # absent row
    out = inflation_monthly(cpi_frame({"CPIAUCSL": headline, "CPILFESL": core})).collect()

    assert out["ref_month"].to_list() == months  # the absent month is still a (null) row
    oct25 = row_for(out, ref_month=date(2025, 10, 1))
    for col in ("headline_index", "core_index", "headline_yoy", "core_yoy",
                "headline_mom_annualized", "core_mom_annualized", "regime"):
        assert oct25[col] is None, col

    nov25 = row_for(out, ref_month=date(2025, 11, 1))
    assert nov25["headline_mom_annualized"] is None  # would need 2025-10
    assert nov25["core_mom_annualized"] is None
    assert nov25["headline_yoy"] == pytest.approx(1.01**12 - 1)
    assert nov25["core_3m_annualized"] == pytest.approx(1.01**12 - 1)  # vs 2025-08: fine

    jan26 = row_for(out, ref_month=date(2026, 1, 1))
    assert jan26["core_3m_annualized"] is None  # needs 2025-10
    assert jan26["headline_3m_annualized"] is None
    assert jan26["core_mom_annualized"] == pytest.approx(1.01**12 - 1)

    oct26 = row_for(out, ref_month=date(2026, 10, 1))
    assert oct26["headline_yoy"] is None  # needs 2025-10
    assert oct26["core_yoy"] is None
    assert row_for(out, ref_month=date(2026, 11, 1))["core_yoy"] == pytest.approx(1.01**12 - 1)

    # no measure is ever zero-filled or interpolated
    assert not (out.select(pl.col("headline_yoy", "core_yoy") == 0).to_series(0).any())


def test_a_month_absent_from_every_series_is_a_null_row():
    months = [date(2025, 8, 1), date(2025, 9, 1), date(2025, 11, 1), date(2025, 12, 1)]
    values = {m: 300.0 + i for i, m in enumerate(months)}
    out = inflation_monthly(cpi_frame({"CPIAUCSL": values, "CPILFESL": values})).collect()
    assert out["ref_month"].to_list() == month_seq(date(2025, 8, 1), 5)
    assert row_for(out, ref_month=date(2025, 10, 1))["headline_index"] is None
    assert row_for(out, ref_month=date(2025, 11, 1))["headline_mom_annualized"] is None
    assert row_for(out, ref_month=date(2025, 12, 1))["core_mom_annualized"] == pytest.approx(
        (303 / 302) ** 12 - 1
    )


def test_first_months_have_no_history():
    months = month_seq(date(2025, 1, 1), 4)
    headline = {m: 300.0 + i for i, m in enumerate(months)}
    out = inflation_monthly(cpi_frame({"CPIAUCSL": headline})).collect()
    assert out["headline_yoy"].null_count() == 4
    assert out["headline_3m_annualized"].to_list()[:3] == [None, None, None]
    assert out["headline_3m_annualized"][3] == pytest.approx((303 / 300) ** 4 - 1)
    assert out["headline_mom_annualized"][1] == pytest.approx((301 / 300) ** 12 - 1)
    # core SA and both NSA series are absent: their columns exist and are null
    assert out["core_index"].null_count() == 4
    assert out["core_nsa_yoy"].null_count() == 4
    assert out["regime"].null_count() == 4


def test_latest_vintage_wins():
    m0, m1 = date(2024, 12, 1), date(2025, 12, 1)
    rows = [
        ("CPIAUCSL", m0, 100.0, datetime(2025, 1, 15, tzinfo=timezone.utc), "t"),
        ("CPIAUCSL", m1, 102.0, datetime(2026, 1, 13, tzinfo=timezone.utc), "t"),
        ("CPIAUCSL", m1, 103.0, datetime(2026, 2, 20, tzinfo=timezone.utc), "t"),  # revision
        ("CPIAUCSL", m0, 99.0, datetime(2024, 1, 1, tzinfo=timezone.utc), "t"),  # older
    ]
    out = inflation_monthly(pl.LazyFrame(rows, schema=CPI_SCHEMA, orient="row")).collect()
    dec25 = row_for(out, ref_month=m1)
    assert dec25["headline_index"] == 103.0
    assert dec25["headline_yoy"] == pytest.approx(0.03)


def test_vintages_loaded_by_one_run_are_ordered_by_available_on():
    m0, m1 = date(2024, 12, 1), date(2025, 12, 1)
    frame = cpi_frame({"CPIAUCSL": {m0: 100.0}}).collect()
    rows = pl.DataFrame(
        {
            "series_id": ["CPIAUCSL"] * 3,
            "ref_month": [m1, m1, m1],
            "value": [101.0, 104.0, 102.0],
            "known_at": [KNOWN] * 3,
            "source": ["t"] * 3,
        },
        schema=CPI_SCHEMA,
    )
    both = pl.concat([frame, rows]).with_columns(
        available_on=pl.Series([date(2025, 1, 15), date(2026, 1, 13), date(2026, 2, 11), None])
    )
    out = inflation_monthly(both.lazy()).collect()
    assert row_for(out, ref_month=m1)["headline_index"] == 104.0  # published 2026-02-11


def test_nsa_series_give_nsa_yoy():
    months = month_seq(date(2024, 1, 1), 13)
    nsa = {m: 200.0 + i for i, m in enumerate(months)}
    core_nsa = {m: 300.0 + 2 * i for i, m in enumerate(months)}
    out = inflation_monthly(cpi_frame({"CUUR0000SA0": nsa, "CUUR0000SA0L1E": core_nsa})).collect()
    last = row_for(out, ref_month=date(2025, 1, 1))
    assert last["headline_nsa_yoy"] == pytest.approx(212 / 200 - 1)
    assert last["core_nsa_yoy"] == pytest.approx(324 / 300 - 1)
    assert last["headline_yoy"] is None  # SA series absent


def test_regime_labels_at_the_boundaries():
    # dyadic thresholds keep the edges exact in binary floating point:
    # T - B = 0.25, T + B = 0.75, G = 0.125
    thresholds = {"target": 0.5, "band": 0.25, "reheating_gap": 0.125}
    cases = [
        (0.875, 1.0625, "reheating"),  # m > y + G
        (0.875, 1.0, "elevated"),  # m == y + G: not reheating
        (0.875, 0.875, "elevated"),  # m == y
        (0.875, 0.75, "disinflation"),  # m < y
        (0.75, 5.0, "stable"),  # y == T + B: inside the band, whatever m
        (0.5, -1.0, "stable"),
        (0.25, 0.0, "stable"),  # y == T - B
        (0.125, 0.5, "below_target"),
        (None, 0.5, None),
        (0.875, None, None),
    ]
    frame = pl.DataFrame(
        {"y": [c[0] for c in cases], "m": [c[1] for c in cases]},
        schema={"y": pl.Float64, "m": pl.Float64},
    )
    got = frame.select(inflation_regime(pl.col("y"), pl.col("m"), thresholds)).to_series().to_list()
    assert got == [c[2] for c in cases]


def test_regime_default_thresholds_in_inflation_monthly():
    # core growing 4 %/yr, then the last 3 months at 1 %/yr annualised: above the band, slowing
    months = month_seq(date(2024, 1, 1), 16)
    core, level = {}, 100.0
    for i, m in enumerate(months):
        core[m] = level
        level *= (1.04 if i < 12 else 1.01) ** (1 / 12)
    out = inflation_monthly(cpi_frame({"CPILFESL": core}), {"target": 0.02}).collect()
    assert row_for(out, ref_month=date(2024, 12, 1))["regime"] is None  # no 12-month history yet
    apr = row_for(out, ref_month=date(2025, 4, 1))
    assert apr["core_3m_annualized"] == pytest.approx(0.01)
    assert apr["core_yoy"] > 0.025
    assert apr["regime"] == "disinflation"
    assert row_for(out, ref_month=date(2025, 1, 1))["core_yoy"] == pytest.approx(0.04)


def test_unknown_or_negative_thresholds_are_errors():
    with pytest.raises(ValueError, match="unknown"):
        inflation_regime(pl.col("y"), pl.col("m"), {"targte": 0.02})
    with pytest.raises(ValueError, match="band"):
        inflation_monthly(cpi_frame({}), {"band": -0.01})


def test_empty_cpi_gives_an_empty_frame():
    out = inflation_monthly(cpi_frame({})).collect()
    assert out.height == 0
    assert "regime" in out.columns


# ---------------------------------------------------------------------------------------------
# inflation: the real FRED files


def read_fred(path: Path) -> dict[date, float | None]:
    with path.open(newline="") as fh:
        return {
            date.fromisoformat(r["date"]): (float(r["value"]) if r["value"].strip() else None)
            for r in csv.DictReader(fh)
        }


def test_real_fred_cpi():
    headline = read_fred(FIXTURES / "fred_CPIAUCSL_monthly.csv")
    core = read_fred(FIXTURES / "fred_CPILFESL_monthly.csv")
    assert headline[date(2025, 10, 1)] is None and core[date(2025, 10, 1)] is None
    out = inflation_monthly(cpi_frame({"CPIAUCSL": headline, "CPILFESL": core})).collect()
    assert out.height == len(headline)  # 1980-01 .. 2025-11, one row per month

    sep = row_for(out, ref_month=date(2025, 9, 1))
    # from the raw lines: 2025-09-01,324.368 / 2024-09-01,314.851 and core 330.542 / 320.835
    assert sep["headline_yoy"] == pytest.approx(324.368 / 314.851 - 1, rel=1e-12)
    assert sep["core_yoy"] == pytest.approx(330.542 / 320.835 - 1, rel=1e-12)
    assert sep["headline_mom_annualized"] == pytest.approx((324.368 / 323.364) ** 12 - 1, rel=1e-12)
    assert sep["core_3m_annualized"] == pytest.approx((330.542 / 327.6) ** 4 - 1, rel=1e-12)
    assert sep["headline_yoy"] == pytest.approx(
        headline[date(2025, 9, 1)] / headline[date(2024, 9, 1)] - 1, rel=1e-12
    )
    # core 3.03 % y/y (above 2 % + 0.5 %) and 3.6 % annualised over three months: reheating
    assert sep["regime"] == "reheating"

    oct_ = row_for(out, ref_month=date(2025, 10, 1))
    assert oct_["headline_yoy"] is None and oct_["core_yoy"] is None and oct_["regime"] is None

    nov = row_for(out, ref_month=date(2025, 11, 1))
    assert nov["headline_mom_annualized"] is None  # 2025-10 missing
    assert nov["core_mom_annualized"] is None
    assert nov["headline_yoy"] == pytest.approx(325.031 / 316.449 - 1, rel=1e-12)
    assert nov["core_3m_annualized"] == pytest.approx((331.068 / 329.793) ** 4 - 1, rel=1e-12)
    # core 2.62 % y/y, 1.6 % annualised since August: disinflation
    assert nov["regime"] == "disinflation"


# ---------------------------------------------------------------------------------------------
# earnings outlook


def estimates_frame(rows: list[tuple]) -> pl.LazyFrame:
    """rows: (index_code, as_of_date, metric, period, value)."""
    return pl.LazyFrame([r + ("test", KNOWN) for r in rows], schema=EST_SCHEMA, orient="row")


# S&P 500 operating EPS estimates of the 2025-12 edition's history block (observation rows)
JUN25, SEP25, JAN26 = date(2025, 6, 30), date(2025, 9, 30), date(2026, 1, 30)
ESTIMATES = [
    ("SP500", JUN25, "operating_eps", "2025", 255.29),
    ("SP500", JUN25, "operating_eps", "2026", 295.32),
    ("SP500", JUN25, "operating_pe", "2025", 24.31),
    ("SP500", SEP25, "operating_eps", "2025", 257.99),
    ("SP500", SEP25, "operating_eps", "2026", 303.08),
    ("SP500", SEP25, "operating_eps", "Q4 2025", 69.6),
    ("SP500", SEP25, "operating_pe", "2025", 25.82),
    ("SP500", SEP25, "operating_pe", "2026", 22.07),
    ("SP500", SEP25, "growth_5y", "2025", 0.161119866333084),
    ("SP500", SEP25, "peg", "2025", 1.6025336035608526),
    ("SP500", JAN26, "operating_eps", "2026", 305.0),
    ("SP500", JAN26, "operating_eps", "2027", 350.0),
    ("SP600", SEP25, "operating_eps", "2025", 80.0),
    ("SP600", SEP25, "operating_eps", "2026", 100.0),
    ("SP600", SEP25, "operating_pe", "current", 20.48),
]


def test_earnings_outlook_columns_years_and_revision():
    out = earnings_outlook(estimates_frame(ESTIMATES)).collect()
    assert out.columns == [
        "as_of_date", "index_code", "operating_pe", "growth_5y", "peg",
        "operating_eps_current_year", "operating_eps_next_year", "revision_since_prior",
        "revision_current_year_since_prior", "operating_eps_forward_12m", "pe_gap_vs_sp500",
    ]
    assert out.height == 4

    jun = row_for(out, index_code="SP500", as_of_date=JUN25)
    assert jun["revision_since_prior"] is None  # first snapshot
    assert (jun["operating_eps_current_year"], jun["operating_eps_next_year"]) == (255.29, 295.32)

    sep = row_for(out, index_code="SP500", as_of_date=SEP25)
    assert sep["operating_eps_current_year"] == 257.99  # not the Q4 2025 quarter
    assert sep["operating_eps_next_year"] == 303.08
    assert sep["revision_since_prior"] == pytest.approx(303.08 / 295.32 - 1)
    assert sep["operating_pe"] == 25.82  # the current-year P/E, not the 2026 one
    assert sep["growth_5y"] == pytest.approx(0.161119866333084)
    assert sep["peg"] == pytest.approx(1.6025336035608526)

    jan = row_for(out, index_code="SP500", as_of_date=JAN26)
    assert (jan["operating_eps_current_year"], jan["operating_eps_next_year"]) == (305.0, 350.0)
    assert jan["revision_since_prior"] is None  # prior snapshot has no 2027 estimate
    assert jan["operating_pe"] is None

    small = row_for(out, index_code="SP600", as_of_date=SEP25)
    assert small["operating_pe"] == 20.48  # period 'current' when no current-year row
    assert small["revision_since_prior"] is None  # other indices' snapshots do not count
    assert small["growth_5y"] is None


def test_revision_uses_the_immediately_previous_snapshot():
    rows = [
        ("SP400", date(2025, 3, 31), "operating_eps", "2026", 100.0),
        ("SP400", date(2025, 6, 30), "operating_pe", "2025", 18.0),  # a snapshot without EPS
        ("SP400", date(2025, 9, 30), "operating_eps", "2026", 90.0),
    ]
    out = earnings_outlook(estimates_frame(rows)).collect()
    assert row_for(out, as_of_date=date(2025, 9, 30))["revision_since_prior"] is None
    rows[1] = ("SP400", date(2025, 6, 30), "operating_eps", "2026", 120.0)
    out = earnings_outlook(estimates_frame(rows)).collect()
    assert row_for(out, as_of_date=date(2025, 6, 30))["revision_since_prior"] == pytest.approx(0.2)
    sep = row_for(out, as_of_date=date(2025, 9, 30))
    assert sep["revision_since_prior"] == pytest.approx(-0.25)


# ---------------------------------------------------------------------------------------------
# factor_monthly


def test_factor_monthly_joins_everything_onto_the_union_of_months():
    aug, sep, oct_ = date(2025, 8, 1), date(2025, 9, 1), date(2025, 10, 1)
    spread = pl.LazyFrame(
        {
            "month": [aug, sep, aug, sep],
            "pair": ["IWM/SPY", "IWM/SPY", "IJR/SPY", "IJR/SPY"],
            "small_return": [0.07, 0.03, 0.5, 0.5],
            "large_return": [0.02, 0.035, 0.5, 0.5],
            "spread": [0.05, -0.005, 0.0, 0.0],
            "ff_smb": [0.04, None, 0.0, 0.0],
        }
    )
    inflation = inflation_monthly(
        cpi_frame(
            {
                "CPIAUCSL": read_fred(FIXTURES / "fred_CPIAUCSL_monthly.csv"),
                "CPILFESL": read_fred(FIXTURES / "fred_CPILFESL_monthly.csv"),
            }
        )
    ).filter(pl.col("ref_month") >= sep)
    si_buckets = pl.LazyFrame(
        {
            "settlement_date": [date(2025, 8, 29)] * 2
            + [date(2025, 9, 15)] * 2
            + [date(2025, 9, 30)] * 2,
            "bucket": ["small", "large"] * 3,
            "short_interest_change": [0.01, 0.02, 0.03, 0.04, 0.05, 0.06],
            "median_days_to_cover": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    outlook = earnings_outlook(estimates_frame(ESTIMATES))
    out = factor_monthly(spread, inflation, si_buckets, outlook).collect()

    # months: June 2025 (outlook snapshot) .. November 2025 (CPI), one row each
    assert out["month"].to_list() == [
        date(2025, 6, 1), aug, sep, oct_, date(2025, 11, 1), date(2026, 1, 1)
    ]
    assert out.columns[:16] == [
        "month", "small_return", "large_return", "spread", "ff_smb", "headline_yoy", "core_yoy",
        "regime", "si_small_change", "si_large_change", "si_small_dtc", "si_large_dtc",
        "pe_small", "pe_large", "eps_rev_small", "eps_rev_large",
    ]

    a = row_for(out, month=aug)
    assert (a["small_return"], a["spread"], a["ff_smb"]) == (0.07, 0.05, 0.04)  # IWM/SPY only
    assert (a["si_small_change"], a["si_large_dtc"]) == (0.01, 2.0)
    assert a["headline_yoy"] is None  # inflation given from September only
    assert (a["pe_large"], a["pe_small"]) == (24.31, None)  # June snapshot; no SP600 yet
    assert a["outlook_large_as_of"] == JUN25

    s = row_for(out, month=sep)
    assert (s["si_small_change"], s["si_large_change"]) == (0.05, 0.06)  # 30 Sep, not 15 Sep
    assert (s["si_small_dtc"], s["si_large_dtc"]) == (5.0, 6.0)
    assert s["si_settlement_date"] == date(2025, 9, 30)
    assert s["headline_yoy"] == pytest.approx(324.368 / 314.851 - 1)
    assert s["regime"] == "reheating"
    assert (s["pe_small"], s["pe_large"]) == (20.48, 25.82)  # snapshot dated on the month end
    assert s["eps_rev_large"] == pytest.approx(303.08 / 295.32 - 1)
    assert s["eps_rev_small"] is None

    o = row_for(out, month=oct_)
    assert o["small_return"] is None and o["si_small_change"] is None
    assert o["headline_yoy"] is None  # October 2025 CPI was never published
    assert o["pe_large"] == 25.82  # carried from the latest snapshot before the month end

    assert row_for(out, month=date(2026, 1, 1))["outlook_large_as_of"] == JAN26


def test_functions_are_lazy():
    si = short_interest_frame([("A", D1, 1, 1, 1, 1.0)])
    holdings = holdings_frame([("IWM", D1, "A")])
    assert isinstance(short_interest_by_bucket(si, holdings, BUCKETS), pl.LazyFrame)
    assert isinstance(inflation_monthly(cpi_frame({})), pl.LazyFrame)
    assert isinstance(earnings_outlook(estimates_frame(ESTIMATES)), pl.LazyFrame)


def test_bucket_output_is_stable_under_input_order():
    rows = [("A", D1, 100, 50, 10, 10.0), ("B", D1, 1000, 2000, 100, 3.0), ("C", D1, 7, 9, 7, 1.0)]
    hold = [("IWM", D1, "A"), ("IWM", D1, "B"), ("IVV", D1, "B"), ("IVV", D1, "C")]
    one = short_interest_by_bucket(
        short_interest_frame(rows), holdings_frame(hold), BUCKETS
    ).collect()
    two = short_interest_by_bucket(
        short_interest_frame(rows[::-1]), holdings_frame(hold[::-1]), BUCKETS
    ).collect()
    assert_frame_equal(one, two)


def test_forward_12m_eps_blends_by_months_left_in_the_year():
    from transforms.factors import forward_12m_eps

    frame = pl.DataFrame({"d": [date(2025, 9, 30), date(2025, 9, 15), date(2025, 12, 31), date(2025, 1, 10)]})
    out = frame.select(forward_12m_eps(pl.col("d"), pl.lit(257.99), pl.lit(303.08)).alias("f"))["f"].to_list()
    # end of September: 9 months elapsed, 3/12 of the current year left; mid-September: 4/12 left
    assert out[0] == pytest.approx(3 / 12 * 257.99 + 9 / 12 * 303.08)
    assert out[1] == pytest.approx(4 / 12 * 257.99 + 8 / 12 * 303.08)
    assert out[2] == pytest.approx(303.08)
    assert out[3] == pytest.approx(257.99)
