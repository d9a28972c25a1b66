"""FRED / ALFRED ``series/observations``: CPI levels and the rates backdrop, with every vintage.

Dataset ``cpi``: series ``CPIAUCSL`` (headline, SA) and ``CPILFESL`` (core, SA) by default.
Dataset ``rates``: ``DFF`` (effective federal funds rate, daily) and ``DGS2`` (2-year Treasury
constant maturity, daily) by default, asked for exactly like CPI (same real-time periods, ``"."``
kept as null) and stored as fractions (``sources.formats.rates``).
Requests (key ``FRED_API_KEY`` or the Prefect Secret block ``fred-api-key``; without one the fetch
raises ``SourceNotConfigured``)::

    GET {CAPSPREAD_FRED_BASE_URL or https://api.stlouisfed.org}/fred/series/observations
        ?series_id=CPIAUCSL&api_key=…&file_type=json&realtime_start=…&realtime_end=<as_of>
        &observation_start=…&output_type=1&sort_order=asc&limit=100000&offset=…

Asking with a real-time period returns one row per observation and vintage (``realtime_start``,
the day FRED first published that value), so a revision arrives as a new row with its own vintage
(contract ``core.cpi_observations``; ``core.rates_daily`` likewise); ``"."`` (not published, e.g. October 2025) is kept as null.
``realtime_end = as_of`` means a run sees only the vintages that existed on its as-of date.

FRED refuses a real-time period holding more than 2000 vintage dates: when the period is longer
than ``max_vintage_dates`` days the source first lists the vintage dates
(``series/vintagedates``) and asks in chunks of at most ``max_vintage_dates`` of them. Each
answer (and each page of ``limit`` rows) is one batch named ``<SERIES>_<start>_<end>[_<offset>].json``
(the body does not name the series; the parser and replay take it from the name).

Window: a first run asks for every vintage (``realtime_start`` 1776-07-04) of the observations
from ``start``; later runs for the vintages from ``cursor - overlap_days`` and the observations of
the last ``revision_years`` years. FRED clips each row's ``realtime_start`` to the period asked
for, so an unchanged value can come back with a later date: the warehouse adds a CPI (or rates) row
only when its value differs from the latest one held. Each dataset has its own cursor.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from sources.base import Batch
from sources.errors import BadInput
from sources.http import (
    HttpClient,
    HttpRefused,
    SourceNotConfigured,
    Unit,
    error_batch,
    json_or_none,
    parsed_batch,
    register_secret,
    secret,
    settle,
)

DEFAULT_BASE_URL = "https://api.stlouisfed.org"
DEFAULT_START = date(1990, 1, 1)
DEFAULT_SERIES = ("CPIAUCSL", "CPILFESL")
DEFAULT_RATES_SERIES = ("DFF", "DGS2")
EARLIEST_REALTIME = date(1776, 7, 4)
MAX_VINTAGE_DATES = 2000
DATASET = "cpi"
RATES = "rates"
KEY_ENV = "FRED_API_KEY"


class FredSource:
    """CPI and rates vintages from FRED/ALFRED (see the module docstring)."""

    name = "fred"

    def __init__(
        self,
        series: Iterable[str] = DEFAULT_SERIES,
        *,
        rates_series: Iterable[str] = DEFAULT_RATES_SERIES,
        start: date = DEFAULT_START,
        overlap_days: int = 7,
        revision_years: int = 6,
        max_vintage_dates: int = MAX_VINTAGE_DATES,
        page_limit: int = 100_000,
        api_key: str | None = None,
        lags: Mapping[str, int] | None = None,
        client: HttpClient | None = None,
        **client_options,
    ) -> None:
        if max_vintage_dates < 1:
            raise ValueError("max_vintage_dates must be at least 1")
        self.series = list(dict.fromkeys(series))
        self.rates_series = list(dict.fromkeys(rates_series))
        self.start = start
        self.overlap_days = overlap_days
        self.revision_years = revision_years
        self.max_vintage_dates = max_vintage_dates
        self.page_limit = page_limit
        self._api_key = api_key
        register_secret(api_key)
        self.lags = dict(lags or {})
        client_options.setdefault("default_min_interval", 0.5)  # FRED allows 120 requests a minute
        self.client = client or HttpClient(self.name, DEFAULT_BASE_URL, **client_options)

    def api_key(self) -> str:
        key = self._api_key or secret(KEY_ENV)
        if not key:
            raise SourceNotConfigured(f"fred: no API key: set {KEY_ENV} (or the Prefect Secret block 'fred-api-key')")
        return key

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """Vintages published in (cursor - overlap, as_of]; [] for other datasets."""
        series = {DATASET: self.series, RATES: self.rates_series}.get(dataset)
        if not series:
            return []
        key = self.api_key()
        if cursor is None:
            realtime_start, observation_start = EARLIEST_REALTIME, self.start
        else:
            realtime_start = min(as_of, cursor - timedelta(days=self.overlap_days))
            observation_start = max(self.start, date(cursor.year - self.revision_years, 1, 1))
        with self.client.session():
            units = [self._series(dataset, s, key, realtime_start, as_of, observation_start) for s in series]
        return settle(units, as_of)

    # -- one series

    def _series(self, dataset: str, series: str, key: str, realtime_start: date, realtime_end: date,
                observation_start: date) -> Unit:
        unit = Unit()
        try:
            chunks = self.chunks(series, key, realtime_start, realtime_end, dataset)
        except _Refused as exc:
            unit.batches.append(exc.batch)
            return unit
        for chunk_start, chunk_end in chunks:
            unit.batches += self._observations(dataset, series, key, chunk_start, chunk_end, observation_start)
            if unit.failed:
                break
        return unit

    def chunks(self, series: str, key: str, realtime_start: date, realtime_end: date,
               dataset: str = DATASET) -> list[tuple[date, date]]:
        """Real-time periods covering [realtime_start, realtime_end], each with at most
        ``max_vintage_dates`` vintage dates (asks ``series/vintagedates`` only when needed)."""
        if (realtime_end - realtime_start).days + 1 <= self.max_vintage_dates:
            return [(realtime_start, realtime_end)]
        vintages = self._vintage_dates(series, key, realtime_start, realtime_end, dataset)
        step = self.max_vintage_dates
        bounds = [realtime_start] + [vintages[i] for i in range(step, len(vintages), step)]
        ends = [b - timedelta(days=1) for b in bounds[1:]] + [realtime_end]
        return list(zip(bounds, ends))

    def _vintage_dates(self, series: str, key: str, realtime_start: date, realtime_end: date,
                       dataset: str = DATASET) -> list[date]:
        out: list[date] = []
        offset = 0
        while True:
            params = {"series_id": series, "api_key": key, "file_type": "json", "realtime_start": realtime_start,
                      "realtime_end": realtime_end, "limit": 10_000, "offset": offset, "sort_order": "asc"}
            name = f"{series}_vintagedates_{realtime_start}_{realtime_end}.json"
            try:
                response = self.client.get("/fred/series/vintagedates", params=params)
            except HttpRefused as exc:
                raise _Refused(error_batch(self.name, dataset, name, exc.body, _fred_error(exc, series))) from None
            body = json_or_none(response.content)
            found = body.get("vintage_dates") if isinstance(body, dict) else None
            if not isinstance(found, list):
                raise _Refused(error_batch(self.name, dataset, name, response.content, BadInput(
                    name, "not a FRED series/vintagedates body", field="vintage_dates",
                    found=response.content[:120].decode("utf-8", "replace"), expected="a vintage_dates list")))
            try:
                out += [date.fromisoformat(d) for d in found]
            except (TypeError, ValueError) as exc:
                raise _Refused(error_batch(self.name, dataset, name, response.content, BadInput(
                    name, f"bad vintage date ({exc})", field="vintage_dates", expected="YYYY-MM-DD"))) from None
            count = body.get("count")
            offset += len(found)
            if not found or not isinstance(count, int) or offset >= count:
                return sorted(d for d in set(out) if realtime_start <= d <= realtime_end)

    def _observations(self, dataset: str, series: str, key: str, realtime_start: date, realtime_end: date,
                      observation_start: date) -> list[Batch]:
        batches: list[Batch] = []
        offset = 0
        while True:
            params = {
                "series_id": series, "api_key": key, "file_type": "json",
                "realtime_start": realtime_start, "realtime_end": realtime_end,
                "observation_start": observation_start, "output_type": 1, "sort_order": "asc",
                "limit": self.page_limit, "offset": offset,
            }
            name = f"{series}_{realtime_start}_{realtime_end}" + (f"_{offset}" if offset else "") + ".json"
            try:
                response = self.client.get("/fred/series/observations", params=params)
            except HttpRefused as exc:
                return batches + [error_batch(self.name, dataset, name, exc.body, _fred_error(exc, series))]
            batch = parsed_batch(self.name, dataset, name, response.content, as_of=realtime_end, lags=self.lags)
            batches.append(batch)
            if batch.error is not None:
                return batches
            body = json.loads(response.content)
            rows = len(body.get("observations") or [])
            count = body.get("count")
            offset += rows
            if rows == 0 or not isinstance(count, int) or offset >= count:
                return batches


class _Refused(Exception):
    def __init__(self, batch: Batch) -> None:
        super().__init__(str(batch.error))
        self.batch = batch


def _fred_error(exc: HttpRefused, series: str) -> BadInput:
    """FRED's own words for a refusal (``{"error_code": 400, "error_message": "…"}``)."""
    body = json_or_none(exc.body)
    message = body.get("error_message") if isinstance(body, dict) else None
    if not message:
        return exc
    return BadInput(exc.file, f"FRED refused series {series} (HTTP {exc.status}): {message}",
                    expected="a known series id and a valid FRED_API_KEY")


__all__ = ["DEFAULT_BASE_URL", "DEFAULT_RATES_SERIES", "DEFAULT_SERIES", "FredSource"]
