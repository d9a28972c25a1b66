"""Yahoo Finance chart API v8: daily bars of the universe's indexes (^RUT, ^GSPC, ^IXIC, ^DJI) and ETFs.

Dataset ``prices`` only. One request per symbol::

    GET {CAPSPREAD_YAHOO_BASE_URL or https://query2.finance.yahoo.com}/v8/finance/chart/<symbol>
        ?period1=<start, 00:00 exchange time>&period2=<as_of + 1 day, 00:00 exchange time>
        &interval=1d&events=div,split&includeAdjustedClose=true

Window: from ``start`` (default 1990-01-01) on a first run, else from ``cursor - overlap_days``
(late corrections), to ``as_of``. The payload (format ``yahoo_chart``) is parsed by
``sources.formats.yahoo_chart``: trading days in the exchange's time zone, adj_close, and the
splits and dividends listed in ``Batch.notes``. Because a split changes every earlier (split-adjusted)
close and a dividend every earlier adj_close, an incremental window that contains either is fetched
again from ``start``, so the warehouse never mixes adjusted and unadjusted history.

An unknown symbol (Yahoo's 404 with ``chart.error``), HTML, a truncated body or a changed shape
becomes a batch with ``error`` for that symbol; the other symbols still load (see ``sources.http``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sources.base import Batch
from sources.errors import BadInput
from sources.formats import yahoo_chart
from sources.http import HttpClient, HttpRefused, Unit, error_batch, json_or_none, parsed_batch, settle

log = logging.getLogger("capspread.sources")

DEFAULT_BASE_URL = "https://query2.finance.yahoo.com"
DEFAULT_START = date(1990, 1, 1)
DATASET = "prices"


class YahooSource:
    """Daily prices from the Yahoo chart API (see the module docstring)."""

    name = "yahoo"

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        start: date = DEFAULT_START,
        overlap_days: int = 7,
        exchange_tz: str = "America/New_York",
        refetch_on_events: bool = True,
        lags: Mapping[str, int] | None = None,
        client: HttpClient | None = None,
        **client_options,
    ) -> None:
        self.symbols = list(dict.fromkeys(symbols))
        self.start = start
        self.overlap_days = overlap_days
        self.exchange_tz = ZoneInfo(exchange_tz)  # only to place period1/period2; bars are dated by the body's zone
        self.refetch_on_events = refetch_on_events
        self.lags = dict(lags or {})
        client_options.setdefault("default_min_interval", 0.5)
        self.client = client or HttpClient(self.name, DEFAULT_BASE_URL, **client_options)

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """Batches of daily bars dated in (cursor - overlap, as_of]; [] for other datasets."""
        if dataset != DATASET:
            return []
        with self.client.session():
            units = [Unit([self._symbol(symbol, as_of, cursor)]) for symbol in self.symbols]
        return settle(units, as_of)

    def _symbol(self, symbol: str, as_of: date, cursor: date | None) -> Batch:
        since = self.start if cursor is None else max(self.start, cursor - timedelta(days=self.overlap_days))
        batch = self._get(symbol, since, as_of)
        if cursor is None or batch.error is not None or not self.refetch_on_events:
            return batch
        found = yahoo_chart.events(batch.payload, batch.name)
        if (found["splits"] or found["dividends"]) and since > self.start:
            what = ", ".join(f"{k[:-1]} on {r['date']}" for k in ("splits", "dividends") for r in found[k])
            log.info("yahoo: %s has %s in the new window: fetching its whole history again", symbol, what)
            batch = self._get(symbol, self.start, as_of)
            batch.notes.append(f"{what} in the incremental window: whole history fetched again so that "
                               "split- and dividend-adjusted prices stay consistent")
        return batch

    def _stamp(self, day: date) -> int:
        return int(datetime.combine(day, time(0), self.exchange_tz).timestamp())

    def _get(self, symbol: str, since: date, as_of: date) -> Batch:
        name = f"{symbol}_{since.isoformat()}_{as_of.isoformat()}.json"
        params = {
            "period1": self._stamp(since),
            "period2": self._stamp(as_of + timedelta(days=1)),
            "interval": "1d",
            "events": "div,split",
            "includeAdjustedClose": "true",
        }
        try:
            response = self.client.get(f"/v8/finance/chart/{quote(symbol, safe='')}", params=params)
        except HttpRefused as exc:
            # Yahoo answers an unknown symbol with 404 and a chart.error body: name it clearly
            err = yahoo_chart.chart_error(json_or_none(exc.body))
            error: BadInput = exc
            if err is not None:
                error = BadInput(name, f"Yahoo refused {symbol} (HTTP {exc.status}): {err[0]}: {err[1]}".rstrip(": "),
                                 field="chart.error", expected="a known Yahoo symbol")
            return error_batch(self.name, DATASET, name, exc.body, error)
        batch = parsed_batch(self.name, DATASET, name, response.content, as_of=as_of, lags=self.lags)
        if batch.error is None:
            if batch.frame is not None and batch.frame.height and set(batch.frame["symbol"].unique()) != {symbol}:
                found = sorted(batch.frame["symbol"].unique())
                return error_batch(self.name, DATASET, name, response.content, BadInput(
                    name, f"asked Yahoo for {symbol}, the body is for {found}", field="meta.symbol", found=found,
                    expected=symbol))
            found = yahoo_chart.events(response.content, name)
            batch.notes += [f"split {r['ratio'] or str(r['numerator']) + ':' + str(r['denominator'])} on {r['date']}"
                            for r in found["splits"]]
            batch.notes += [f"dividend {r['amount']} on {r['date']}" for r in found["dividends"]]
        return batch


__all__ = ["DEFAULT_BASE_URL", "YahooSource"]
