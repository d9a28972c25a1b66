"""The live sources of ``capspread run --profile live``.

``live_sources(config)`` returns, in this order:

| name | dataset | what |
|---|---|---|
| ``yahoo`` | prices | Yahoo chart API v8, every symbol of the universe (indexes and ETFs) |
| ``stooq`` | prices | Stooq daily CSV (needs ``STOOQ_API_KEY``), the symbols Stooq carries |
| ``fred`` | cpi, rates | FRED/ALFRED CPIAUCSL and CPILFESL; DFF and DGS2 (rates backdrop, fractions); every vintage (needs ``FRED_API_KEY``) |
| ``bls`` | cpi | BLS API v2 CUUR0000SA0, CUSR0000SA0, CUUR0000SA0L1E, CUSR0000SA0L1E (``BLS_API_KEY`` optional) |
| ``finra`` | short_interest | FINRA Query API consolidated short interest (anonymous); FINRA's bi-weekly files when the API is down |
| ``ishares`` | holdings | iShares holdings CSV of IWM, IJR, IVV, IJH (and any other bucket fund iShares serves) |
| ``french`` | factors | Kenneth French library, Fama-French 3 factors monthly and daily (zip) |
| ``spdji`` | estimates | S&P DJI ``sp-500-eps-est.xlsx`` (discontinued 2026-01-31: notes ``source-ended: …``) |
| ``consensus`` | company_estimates | Yahoo ``quoteSummary`` ``earningsTrend`` of the bucket funds' holdings |

Each object has ``name`` and ``fetch(dataset, as_of, cursor)`` and returns [] for the datasets it does
not serve. How a caller treats ``SourceUnavailable`` (the source could not be reached: skip it,
keep the cursor, go on with the others) and ``BadInput`` batches (quarantine, never retry) is
described in ``sources.http``.

Settings from the environment:

* ``CAPSPREAD_LIVE_SOURCES`` — comma-separated names to use (default: all nine);
* ``CAPSPREAD_LIVE_START`` — first date of a first (full-history) run, default 1990-01-01;
* ``CAPSPREAD_<SOURCE>_BASE_URL`` — a proxy, a mirror or a test server for that source
  (``CAPSPREAD_FINRA_FILES_BASE_URL``: FINRA's bi-weekly file server, default https://cdn.finra.org);
* ``FRED_API_KEY``, ``STOOQ_API_KEY``, ``BLS_API_KEY`` — or the Prefect Secret blocks
  ``fred-api-key``, ``stooq-api-key``, ``bls-api-key``;
* ``CAPSPREAD_HTTP_TIMEOUT``, ``CAPSPREAD_HTTP_ATTEMPTS``, ``CAPSPREAD_HTTP_BACKOFF``,
  ``CAPSPREAD_<SOURCE>_MIN_INTERVAL`` (seconds between two requests to one host),
  ``CAPSPREAD_USER_AGENT``;
* ``CAPSPREAD_STATE_DIR`` — where ``ishares``, ``french``, ``spdji`` and ``consensus`` keep their small
  state (default ``<CAPSPREAD_HOME>/state``; see ``sources.consensus.state``);
* ``CAPSPREAD_ISHARES_FUNDS`` (default IWM,IJR,IVV,IJH plus the bucket funds iShares serves),
  ``CAPSPREAD_ISHARES_MAX_AGE_DAYS``; ``CAPSPREAD_SPDJI_STALE_DAYS``, ``CAPSPREAD_SPDJI_ENDED_DAYS``;
* ``CAPSPREAD_CONSENSUS_FUNDS`` (default: the small and large bucket funds iShares serves),
  ``CAPSPREAD_CONSENSUS_SYMBOLS`` (a fixed list of tickers instead of the funds' holdings),
  ``CAPSPREAD_CONSENSUS_DAILY_BUDGET``, ``CAPSPREAD_CONSENSUS_COOKIE_URL``,
  ``CAPSPREAD_CONSENSUS_SYMBOL_MAP``, ``CAPSPREAD_CONSENSUS_USER_AGENT`` (see ``sources.consensus``).
"""

from __future__ import annotations

import os
from datetime import date

from capspread.config import Config
from sources.base import Source

NAMES = ("yahoo", "stooq", "fred", "bls", "finra", "ishares", "french", "spdji", "consensus")
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


def _list(env: str) -> list[str] | None:
    raw = os.environ.get(env, "").strip()
    return [x.strip().upper() for x in raw.split(",") if x.strip()] if raw else None


def _ishares_funds(config: Config) -> list[str]:
    from sources.ishares import DEFAULT_FUNDS, PRODUCTS

    funds = _list("CAPSPREAD_ISHARES_FUNDS")
    if funds is None:
        funds = list(DEFAULT_FUNDS) + [f for f in config.bucket_funds if f in PRODUCTS]
    return list(dict.fromkeys(funds))


def _consensus_universe(config: Config, state_dir):
    from sources.consensus import holdings_universe_from
    from sources.ishares import PRODUCTS

    symbols = _list("CAPSPREAD_CONSENSUS_SYMBOLS")
    if symbols is not None:
        return symbols
    funds = _list("CAPSPREAD_CONSENSUS_FUNDS")
    if funds is None:
        funds = [f for f, bucket in config.bucket_funds.items() if bucket in ("small", "large") and f in PRODUCTS]
    return holdings_universe_from(state_dir, funds)


def live_sources(config: Config) -> list[Source]:
    """The live sources wired to the configuration's universe and publication lags."""
    from sources.bls import BlsSource
    from sources.consensus import ConsensusSource
    from sources.consensus.state import default_state_dir
    from sources.finra import FinraSource
    from sources.fred import FredSource
    from sources.french import FrenchSource
    from sources.ishares import IsharesSource
    from sources.spdji import SpdjiSource
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
        "ishares": lambda: IsharesSource(_ishares_funds(config), state_dir=default_state_dir("ishares"), lags=lags),
        "french": lambda: FrenchSource(state_dir=default_state_dir("french"), lags=lags),
        "spdji": lambda: SpdjiSource(state_dir=default_state_dir("spdji"), lags=lags),
        "consensus": lambda: ConsensusSource(_consensus_universe(config, default_state_dir("ishares")),
                                             state_dir=default_state_dir("consensus")),
    }
    enabled = _enabled()
    return [build[name]() for name in NAMES if name in enabled]


__all__ = ["NAMES", "live_sources"]
