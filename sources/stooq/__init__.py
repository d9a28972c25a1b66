"""Stooq daily CSV: a second source of daily prices.

Dataset ``prices`` only. One request per symbol::

    GET {CAPSPREAD_STOOQ_BASE_URL or https://stooq.com}/q/d/l/?s=<stooq symbol>&i=d&d1=YYYYMMDD&d2=YYYYMMDD&apikey=<key>

The answer is ``Date,Open,High,Low,Close,Volume`` (format ``stooq_csv``); the batch is named
``<SYMBOL>_<d1>_<d2>.csv`` so the parser (and replay) take the universe's symbol from the name.

Since 2026 Stooq requires an API key (``STOOQ_API_KEY`` or the Prefect Secret block
``stooq-api-key``): without one the fetch raises ``SourceNotConfigured``; with a wrong one Stooq
answers an HTML page with status 200, which becomes a batch with ``error`` and is never parsed as
prices. "Exceeded the daily hits limit" raises ``SourceUnavailable`` (try again tomorrow); "No data"
means nothing new for that symbol.

Symbols: ETFs are ``<symbol>.us`` in lower case; the indexes Stooq carries are mapped
(``^GSPC`` → ``^spx``, ``^DJI`` → ``^dji``, ``^IXIC`` → ``^ndq``); a symbol without a mapping
(``^RUT``) is skipped. Pass ``symbol_map`` to change that.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from sources.base import Batch
from sources.errors import BadInput, SourceUnavailable
from sources.http import (
    HttpClient,
    HttpRefused,
    SourceNotConfigured,
    Unit,
    error_batch,
    looks_like_html,
    parsed_batch,
    register_secret,
    secret,
    settle,
)

log = logging.getLogger("capspread.sources")

DEFAULT_BASE_URL = "https://stooq.com"
DEFAULT_START = date(1990, 1, 1)
DATASET = "prices"
KEY_ENV = "STOOQ_API_KEY"
INDEX_SYMBOLS = {"^GSPC": "^spx", "^DJI": "^dji", "^IXIC": "^ndq"}


def stooq_symbol(symbol: str, symbol_map: Mapping[str, str] | None = None) -> str | None:
    """Stooq's name for a universe symbol (None: Stooq has no mapping for it)."""
    mapping = {**INDEX_SYMBOLS, **(symbol_map or {})}
    if symbol in mapping:
        return mapping[symbol]
    if symbol.startswith("^"):
        return None
    return f"{symbol.lower()}.us"


class StooqSource:
    """Daily prices from Stooq's CSV endpoint (see the module docstring)."""

    name = "stooq"

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        symbol_map: Mapping[str, str] | None = None,
        start: date = DEFAULT_START,
        overlap_days: int = 7,
        api_key: str | None = None,
        lags: Mapping[str, int] | None = None,
        client: HttpClient | None = None,
        **client_options,
    ) -> None:
        self.symbol_map = dict(symbol_map or {})
        self.symbols = [s for s in dict.fromkeys(symbols) if stooq_symbol(s, self.symbol_map)]
        self.skipped = [s for s in dict.fromkeys(symbols) if not stooq_symbol(s, self.symbol_map)]
        self.start = start
        self.overlap_days = overlap_days
        self._api_key = api_key
        register_secret(api_key)
        self.lags = dict(lags or {})
        client_options.setdefault("default_min_interval", 1.0)
        self.client = client or HttpClient(self.name, DEFAULT_BASE_URL, **client_options)

    def api_key(self) -> str:
        key = self._api_key or secret(KEY_ENV)
        if not key:
            raise SourceNotConfigured(
                f"stooq: no API key: set {KEY_ENV} (or the Prefect Secret block 'stooq-api-key'); "
                "Stooq has answered HTML instead of CSV without one since 2026"
            )
        return key

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """Batches of daily bars dated in (cursor - overlap, as_of]; [] for other datasets."""
        if dataset != DATASET or not self.symbols:
            return []
        key = self.api_key()
        if self.skipped:
            log.info("stooq: no Stooq symbol for %s, skipped", ", ".join(self.skipped))
        since = self.start if cursor is None else max(self.start, cursor - timedelta(days=self.overlap_days))
        with self.client.session():
            answers = [self._get(symbol, since, as_of, key) for symbol in self.symbols]
        units = [Unit([b]) for b in answers if b is not None]
        return settle(units, as_of)

    def _get(self, symbol: str, since: date, as_of: date, key: str) -> Batch | None:
        d1, d2 = since.strftime("%Y%m%d"), as_of.strftime("%Y%m%d")
        name = f"{symbol}_{d1}_{d2}.csv"
        params = {"s": stooq_symbol(symbol, self.symbol_map), "i": "d", "d1": d1, "d2": d2, "apikey": key}
        try:
            response = self.client.get("/q/d/l/", params=params)
        except HttpRefused as exc:
            return error_batch(self.name, DATASET, name, exc.body, exc)
        body = response.content
        text = body[:300].decode("utf-8", "replace").strip()
        if looks_like_html(body):
            return error_batch(self.name, DATASET, name.replace(".csv", ".html"), body, BadInput(
                name, "Stooq answered an HTML page instead of CSV: the API key is missing, wrong or expired "
                f"(set {KEY_ENV}; Stooq requires a key since 2026)", found=text[:120],
                expected="Date,Open,High,Low,Close,Volume"))
        if "exceeded the daily hits limit" in text.lower():
            raise SourceUnavailable(f"stooq: {response.url}: Stooq's daily request limit is exhausted ({text[:80]!r})")
        if text.lower() in ("no data", "brak danych"):
            log.info("stooq: no data for %s between %s and %s", symbol, d1, d2)
            return None
        return parsed_batch(self.name, DATASET, name, body, as_of=as_of, lags=self.lags)


__all__ = ["DEFAULT_BASE_URL", "INDEX_SYMBOLS", "StooqSource", "stooq_symbol"]
