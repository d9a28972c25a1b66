"""BLS Public Data API v2: CPI-U straight from the Bureau of Labor Statistics, the cross-check of FRED.

Dataset ``cpi`` only; series ``CUUR0000SA0`` (all items, NSA), ``CUSR0000SA0`` (all items, SA),
``CUUR0000SA0L1E`` and ``CUSR0000SA0L1E`` (less food and energy, NSA and SA) by default::

    POST {CAPSPREAD_BLS_BASE_URL or https://api.bls.gov}/publicAPI/v2/timeseries/data/
         {"seriesid": [...], "startyear": "2021", "endyear": "2026", "registrationkey": "…"}

The registration key (``BLS_API_KEY`` or the Prefect Secret block ``bls-api-key``) is optional:
with it a query may hold 50 series and 20 years, without it 25 series and 10 years; longer
ranges are split into several queries. Each answer (format ``bls_json``) is one batch.

BLS publishes no vintages: ``realtime_start`` is null and the warehouse dates each value by the
publication lag (``[publication_lag]``). A first run asks from ``start`` (1990); later runs ask
again for the last ``revision_years`` years because every February BLS revises five years of the
seasonally adjusted series (a changed value then adds a row). ``REQUEST_NOT_PROCESSED`` for the
daily query limit raises ``SourceUnavailable``; any other failed status is a batch with ``error``.
BLS's messages (for example "No Data Available for Series … Year: 2026") go to ``Batch.notes``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date

from sources.base import Batch
from sources.errors import SourceUnavailable
from sources.http import (
    HttpClient,
    HttpRefused,
    Unit,
    error_batch,
    json_or_none,
    parsed_batch,
    register_secret,
    secret,
    settle,
)

log = logging.getLogger("capspread.sources")

DEFAULT_BASE_URL = "https://api.bls.gov"
PATH = "/publicAPI/v2/timeseries/data/"
DEFAULT_START = date(1990, 1, 1)
DEFAULT_SERIES = ("CUUR0000SA0", "CUSR0000SA0", "CUUR0000SA0L1E", "CUSR0000SA0L1E")
DATASET = "cpi"
KEY_ENV = "BLS_API_KEY"
LIMITS = {True: (50, 20), False: (25, 10)}  # registered? → (series, years) per query


class BlsSource:
    """CPI series from the BLS API v2 (see the module docstring)."""

    name = "bls"

    def __init__(
        self,
        series: Iterable[str] = DEFAULT_SERIES,
        *,
        start: date = DEFAULT_START,
        revision_years: int = 5,
        max_series: int | None = None,
        max_years: int | None = None,
        api_key: str | None = None,
        lags: Mapping[str, int] | None = None,
        client: HttpClient | None = None,
        **client_options,
    ) -> None:
        self.series = list(dict.fromkeys(series))
        self.start = start
        self.revision_years = revision_years
        self.max_series = max_series
        self.max_years = max_years
        self._api_key = api_key
        register_secret(api_key)
        self.lags = dict(lags or {})
        client_options.setdefault("default_min_interval", 0.5)
        self.client = client or HttpClient(self.name, DEFAULT_BASE_URL, **client_options)

    def queries(self, registered: bool, start_year: int, end_year: int) -> list[tuple[list[str], int, int]]:
        """(series, start year, end year) of each query within BLS's per-query limits."""
        per_series, per_years = LIMITS[registered]
        per_series = self.max_series or per_series
        per_years = self.max_years or per_years
        out = []
        for i in range(0, len(self.series), per_series):
            for first in range(start_year, end_year + 1, per_years):
                out.append((self.series[i:i + per_series], first, min(end_year, first + per_years - 1)))
        return out

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """Monthly values public by as_of (re-asking the revisable years); [] for other datasets."""
        if dataset != DATASET or not self.series:
            return []
        key = self._api_key or secret(KEY_ENV)
        start_year = self.start.year if cursor is None else max(self.start.year, cursor.year - self.revision_years)
        unit = Unit()  # one BLS fetch is all or nothing: every series over the same years
        with self.client.session():
            for series, first, last in self.queries(bool(key), start_year, as_of.year):
                batch = self._query(series, first, last, key, as_of)
                unit.batches.append(batch)
                if batch.error is not None:
                    break
        return settle([unit], as_of)

    def _query(self, series: list[str], first: int, last: int, key: str | None, as_of: date) -> Batch:
        name = f"bls_{first}-{last}_{'_'.join(series) if len(series) <= 4 else f'{len(series)}series'}.json"
        body = {"seriesid": series, "startyear": str(first), "endyear": str(last)}
        if key:
            body["registrationkey"] = key
        try:
            response = self.client.post(PATH, json_body=body, headers={"Content-Type": "application/json"})
        except HttpRefused as exc:
            return error_batch(self.name, DATASET, name, exc.body, exc)
        answer = json_or_none(response.content)
        notes = []
        if isinstance(answer, dict):
            messages = answer.get("message") or []
            notes = [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
            if answer.get("status") == "REQUEST_NOT_PROCESSED" and any("threshold" in m.lower() for m in notes):
                raise SourceUnavailable(
                    f"bls: {response.url}: BLS's daily query limit is reached: {' '.join(notes)[:200]}")
            for message in notes:  # an unknown series id comes back empty, with only a message to say so
                level = logging.WARNING if any(w in message.lower() for w in ("invalid", "not exist")) else logging.INFO
                log.log(level, "bls: %s", message)
        return parsed_batch(self.name, DATASET, name, response.content, as_of=as_of, lags=self.lags, notes=notes)


__all__ = ["DEFAULT_BASE_URL", "DEFAULT_SERIES", "BlsSource"]
