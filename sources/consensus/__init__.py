"""Bottom-up consensus estimates: per-company forward EPS from Yahoo's ``quoteSummary`` ``earningsTrend``.

Dataset ``company_estimates`` only (schema in ``sources.formats.yahoo_earnings_trend``). Replaces
the discontinued S&P DJI workbook and covers small caps: the companies are the holdings of the
bucket funds (IWM, IVV, IJR by default, read from the files the ``ishares`` source keeps), and
``transforms.consensus`` aggregates them by holdings weight.

The handshake
-------------
Yahoo answers ``quoteSummary`` only to a client holding its session cookie and the matching
"crumb"::

    GET {CAPSPREAD_CONSENSUS_COOKIE_URL or https://fc.yahoo.com}          → Set-Cookie (the page itself is a 404)
    GET {CAPSPREAD_CONSENSUS_BASE_URL or https://query2.finance.yahoo.com}/v1/test/getcrumb   → the crumb, plain text
    GET …/v10/finance/quoteSummary/<symbol>?modules=earningsTrend&formatted=false&crumb=<crumb>

The cookie lives in the client's jar for the duration of one fetch; the crumb is masked in every
log line and error (``sources.http.register_secret``). When Yahoo refuses a request with 401/403
(``Invalid Crumb``, ``Invalid Cookie``, ``Unauthorized``: the session expired) the source shakes
hands again once per fetch and asks again; a second refusal ends the fetch (below).

Polite, incremental fetching
----------------------------
About 2,600 companies are far too many for one night, so each run asks for at most
``daily_budget`` of them (default 400, ``CAPSPREAD_CONSENSUS_DAILY_BUDGET``; per calendar day, so
a second run the same day asks only for what the first left of the budget), at
``CAPSPREAD_CONSENSUS_MIN_INTERVAL`` seconds between requests (default 1.0):

* rotation — the companies never asked come first, then those asked longest ago; ties go to the
  order of the universe (``holdings_universe``: every fund's largest holding first, so each bucket's
  covered weight grows at the same pace). With the defaults a full turn takes about a week;
* cache per name per day — every good body is kept under ``<state>/cache/<day>/`` and a second
  run on the same day serves it again without a request (a run that died half way resumes where it
  stopped; the warehouse skips what it already holds); days older than ``cache_days`` (7) go;
* resumable state — ``<state>/state.json`` holds the day each company was last asked and the
  budget spent per day, saved every 25 companies and at the end.

Estimates can only be observed on the day: a run for a date more than a day before today asks
for nothing (no look-ahead, no back-dating).

What comes back
---------------
One batch per run: a zip (format ``yahoo_earnings_trend_zip``) of the day's bodies, each member
byte for byte as Yahoo sent it and named ``<TICKER>_<as-of>.json`` with the fund's ticker (Yahoo's
spelling differs for share classes: ``symbol_map``, default ``BRKB=BRK-B`` and the like, extended by
``CAPSPREAD_CONSENSUS_SYMBOL_MAP="OLD=NEW,…"``). One landing file and one validation per run, not
one per company. Its notes say how many companies were asked, what is left for later days and
which companies Yahoo does not know (HTTP 404 ``Not Found``: not covered, not quarantined — the
mart's coverage shows the weight they miss).

Faults: a body that is HTML, not JSON, of another shape, or a refusal other than the above is a
batch of its own with ``error`` for that company alone (quarantined). A network fault, a rate limit
(after the retries of ``sources.http``) or a second expired session stops the fetch: the companies
already answered come back, with a note starting ``source-partial: `` and no cursor move; when
nothing was answered at all, ``SourceUnavailable`` is raised as for any source.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import polars as pl

from sources.base import Batch
from sources.consensus.state import PARTIAL, StateFile, write_atomic
from sources.errors import BadInput, SourceUnavailable
from sources.formats import yahoo_earnings_trend as fmt
from sources.http import HttpClient, HttpRefused, error_batch, json_or_none, looks_like_html, register_secret

log = logging.getLogger("capspread.sources")

DEFAULT_BASE_URL = "https://query2.finance.yahoo.com"
DEFAULT_COOKIE_URL = "https://fc.yahoo.com"
CRUMB_PATH = "/v1/test/getcrumb"
SUMMARY_PATH = "/v10/finance/quoteSummary/"
DATASET = fmt.DATASET
DEFAULT_BUDGET = 400
DEFAULT_CACHE_DAYS = 7
SAVE_EVERY = 25
# fund tickers → Yahoo symbols where the exchange writes a share class with a dot (BRK.B)
DEFAULT_SYMBOL_MAP = {
    "BRKB": "BRK-B", "BRKA": "BRK-A", "BFB": "BF-B", "BFA": "BF-A", "MOGA": "MOG-A", "MOGB": "MOG-B",
    "HEIA": "HEI-A", "LENB": "LEN-B", "GEFB": "GEF-B", "UHALB": "UHAL-B", "CWENA": "CWEN-A", "CRDA": "CRD-A",
    "CRDB": "CRD-B", "BIOB": "BIO-B", "WSOB": "WSO-B", "GTNA": "GTN-A", "MKCV": "MKC-V",
}
_AUTH_WORDS = ("crumb", "cookie", "unauthorized", "forbidden", "unable to access")


class _YahooClient(HttpClient):
    """The shared client, also allowed an absolute URL (the cookie page lives on another host)."""

    def url_for(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else super().url_for(path)


class _Expired(Exception):
    """Yahoo refused the cookie/crumb pair."""


def _setting(value, env: str, default, cast=int):
    if value is not None:
        return value
    raw = os.environ.get(env, "").strip()
    return cast(raw) if raw else default


def symbol_map_from_env(raw: str | None = None) -> dict[str, str]:
    """``DEFAULT_SYMBOL_MAP`` plus ``CAPSPREAD_CONSENSUS_SYMBOL_MAP`` (``OLD=NEW,OLD=NEW``)."""
    out = dict(DEFAULT_SYMBOL_MAP)
    raw = os.environ.get("CAPSPREAD_CONSENSUS_SYMBOL_MAP", "") if raw is None else raw
    for item in raw.split(","):
        if not item.strip():
            continue
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"CAPSPREAD_CONSENSUS_SYMBOL_MAP: {item.strip()!r} is not OLD=NEW")
        out[old.strip().upper()] = new.strip()
    return out


class ConsensusSource:
    """Per-company consensus estimates from Yahoo (see the module docstring).

    ``universe`` is the list of fund tickers in rotation priority, or a callable giving it when
    a fetch starts (the live wiring reads the iShares files then). ``today`` gives the current date
    (UTC) and ``state_dir`` the folder of the rotation state and the cache (None: in memory only).
    """

    name = "consensus"

    def __init__(
        self,
        universe: Sequence[str] | Callable[[], Sequence[str]],
        *,
        daily_budget: int | None = None,
        cache_days: int = DEFAULT_CACHE_DAYS,
        symbol_map: Mapping[str, str] | None = None,
        cookie_url: str | None = None,
        state_dir: Path | None = None,
        today: Callable[[], date] | None = None,
        client: HttpClient | None = None,
        **client_options,
    ) -> None:
        self._universe = universe
        self.daily_budget = _setting(daily_budget, "CAPSPREAD_CONSENSUS_DAILY_BUDGET", DEFAULT_BUDGET)
        if self.daily_budget < 0:
            raise ValueError("consensus: the daily budget cannot be negative")
        self.cache_days = cache_days
        self.symbol_map = dict(symbol_map_from_env() if symbol_map is None else symbol_map)
        self.cookie_url = cookie_url or os.environ.get("CAPSPREAD_CONSENSUS_COOKIE_URL") or DEFAULT_COOKIE_URL
        self.state_dir = state_dir
        self.state = StateFile(state_dir / "state.json" if state_dir is not None else None)
        self._memory_cache: dict[str, dict[str, bytes]] = {}
        self.today = today or (lambda: datetime.now(timezone.utc).date())
        client_options.setdefault("default_min_interval", 1.0)
        if "user_agent" not in client_options and os.environ.get("CAPSPREAD_CONSENSUS_USER_AGENT"):
            client_options["user_agent"] = os.environ["CAPSPREAD_CONSENSUS_USER_AGENT"]
        self.client = client or _YahooClient(self.name, DEFAULT_BASE_URL, **client_options)

    # -- the universe and the rotation

    def universe(self) -> list[str]:
        found = self._universe() if callable(self._universe) else self._universe
        return list(dict.fromkeys(s.strip() for s in found if s and s.strip()))

    def yahoo_symbol(self, symbol: str) -> str:
        """Yahoo's spelling of a fund ticker (``BRKB`` → ``BRK-B``; ``BF.B`` → ``BF-B``)."""
        return self.symbol_map.get(symbol.upper()) or symbol.replace(".", "-").replace("/", "-")

    @staticmethod
    def rotation(universe: Sequence[str], last_asked: Mapping[str, str]) -> list[str]:
        """``universe`` in the order to ask: never asked first, then asked longest ago; ties keep
        the universe's order."""
        position = {s: i for i, s in enumerate(universe)}
        return sorted(universe, key=lambda s: (last_asked.get(s, ""), position[s]))

    # -- fetch

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """Today's share of the rotation (see the module docstring); [] for other datasets."""
        if dataset != DATASET:
            return []
        if as_of < self.today() - timedelta(days=1):
            log.info("consensus: estimates cannot be observed for a past date (%s): nothing asked", as_of)
            return []
        universe = self.universe()
        if not universe:
            log.warning("consensus: no companies to ask for (no holdings kept by the ishares source yet?)")
            return []
        day = as_of.isoformat()
        state = self.state.load()
        last: dict[str, str] = dict(state.get("last_asked") or {})
        spent: dict[str, int] = {k: v for k, v in (state.get("spent") or {}).items() if k >= day}
        bodies = self._cached(as_of)
        from_cache = len(bodies)
        for symbol in bodies:
            last[symbol] = max(last.get(symbol, ""), day)
        spent[day] = max(spent.get(day, 0), from_cache)
        left = max(self.daily_budget - spent[day], 0)
        queue = [s for s in self.rotation(universe, last) if s not in bodies and last.get(s, "") < day]
        todo = queue[:left]
        planned = len(todo)
        errors: list[Batch] = []
        unknown: list[str] = []
        failure: SourceUnavailable | None = None
        asked = 0

        def save() -> None:
            state.update(last_asked=last, spent=spent)
            self.state.save(state)

        if todo:
            with self.client.session():
                try:
                    crumb = self._handshake()
                except SourceUnavailable as exc:
                    failure = exc
                    todo = []
                renewed = False
                for symbol in todo:
                    try:
                        try:
                            kind, result = self._one(symbol, as_of, crumb)
                        except _Expired as exc:
                            if renewed:
                                raise SourceUnavailable(
                                    f"consensus: Yahoo refused the new session too: {exc}") from None
                            renewed = True
                            log.info("consensus: session expired (%s): shaking hands again", exc)
                            crumb = self._handshake()
                            try:
                                kind, result = self._one(symbol, as_of, crumb)
                            except _Expired as again:
                                raise SourceUnavailable(
                                    f"consensus: Yahoo refused the new session too: {again}") from None
                    except SourceUnavailable as exc:
                        failure = exc
                        break
                    asked += 1
                    spent[day] += 1
                    last[symbol] = day
                    if kind == "ok":
                        bodies[symbol] = result
                        self._cache(as_of, symbol, result)
                    elif kind == "unknown":
                        unknown.append(symbol)
                    else:
                        errors.append(result)
                    if asked % SAVE_EVERY == 0:
                        save()
        save()
        self._prune(as_of)

        batches: list[Batch] = []
        if bodies:
            waiting = len(queue) - asked
            notes = [f"{len(bodies)} companies: {len(bodies) - from_cache} asked now, {from_cache} from "
                     f"today's cache; {spent[day]} of the daily budget of {self.daily_budget} spent on {day}; "
                     f"{waiting} companies wait for later days"]
            if unknown:
                shown = ", ".join(unknown[:20]) + (", …" if len(unknown) > 20 else "")
                notes.append(f"{len(unknown)} companies unknown to Yahoo (not covered): {shown}")
            bundle = self._bundle(bodies, as_of, notes)
            if bundle.error is not None or bundle.frame.height:  # companies without analysts give no rows
                batches.append(bundle)
        elif unknown:
            log.warning("consensus: %d companies unknown to Yahoo: %s", len(unknown), ", ".join(unknown[:20]))
        batches += errors
        if failure is not None:
            if not batches:
                raise failure
            for b in batches:
                b.notes.append(f"{PARTIAL}consensus stopped after {asked} of {planned} companies: {failure}")
        ok = failure is None and not errors
        for b in batches:
            b.cursor = as_of if ok else None
        return batches

    def _bundle(self, bodies: dict[str, bytes], as_of: date, notes: list[str]) -> Batch:
        name = f"yahoo_earningsTrend_{as_of.isoformat()}.zip"
        payload = fmt.bundle({fmt.member_name(s, as_of): b for s, b in bodies.items()}, as_of)
        try:
            frame = fmt.parse_zip(payload, name)
        except BadInput as exc:  # each body was read alone already: this is not expected
            return error_batch(self.name, DATASET, name, payload, exc, notes)
        return Batch(source=self.name, dataset=DATASET, name=name, payload=payload, format=fmt.FORMAT_ZIP,
                     frame=frame.filter(pl.col("as_of_date") <= as_of), notes=notes)

    # -- requests

    def _handshake(self) -> str:
        """Get Yahoo's session cookie (into the client's jar) and the crumb that goes with it."""
        try:
            self.client.get(self.cookie_url)
        except HttpRefused:
            pass  # the cookie page answers 404 and sets the cookie all the same
        try:
            response = self.client.get(CRUMB_PATH)
        except HttpRefused as exc:
            err = fmt.quote_summary_error(json_or_none(exc.body))
            said = f"{err[0]}: {err[1]}".strip(": ") if err else exc.body[:120].decode("utf-8", "replace").strip()
            raise SourceUnavailable(f"consensus: Yahoo refused a crumb (HTTP {exc.status}): {said}") from None
        crumb = response.content.decode("utf-8", "replace").strip()
        if not crumb or len(crumb) > 64 or any(c.isspace() for c in crumb) or crumb[:1] in "<{[":
            raise SourceUnavailable(f"consensus: no usable crumb from Yahoo (found {crumb[:60]!r})")
        register_secret(crumb)
        return crumb

    def _one(self, symbol: str, as_of: date, crumb: str) -> tuple[str, object]:
        """("ok", body) | ("unknown", None) | ("error", error batch); raises _Expired."""
        ysym = self.yahoo_symbol(symbol)
        name = fmt.member_name(symbol, as_of)
        params = {"modules": "earningsTrend", "formatted": "false", "crumb": crumb}
        try:
            response = self.client.get(SUMMARY_PATH + quote(ysym, safe=""), params=params)
        except HttpRefused as exc:
            err = fmt.quote_summary_error(json_or_none(exc.body))
            said = f"{err[0]}: {err[1]}".strip(": ") if err else exc.body[:120].decode("utf-8", "replace").strip()
            if exc.status in (401, 403) and (err is None or any(w in said.lower() for w in _AUTH_WORDS)):
                raise _Expired(f"HTTP {exc.status} {said}") from None
            if exc.status == 404 and err is not None and err[0].replace(" ", "").lower() == "notfound":
                return "unknown", None
            error: BadInput = exc
            if err is not None:
                error = BadInput(name, f"Yahoo refused {ysym} (HTTP {exc.status}): {said}", field="quoteSummary.error",
                                 expected="a known Yahoo symbol")
            return "error", error_batch(self.name, DATASET, name, exc.body, error)
        body = response.content
        if looks_like_html(body):
            return "error", error_batch(self.name, DATASET, name, body, BadInput(
                name, "Yahoo answered an HTML page instead of data (an error, consent or login page)",
                found=body[:120].decode("utf-8", "replace").strip(), expected="a quoteSummary JSON body"))
        err = fmt.quote_summary_error(json_or_none(body))
        if err is not None and err[0].replace(" ", "").lower() == "notfound":
            return "unknown", None
        try:
            fmt.parse_json(body, name)
        except BadInput as exc:
            return "error", error_batch(self.name, DATASET, name, body, exc)
        return "ok", body

    # -- the cache of bodies per name per day

    def _cache_dir(self, as_of: date) -> Path | None:
        return self.state_dir / "cache" / as_of.isoformat() if self.state_dir is not None else None

    def _cached(self, as_of: date) -> dict[str, bytes]:
        folder = self._cache_dir(as_of)
        if folder is None:
            return dict(self._memory_cache.get(as_of.isoformat(), {}))
        out: dict[str, bytes] = {}
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                try:
                    symbol, day = fmt.name_parts(path.name)
                except BadInput:
                    continue
                if day == as_of:
                    out[symbol] = path.read_bytes()
        return out

    def _cache(self, as_of: date, symbol: str, body: bytes) -> None:
        folder = self._cache_dir(as_of)
        if folder is None:
            self._memory_cache.setdefault(as_of.isoformat(), {})[symbol] = body
            return
        write_atomic(folder / fmt.member_name(symbol, as_of), body)

    def _prune(self, as_of: date) -> None:
        oldest = (as_of - timedelta(days=self.cache_days)).isoformat()
        for day in [d for d in self._memory_cache if d < oldest]:
            del self._memory_cache[day]
        if self.state_dir is None or not (self.state_dir / "cache").is_dir():
            return
        for folder in (self.state_dir / "cache").iterdir():
            if folder.is_dir() and folder.name < oldest:
                shutil.rmtree(folder, ignore_errors=True)


def holdings_universe_from(state_dir: Path | None, funds: Iterable[str]) -> Callable[[], list[str]]:
    """A universe callable for ``ConsensusSource``: the holdings the ``ishares`` source keeps in
    ``state_dir`` for ``funds``, read when a fetch starts."""
    from sources.ishares import holdings_universe

    funds = list(funds)
    return lambda: holdings_universe(state_dir, funds)


__all__ = ["DEFAULT_BASE_URL", "DEFAULT_COOKIE_URL", "DEFAULT_SYMBOL_MAP", "ConsensusSource",
           "holdings_universe_from", "symbol_map_from_env"]
