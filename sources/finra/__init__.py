"""FINRA Query API ``otcMarket/consolidatedShortInterest``: short interest of every listed and OTC symbol.

Dataset ``short_interest`` only. Anonymous POSTs, one settlement-date window at a time::

    POST {CAPSPREAD_FINRA_BASE_URL or https://api.finra.org}/data/group/otcMarket/name/consolidatedShortInterest
         Accept: application/json
         {"limit": 5000, "offset": 0,
          "dateRangeFilters": [{"fieldName": "settlementDate", "startDate": "…", "endDate": "…"}]}

Each page (at most ``page_size`` records, FINRA's maximum being 5000) is one batch of format
``finra_json``; paging follows ``offset`` until the ``Record-Total`` header (or a short page) says
the window is complete. FINRA caps ``offset`` at 500,000, so history is asked in windows of
``window_days`` (about twelve settlement dates). A window is all or nothing: when one of its
pages fails, none of its pages load. ``daysToCoverQuantity`` 999.99 (FINRA's cap when the average
daily volume is 0) becomes null in the parser.

Window: settlement dates from ``start`` on a first run, else from the cursor less the publication
lag (``short_interest_days``) and ``overlap_days`` for late revisions; up to ``as_of`` less the
publication lag, so a run sees only settlements FINRA had published by its as-of date.

Fallback: when the Query API stays unavailable after its retries (``SourceUnavailable``: network
faults, 5xx, 429), the same windows are read from FINRA's bi-weekly pipe-delimited files, one per
settlement date::

    GET {CAPSPREAD_FINRA_FILES_BASE_URL or https://cdn.finra.org}/equity/otcmarket/biweekly/shrtYYYYMMDD.csv

Settlement dates are the mid-month and month-end ones: the last XNYS session on or before the
15th and the last XNYS session of the month. A file the server does not have (404, or 403 as the
CDN answers for a missing object) is a settlement not published (or not a settlement date) and is
skipped; each file found is one batch of format ``finra_pipe`` (the same parser as the inbox)
with a note saying the API was unavailable. When no file is found at all, or the file server is
unavailable too, the fetch raises ``SourceUnavailable`` naming both failures: the dataset fails for
this run, the other datasets and sources are not affected, and the cursor stays.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Mapping
from datetime import date, timedelta

from sources.base import Batch
from sources.errors import BadInput, SourceUnavailable
from sources.http import HttpClient, HttpRefused, Unit, error_batch, json_or_none, parsed_batch, settle
from transforms.pit import DEFAULT_LAGS

log = logging.getLogger("capspread.sources")

DEFAULT_BASE_URL = "https://api.finra.org"
PATH = "/data/group/otcMarket/name/consolidatedShortInterest"
FILES_SOURCE = "finra_files"  # base URL from CAPSPREAD_FINRA_FILES_BASE_URL
DEFAULT_FILES_BASE_URL = "https://cdn.finra.org"
FILES_PATH = "/equity/otcmarket/biweekly/shrt{day:%Y%m%d}.csv"
MISSING_FILE = (403, 404)  # the CDN answers 403 for an object it does not have
DEFAULT_START = date(1990, 1, 1)
DATASET = "short_interest"
MAX_PAGE = 5000
MAX_OFFSET = 500_000


class FinraSource:
    """Consolidated short interest from the FINRA Query API (see the module docstring)."""

    name = "finra"

    def __init__(
        self,
        *,
        start: date = DEFAULT_START,
        overlap_days: int = 31,
        page_size: int = MAX_PAGE,
        window_days: int = 183,
        lags: Mapping[str, int] | None = None,
        client: HttpClient | None = None,
        files_fallback: bool = True,
        files_client: HttpClient | None = None,
        **client_options,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE}")
        self.start = start
        self.overlap_days = overlap_days
        self.page_size = page_size
        self.window_days = window_days
        self.lags = dict(lags or {})
        self.lag_days = int({**DEFAULT_LAGS, **self.lags}["short_interest_days"])
        client_options.setdefault("default_min_interval", 0.1)  # FINRA allows 20 requests a second
        self.client = client or HttpClient(self.name, DEFAULT_BASE_URL, **client_options)
        self.files_fallback = files_fallback
        self.files_client = files_client or HttpClient(FILES_SOURCE, DEFAULT_FILES_BASE_URL, **client_options)

    def windows(self, as_of: date, cursor: date | None) -> list[tuple[date, date]]:
        """Settlement-date windows to ask for, oldest first."""
        end = as_of - timedelta(days=self.lag_days)
        begin = self.start if cursor is None else max(
            self.start, cursor - timedelta(days=self.lag_days + self.overlap_days))
        out = []
        while begin <= end:
            last = min(end, begin + timedelta(days=self.window_days - 1))
            out.append((begin, last))
            begin = last + timedelta(days=1)
        return out

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """Settlements published in (cursor, as_of] (with the look-back); [] for other datasets."""
        if dataset != DATASET:
            return []
        windows = self.windows(as_of, cursor)
        try:
            with self.client.session():
                units = [self._window(first, last, as_of) for first, last in windows]
        except SourceUnavailable as exc:
            if not self.files_fallback or not windows:
                raise
            log.warning("finra: Query API unavailable (%s); reading the bi-weekly files", exc)
            return self._from_files(windows, as_of, exc)
        return settle(units, as_of)

    # -- fallback: the bi-weekly files

    def _from_files(self, windows: list[tuple[date, date]], as_of: date, api_error: SourceUnavailable) -> list[Batch]:
        days = [d for first, last in windows for d in settlement_dates(first, last)]
        note = f"the FINRA Query API was unavailable ({api_error}); read from FINRA's bi-weekly file"
        units, missing = [], []
        try:
            with self.files_client.session():
                for day in days:
                    unit = self._file(day, as_of, note)
                    if unit is None:
                        missing.append(day)
                    else:
                        units.append(unit)
        except SourceUnavailable as exc:
            raise SourceUnavailable(
                f"finra: Query API unavailable ({api_error}); bi-weekly files unavailable too ({exc})") from None
        if not units:
            shown = ", ".join(d.isoformat() for d in missing[-3:]) + (" …" if len(missing) > 3 else "")
            raise SourceUnavailable(
                f"finra: Query API unavailable ({api_error}); no bi-weekly file found either at "
                f"{self.files_client.base_url} for {len(missing)} settlement date(s) ({shown or 'none'})")
        return settle(units, as_of)

    def _file(self, day: date, as_of: date, note: str) -> Unit | None:
        """One settlement's file as a unit; None when the server does not have it."""
        path = FILES_PATH.format(day=day)
        name = path.rsplit("/", 1)[-1]
        try:
            response = self.files_client.get(path)
        except HttpRefused as exc:
            if exc.status in MISSING_FILE:
                return None
            return Unit([error_batch(self.name, DATASET, name, exc.body, exc)])
        batch = parsed_batch(self.name, DATASET, name, response.content, as_of=as_of, lags=self.lags,
                             notes=[f"{note} {self.files_client.url_for(path)}"])
        return Unit([batch])

    def _window(self, first: date, last: date, as_of: date) -> Unit:
        unit = Unit()
        offset = 0
        while True:
            name = f"finra_csi_{first}_{last}_{offset}.json"
            payload = {
                "limit": self.page_size,
                "offset": offset,
                "dateRangeFilters": [
                    {"fieldName": "settlementDate", "startDate": first.isoformat(), "endDate": last.isoformat()}
                ],
            }
            try:
                response = self.client.post(PATH, json_body=payload, headers={"Accept": "application/json"})
            except HttpRefused as exc:
                unit.batches.append(error_batch(self.name, DATASET, name, exc.body, exc))
                return unit
            body = response.content
            if response.status == 204 or not body.strip():
                return unit  # no settlement in this window
            records = json_or_none(body)
            if isinstance(records, list) and not records:
                return unit
            if not isinstance(records, list):
                # HTML, a truncated body, an error object: parsing names what is wrong
                batch = parsed_batch(self.name, DATASET, name, body, as_of=as_of, lags=self.lags)
                if batch.error is None:
                    batch = error_batch(self.name, DATASET, name, body, BadInput(
                        name, "not a list of FINRA records", expected="a JSON list"))
                unit.batches.append(batch)
                return unit
            batch = parsed_batch(self.name, DATASET, name, body, as_of=as_of, lags=self.lags)
            unit.batches.append(batch)
            if batch.error is not None:
                return unit
            offset += len(records)
            total = _int(response.headers.get("record-total"))
            if (total is not None and total > MAX_OFFSET + self.page_size) or offset > MAX_OFFSET:
                unit.batches.append(error_batch(self.name, DATASET, name, b"", BadInput(
                    name, f"{total or offset} records in one settlement window, more than FINRA's offset limit "
                    "allows", found=total or offset, expected=f"at most {MAX_OFFSET}: lower window_days")))
                return unit
            if (total is not None and offset >= total) or (total is None and len(records) < self.page_size):
                return unit


def settlement_dates(first: date, last: date) -> list[date]:
    """FINRA's settlement dates in [first, last]: per month the last XNYS session on or before the
    15th and the last XNYS session of the month."""
    from transforms.calendar import sessions

    lo = max(date(first.year, first.month, 1), date(1990, 1, 1))  # the calendar starts in 1990
    hi = date(last.year, last.month, calendar.monthrange(last.year, last.month)[1])
    if lo > hi:
        return []
    by_month: dict[tuple[int, int], list[date]] = {}
    for day in sessions(lo, hi)["trade_date"].to_list():
        by_month.setdefault((day.year, day.month), []).append(day)
    out = set()
    for days in by_month.values():
        mid = [d for d in days if d.day <= 15]
        if mid:
            out.add(max(mid))
        out.add(max(days))
    return sorted(d for d in out if first <= d <= last)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


__all__ = ["DEFAULT_BASE_URL", "DEFAULT_FILES_BASE_URL", "FILES_PATH", "FinraSource", "settlement_dates"]
