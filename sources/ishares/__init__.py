"""iShares fund holdings: the CSV download of IWM, IJR, IVV and IJH, one dated snapshot per fund.

Dataset ``holdings`` only. One request per fund::

    GET {CAPSPREAD_ISHARES_BASE_URL or https://www.ishares.com}/us/products/<product id>/<slug>/1467271812596.ajax
        ?fileType=csv&fileName=<FUND>_holdings&dataType=fund

The answer is the holdings CSV (either column layout; ``sources.formats.holdings``), landed as
received and named ``<FUND>_holdings_<as-of>.csv``; its own ``Fund Holdings as of`` line dates the
snapshot. iShares serves only the latest snapshot, so a run for a past date gets nothing newer than
that date (rows not yet public are left out by the point-in-time cut).

These snapshots define the size buckets, so a missing or stale one is a source-health event: the
batch carries a note starting with ``source-stale: `` (see ``sources.consensus.state``) when

* the download is refused (HTTP 4xx), is an HTML page, is not a holdings file, names another fund,
  or has no rows (the batch is quarantined as well), or
* the snapshot is dated more than ``max_age_days`` (default 5, ``CAPSPREAD_ISHARES_MAX_AGE_DAYS``)
  calendar days before the as-of date (the batch still loads: an old snapshot is a true snapshot).

Network faults follow ``sources.http``: ``SourceUnavailable`` after the retries, nothing partial.

The latest good file of each fund is kept in the source's state folder; ``holdings_universe``
reads them to give the consensus source its list of companies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import polars as pl

from sources.base import Batch
from sources.consensus.state import STALE, write_atomic
from sources.errors import BadInput
from sources.http import HttpClient, HttpRefused, Unit, error_batch, parsed_batch, settle

log = logging.getLogger("capspread.sources")

DEFAULT_BASE_URL = "https://www.ishares.com"
DATASET = "holdings"
COMPONENT = "1467271812596"  # the page component that serves the holdings download
# fund → (product id, page slug) on www.ishares.com/us
PRODUCTS: dict[str, tuple[str, str]] = {
    "IWM": ("239710", "ishares-russell-2000-etf"),
    "IJR": ("239774", "ishares-core-sp-smallcap-etf"),
    "IVV": ("239726", "ishares-core-sp-500-etf"),
    "IJH": ("239763", "ishares-core-sp-midcap-etf"),
}
DEFAULT_FUNDS = ("IWM", "IJR", "IVV", "IJH")
DEFAULT_MAX_AGE_DAYS = 5
_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9.\-/]*$")


class IsharesSource:
    """Holdings snapshots of iShares funds (see the module docstring)."""

    name = "ishares"

    def __init__(
        self,
        funds: Iterable[str] = DEFAULT_FUNDS,
        *,
        max_age_days: int | None = None,
        state_dir: Path | None = None,
        lags: Mapping[str, int] | None = None,
        client: HttpClient | None = None,
        **client_options,
    ) -> None:
        self.funds = [f.upper() for f in dict.fromkeys(funds)]
        unknown = sorted(set(self.funds) - set(PRODUCTS))
        if unknown:
            raise ValueError(f"ishares: no product page known for {unknown}; known: {', '.join(PRODUCTS)}")
        if max_age_days is None:
            raw = os.environ.get("CAPSPREAD_ISHARES_MAX_AGE_DAYS", "").strip()
            max_age_days = int(raw) if raw else DEFAULT_MAX_AGE_DAYS
        self.max_age_days = max_age_days
        self.state_dir = state_dir
        self.lags = dict(lags or {})
        client_options.setdefault("default_min_interval", 1.0)
        self.client = client or HttpClient(self.name, DEFAULT_BASE_URL, **client_options)

    @staticmethod
    def request_for(fund: str) -> tuple[str, dict[str, str]]:
        product, slug = PRODUCTS[fund]
        return (f"/us/products/{product}/{slug}/{COMPONENT}.ajax",
                {"fileType": "csv", "fileName": f"{fund}_holdings", "dataType": "fund"})

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """The latest snapshot of every fund (rows public on ``as_of``); [] for other datasets."""
        if dataset != DATASET or not self.funds:
            return []
        with self.client.session():
            units = [Unit([self._fund(fund, as_of)]) for fund in self.funds]
        return settle(units, as_of)

    def _fund(self, fund: str, as_of: date) -> Batch:
        path, params = self.request_for(fund)
        name = f"{fund}_holdings_{as_of.isoformat()}.csv"
        try:
            response = self.client.get(path, params=params)
        except HttpRefused as exc:
            return error_batch(self.name, DATASET, name, exc.body, exc, notes=[
                f"{STALE}{fund} holdings missing: iShares refused the download (HTTP {exc.status})"])
        batch = parsed_batch(self.name, DATASET, name, response.content, as_of=as_of, lags=self.lags)
        if batch.error is not None:
            batch.notes.append(f"{STALE}{fund} holdings missing: {batch.error.message}")
            return batch
        funds = set(batch.frame["fund"].unique().to_list()) if batch.frame.height else {fund}
        if funds != {fund}:
            return error_batch(self.name, DATASET, name, response.content, BadInput(
                name, f"asked iShares for {fund}, the file holds {sorted(funds)}", row=1, found=sorted(funds),
                expected=f"the holdings of {fund}"), notes=[f"{STALE}{fund} holdings missing: another fund's file"])
        if batch.frame.height:
            day = batch.frame["as_of_date"].max()
            age = (as_of - day).days
            if age > self.max_age_days:
                batch.notes.append(
                    f"{STALE}{fund} holdings are dated {day}, {age} days before {as_of} "
                    f"(at most {self.max_age_days} expected): the size buckets use an old snapshot")
            self._remember(fund, day, response.content)
        return batch

    # -- the latest good file per fund

    def _remember(self, fund: str, day: date, payload: bytes) -> None:
        if self.state_dir is None:
            return
        meta_path = self.state_dir / f"{fund}.json"
        try:
            held = date.fromisoformat(json.loads(meta_path.read_text())["as_of_date"])
        except (OSError, ValueError, KeyError, TypeError):
            held = None
        if held is not None and held > day:
            return
        write_atomic(self.state_dir / f"{fund}_holdings.csv", payload)
        write_atomic(meta_path, json.dumps({"as_of_date": day.isoformat(),
                                            "sha256": hashlib.sha256(payload).hexdigest()}).encode())


def latest_holdings(state_dir: Path | None, funds: Iterable[str]) -> pl.DataFrame:
    """The latest good snapshot of each fund kept by ``IsharesSource`` (holdings schema; empty when
    none is kept yet)."""
    from sources import formats
    from sources.schemas import empty

    frames = []
    for fund in dict.fromkeys(f.upper() for f in funds):
        path = state_dir / f"{fund}_holdings.csv" if state_dir is not None else None
        if path is None or not path.exists():
            continue
        try:
            frames.append(formats.parse(path.read_bytes(), path.name, DATASET))
        except BadInput as exc:
            log.warning("ishares: the kept %s holdings file cannot be read (%s)", fund, exc)
    return pl.concat(frames) if frames else empty(DATASET)


def holdings_universe(state_dir: Path | None, funds: Iterable[str]) -> list[str]:
    """The equity tickers of the funds' latest snapshots, in rotation priority: the largest holding
    of every fund first, then every fund's second largest, and so on (so that each bucket's covered
    weight grows at the same pace), by market value; tickers an exchange does not list (with spaces,
    '-') are left out."""
    frame = latest_holdings(state_dir, funds)
    if frame.is_empty():
        return []
    ranked = (
        frame.filter(
            (pl.col("asset_class") == "Equity") & ((pl.col("market_value") > 0) | (pl.col("weight") > 0))
            & pl.col("symbol").is_not_null() & pl.col("symbol").str.contains(_TICKER.pattern)
        )
        .group_by("fund", "symbol").agg(pl.col("weight", "market_value").sum())
        # by market value: the file's weights are rounded to 0.01 % (zero for hundreds of small caps)
        .with_columns(rank=pl.coalesce("market_value", "weight").rank("ordinal", descending=True).over("fund"))
        .group_by("symbol").agg(pl.col("rank").min(), pl.col("weight").max())
        .sort(["rank", "weight", "symbol"], descending=[False, True, False])
    )
    return ranked["symbol"].to_list()


__all__ = ["DEFAULT_BASE_URL", "DEFAULT_FUNDS", "PRODUCTS", "IsharesSource", "holdings_universe", "latest_holdings"]
