"""The live sources of ``capspread run --profile live``.

``live_sources(config)`` returns, in this order:

| name | dataset | what |
|---|---|---|
| ``yahoo`` | prices | Yahoo chart API v8, every symbol of the universe (indexes and ETFs) |
| ``stooq`` | prices | Stooq daily CSV (needs ``STOOQ_API_KEY``), the symbols Stooq carries |
| ``fred`` | cpi | FRED/ALFRED CPIAUCSL and CPILFESL with every vintage (needs ``FRED_API_KEY``) |
| ``bls`` | cpi | BLS API v2 CUUR0000SA0, CUSR0000SA0, CUUR0000SA0L1E, CUSR0000SA0L1E (``BLS_API_KEY`` optional) |
| ``finra`` | short_interest | FINRA Query API consolidated short interest (anonymous) |

Each object has ``name`` and ``fetch(dataset, as_of, cursor)`` and returns [] for the datasets it does
not serve. How a caller treats ``SourceUnavailable`` (the source could not be reached: skip it,
keep the cursor, go on with the others) and ``BadInput`` batches (quarantine, never retry) is
described in ``sources.http``.

Settings from the environment:

* ``CAPSPREAD_LIVE_SOURCES`` — comma-separated names to use (default: all five);
* ``CAPSPREAD_LIVE_START`` — first date of a first (full-history) run, default 1990-01-01;
* ``CAPSPREAD_<SOURCE>_BASE_URL`` — a proxy, a mirror or a test server for that source;
* ``FRED_API_KEY``, ``STOOQ_API_KEY``, ``BLS_API_KEY`` — or the Prefect Secret blocks
  ``fred-api-key``, ``stooq-api-key``, ``bls-api-key``;
* ``CAPSPREAD_HTTP_TIMEOUT``, ``CAPSPREAD_HTTP_ATTEMPTS``, ``CAPSPREAD_HTTP_BACKOFF``,
  ``CAPSPREAD_<SOURCE>_MIN_INTERVAL`` (seconds between two requests to one host),
  ``CAPSPREAD_USER_AGENT``.
"""

from __future__ import annotations

import os
from datetime import date

from capspread.config import Config
from sources.base import Source

NAMES = ("yahoo", "stooq", "fred", "bls", "finra")
DEFAULT_START = date(1990, 1, 1)


def _start() -> date:
    raw = os.environ.get("CAPSPREAD_LIVE_START", "").strip()
    if not raw:
        return DEFAULT_START
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"CAPSPREAD_LIVE_START={raw!r} is not a date like 1990-01-01") from exc


def _enabled() -> list[str]:
    raw = os.environ.get("CAPSPREAD_LIVE_SOURCES", "").strip()
    if not raw:
        return list(NAMES)
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise ValueError(f"CAPSPREAD_LIVE_SOURCES names unknown sources {unknown}; known: {', '.join(NAMES)}")
    return names


def live_sources(config: Config) -> list[Source]:
    """The live sources wired to the configuration's universe and publication lags."""
    from sources.bls import BlsSource
    from sources.finra import FinraSource
    from sources.fred import FredSource
    from sources.stooq import StooqSource
    from sources.yahoo import YahooSource

    lags = dict(config.publication_lag)
    symbols = [s.symbol for s in config.universe if s.role in ("index", "etf")]
    start = _start()
    build = {
        "yahoo": lambda: YahooSource(symbols, start=start, lags=lags),
        "stooq": lambda: StooqSource(symbols, start=start, lags=lags),
        "fred": lambda: FredSource(start=start, lags=lags),
        "bls": lambda: BlsSource(start=start, lags=lags),
        "finra": lambda: FinraSource(start=start, lags=lags),
    }
    enabled = _enabled()
    return [build[name]() for name in NAMES if name in enabled]


__all__ = ["NAMES", "live_sources"]
