"""The HTTP client every live source shares, and the rules for turning answers into batches.

What a caller of ``source.fetch(dataset, as_of, cursor)`` must know
--------------------------------------------------------------------
* It returns a list of ``Batch``. A batch whose ``error`` is set carries a payload that was
  received but cannot be used (HTML instead of JSON/CSV, a truncated or renamed-field body, a
  ``chart.error``, a 4xx answer such as an unknown series): quarantine it with
  ``error.reason()``. It is ``BadInput``: never retry it, fetching again gives the same answer.
* It raises ``SourceUnavailable`` when the source could not be reached after the retries of this
  module (network errors, timeouts, 5xx, 429, a rate limit or daily quota): nothing of that
  dataset from that source is returned, so nothing partial lands. Record the failure for that
  source and dataset and go on with the other sources and datasets; the cursor stays where it
  was, so the next run asks for the same window again. Its subclass ``SourceNotConfigured``
  (a required key is missing) is not worth retrying at all until someone sets the key.
* ``Batch.cursor`` is ``as_of`` only when every request of the fetch succeeded. When any part
  failed, the good batches still come back (each complete on its own: one symbol, one series,
  one settlement window) but with ``cursor=None``, so the cursor does not move past the part that
  failed; within such a part nothing loads (the failed payload alone comes back, for quarantine).
* A fetch that finds nothing new returns [] (no empty batches).

Payloads and replay: ``Batch.payload`` is the body exactly as received and ``Batch.format`` the
name ``sources.formats`` detects for it, so ``sources.base.parse_payload`` rebuilds the frame from
the landed file. ``Batch.frame`` additionally leaves out rows that were not yet public on
``as_of`` (``transforms.pit.available_on``, noted in ``Batch.notes``); that matters only when a
live source is asked about a past date. Refused payloads (``error`` set) have their secrets masked.

The client
----------
``HttpClient(source, default_base_url)`` wraps ``httpx`` with:

* the base URL from ``CAPSPREAD_<SOURCE>_BASE_URL`` (a proxy, a mirror, or a test server);
* timeouts, a ``User-Agent`` (``CAPSPREAD_USER_AGENT`` overrides it) and a polite minimum
  interval between two requests to the same host (per process, shared by all clients);
* retries with ``tenacity`` on transport errors (connect/read errors, timeouts, a connection
  reset, a body cut short), 5xx, 408 and 429 only: exponential back-off with jitter, ``Retry-After``
  honoured, a bounded number of attempts, then ``SourceUnavailable``. Any other non-2xx answer
  raises ``HttpRefused`` (a ``BadInput``) at once, with the body kept for quarantine.

Secrets come from the environment or a Prefect Secret block (``secret()``), never from files.
Every secret seen is remembered and ``redact()`` removes it, and the values of ``api_key``,
``apikey``, ``registrationkey`` and similar parameters, from any URL or text this module logs or
puts into an error; the ``httpx``/``httpcore`` loggers get the same filter.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import os
import random
import re
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import httpx
import polars as pl
import tenacity

from sources.base import Batch
from sources.errors import BadInput, SourceUnavailable

log = logging.getLogger("capspread.sources")

USER_AGENT = "capspread/0.1 (nightly market-data pipeline; httpx)"

# ----------------------------------------------------------------------------------------------
# secrets and redaction

_SECRET_PARAMS = ("api_key", "apikey", "api-key", "registrationkey", "registration_key", "token", "access_token",
                  "client_secret", "password")
_PARAM_RE = re.compile(
    r"(?i)\b(" + "|".join(re.escape(p) for p in _SECRET_PARAMS) + r")(\"?\s*[=:]\s*\"?)([^&\s\"',}]+)"
)
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
MASK = "***"


def _forms(value: str) -> set[str]:
    """``value`` as it can come back from a server or a log: as is, percent-encoded (upper- and
    lower-case hex, ``+`` for spaces or not) and JSON-escaped. A key with ``+``, ``/`` or ``=`` that an
    error page echoes from the query string is no longer spelled as it was set."""
    from urllib.parse import quote, quote_plus

    encoded = {quote(value, safe=""), quote(value), quote_plus(value)}
    encoded |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), e) for e in encoded}
    return {value, json.dumps(value)[1:-1], *encoded}


def register_secret(value: str | None) -> None:
    """Remember a secret value so that ``redact`` and ``scrub`` remove it (in every spelling of
    ``_forms``) wherever it appears."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.update(_forms(value))


def redact(text: object) -> str:
    """``text`` with every known secret value and every ``api_key=…``-like value masked."""
    out = str(text)
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for value in secrets:
        out = out.replace(value, MASK)
    return _PARAM_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", out)


def scrub(payload: bytes) -> bytes:
    """``payload`` with every known secret value masked (used only for payloads that are refused)."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for value in secrets:
        payload = payload.replace(value.encode(), MASK.encode())
    return payload


def secret(env_name: str, block: str | None = None) -> str | None:
    """A secret from the environment variable ``env_name``, else from the Prefect Secret block
    ``block`` (default: ``env_name`` in lower case with dashes, e.g. ``fred-api-key``).

    The block is looked up only inside a Prefect flow or task run, or when ``PREFECT_API_URL``
    names a server, so that a plain call never starts a Prefect server. None when neither has it.
    """
    value = (os.environ.get(env_name) or "").strip() or None
    if value is None:
        value = _prefect_secret(block or env_name.lower().replace("_", "-"))
    register_secret(value)
    return value


def _prefect_secret(block: str) -> str | None:
    api = os.environ.get("PREFECT_API_URL")
    if "prefect" not in sys.modules and not api:
        return None
    try:
        from prefect.context import FlowRunContext, TaskRunContext

        if FlowRunContext.get() is None and TaskRunContext.get() is None and not api:
            return None
        from prefect.blocks.system import Secret

        value = Secret.load(block).get()
    except Exception as exc:  # no block of that name, no server: the key is simply not configured
        log.debug("no Prefect Secret block %r (%s)", block, type(exc).__name__)
        return None
    if value is None:
        return None
    return str(value).strip() or None


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = _RedactingFilter()
for _name in ("httpx", "httpcore", "capspread.sources"):
    _logger = logging.getLogger(_name)
    if _FILTER not in _logger.filters:
        _logger.addFilter(_FILTER)


# ----------------------------------------------------------------------------------------------
# errors


class SourceNotConfigured(SourceUnavailable):
    """A required key or setting is missing: the source cannot be asked at all. Not transient —
    retrying does not help until someone sets it — but, like any ``SourceUnavailable``, it stops
    only this source."""


class HttpRefused(BadInput):
    """A non-2xx answer that is not retried (4xx other than 408/429): our request, key or symbol
    is wrong. ``body`` is what the server sent (secrets masked), ``status`` its status code."""

    def __init__(self, source: str, method: str, url: str, status: int, body: bytes, content_type: str = "") -> None:
        self.source = source
        self.status = status
        self.body = scrub(body)
        self.content_type = content_type
        self.url = redact(url)
        snippet = redact(self.body[:300].decode("utf-8", "replace").strip())
        super().__init__(
            f"{source}: {method} {self.url}",
            f"the server refused the request with HTTP {status}",
            found=snippet or None,
            expected="HTTP 200 with data",
        )


class _Transient(Exception):
    """A fault worth another try (transport error, 5xx, 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# ----------------------------------------------------------------------------------------------
# the client


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient faults.

    Waits grow exponentially from ``backoff`` seconds (doubling, capped at ``max_backoff``) with
    "equal jitter" (half fixed, half random). A ``Retry-After`` answer is waited exactly; one
    longer than ``max_retry_after`` ends the fetch at once with ``SourceUnavailable``.
    """

    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 120.0

    def wait(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * (2 ** max(attempt - 1, 0)))
        return base / 2 + random.uniform(0, base / 2)


@dataclass
class HttpResponse:
    status: int
    content: bytes
    headers: httpx.Headers
    url: str  # redacted
    attempts: int = 1

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """httpx's default context (certifi, SSL_CERT_FILE/SSL_CERT_DIR honoured), built once: building
    it costs tenths of a second."""
    return httpx.create_ssl_context(trust_env=True)


_HOST_LOCK = threading.Lock()
_HOST_NEXT: dict[str, float] = {}


def _env_float(name: str) -> float | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


def base_url_env(source: str) -> str:
    return f"CAPSPREAD_{source.upper()}_BASE_URL"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class HttpClient:
    """A polite, retrying HTTP client for one source (see the module docstring).

    Settings: explicit arguments win, then the environment (``CAPSPREAD_HTTP_TIMEOUT``,
    ``CAPSPREAD_HTTP_ATTEMPTS``, ``CAPSPREAD_HTTP_BACKOFF``, ``CAPSPREAD_<SOURCE>_MIN_INTERVAL``,
    ``CAPSPREAD_USER_AGENT``, ``CAPSPREAD_<SOURCE>_BASE_URL``), then the defaults (a source's
    polite interval through ``default_min_interval``).
    ``sleep`` is what waits (tests pass a recorder); ``transport`` an optional httpx transport.
    """

    def __init__(
        self,
        source: str,
        default_base_url: str,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        min_interval: float | None = None,
        default_min_interval: float = 0.5,
        user_agent: str | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.source = source
        self.base_url = (base_url or os.environ.get(base_url_env(source)) or default_base_url).rstrip("/")
        if timeout is None:
            seconds = _env_float("CAPSPREAD_HTTP_TIMEOUT") or 60.0
            timeout = httpx.Timeout(seconds, connect=min(10.0, seconds))
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        if retry is None:
            attempts = _env_float("CAPSPREAD_HTTP_ATTEMPTS")
            backoff = _env_float("CAPSPREAD_HTTP_BACKOFF")
            retry = RetryPolicy(
                attempts=int(attempts) if attempts else RetryPolicy.attempts,
                backoff=backoff if backoff is not None else RetryPolicy.backoff,
            )
        self.retry = retry
        env_interval = _env_float(f"CAPSPREAD_{source.upper()}_MIN_INTERVAL")
        self.min_interval = (min_interval if min_interval is not None
                             else env_interval if env_interval is not None else default_min_interval)
        agent = user_agent or os.environ.get("CAPSPREAD_USER_AGENT") or USER_AGENT
        self.headers = {"User-Agent": agent, **(headers or {})}
        self.sleep = sleep
        self.transport = transport
        self._client: httpx.Client | None = None
        self.requests = 0  # attempts sent, for health reports and tests

    # -- lifecycle

    @contextmanager
    def session(self) -> Iterator[HttpClient]:
        """Keep one connection pool open for the duration of a fetch."""
        if self._client is not None:
            yield self
            return
        self._client = self._new_client()
        try:
            yield self
        finally:
            client, self._client = self._client, None
            client.close()

    def _new_client(self) -> httpx.Client:
        return httpx.Client(timeout=self.timeout, headers=self.headers, follow_redirects=True, transport=self.transport,
                            verify=_ssl_context())

    # -- requests

    def get(self, path: str, *, params: Mapping[str, object] | None = None,
            headers: Mapping[str, str] | None = None) -> HttpResponse:
        return self.request("GET", path, params=params, headers=headers)

    def post(self, path: str, *, json_body: object = None, params: Mapping[str, object] | None = None,
             headers: Mapping[str, str] | None = None) -> HttpResponse:
        return self.request("POST", path, params=params, json_body=json_body, headers=headers)

    def url_for(self, path: str) -> str:
        return self.base_url + ("" if path.startswith("/") else "/") + path

    def request(self, method: str, path: str, *, params: Mapping[str, object] | None = None,
                json_body: object = None, headers: Mapping[str, str] | None = None) -> HttpResponse:
        """Send one request with retries; a 2xx answer comes back, anything else raises."""
        url = self.url_for(path)
        shown = redact(str(httpx.URL(url, params={k: str(v) for k, v in (params or {}).items()})))
        attempts = {"n": 0}

        def once() -> HttpResponse:
            attempts["n"] += 1
            return self._once(method, url, shown, params, json_body, headers, attempts["n"])

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.retry.attempts)),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Transient),
            sleep=self.sleep,
            before_sleep=lambda state: log.warning(
                "%s: %s %s: %s; retry %d of %d in %.2fs", self.source, method, shown,
                state.outcome.exception(), state.attempt_number, self.retry.attempts - 1,
                state.next_action.sleep if state.next_action else 0.0,
            ),
            reraise=True,
        )
        try:
            with self.session():
                return retrying(once)
        except _Transient as exc:
            raise SourceUnavailable(
                f"{self.source}: {method} {shown} failed after {attempts['n']} attempt(s): {exc}"
            ) from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after
        return self.retry.wait(state.attempt_number)

    def _polite(self, host: str) -> None:
        if self.min_interval <= 0:
            return
        with _HOST_LOCK:
            now = time.monotonic()
            start = max(now, _HOST_NEXT.get(host, 0.0))
            _HOST_NEXT[host] = start + self.min_interval
        if start > now:
            self.sleep(start - now)

    def _once(self, method, url, shown, params, json_body, headers, attempt) -> HttpResponse:
        client = self._client
        assert client is not None, "requests run inside session()"
        try:
            request = client.build_request(
                method, url, params={k: str(v) for k, v in (params or {}).items()} or None,
                json=json_body, headers=dict(headers or {}),
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise SourceNotConfigured(f"{self.source}: {method} {shown}: {redact(exc)}") from None
        self._polite(request.url.netloc.decode("ascii", "replace"))
        self.requests += 1
        log.debug("%s: %s %s (attempt %d)", self.source, method, shown, attempt)
        try:
            response = client.send(request)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            raise SourceNotConfigured(f"{self.source}: {method} {shown}: {redact(exc)}") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise _Transient(f"{type(exc).__name__}: {redact(exc) or 'no detail'}") from None
        status = response.status_code
        if 200 <= status < 300:
            return HttpResponse(status, response.content, response.headers, shown, attempt)
        if status == 429 or status == 408 or status >= 500:
            wait = _retry_after(response.headers.get("retry-after"))
            if wait is not None and wait > self.retry.max_retry_after:
                raise SourceUnavailable(
                    f"{self.source}: {method} {shown}: HTTP {status}, asked to retry after {wait:.0f}s "
                    f"(more than the {self.retry.max_retry_after:.0f}s this client waits)"
                )
            raise _Transient(f"HTTP {status}" + (f" (Retry-After {wait:g}s)" if wait is not None else ""), wait)
        raise HttpRefused(self.source, method, url, status, response.content, response.headers.get("content-type", ""))


# ----------------------------------------------------------------------------------------------
# answers → batches


def looks_like_html(content: bytes) -> bool:
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")) or b"<html" in head[:512]


def error_batch(source: str, dataset: str, name: str, payload: bytes, error: BadInput,
                notes: Iterable[str] = ()) -> Batch:
    """A batch that must be quarantined: the payload (secrets masked) and why it is refused."""
    clean = scrub(payload)
    batch = Batch(source=source, dataset=dataset, name=redact(name), payload=clean, format="unknown", error=error,
                  notes=list(notes))
    if clean != payload:
        batch.notes.append("a secret echoed in the payload was masked")
    return batch


def parsed_batch(source: str, dataset: str, name: str, payload: bytes, *, as_of: date,
                 lags: Mapping[str, int] | None = None, notes: Iterable[str] = ()) -> Batch:
    """Parse ``payload`` exactly as replay will (``sources.formats`` by content, file name ``name``)
    and keep only the observations public on ``as_of``; unusable payloads become error batches."""
    from sources import formats
    from transforms.pit import available_on

    if looks_like_html(payload):
        return error_batch(source, dataset, name, payload, BadInput(
            name, f"{source} answered an HTML page instead of data (an error, consent or login page)",
            found=payload[:120].decode("utf-8", "replace").strip(), expected=f"a {dataset} payload (JSON or CSV)"),
            notes)
    try:
        found, fmt = formats.detect(payload, name, dataset)
        if found != dataset:
            raise BadInput(name, f"{source} answered a {found} payload ({fmt}), not {dataset}")
        frame = formats.parse(payload, name, dataset)
    except BadInput as exc:
        return error_batch(source, dataset, name, payload, exc, notes)
    notes = list(notes)
    public = frame.filter(available_on(dataset, lags) <= pl.lit(as_of))
    if public.height < frame.height:
        notes.append(f"{frame.height - public.height} row(s) not yet public on {as_of} left out")
    return Batch(source=source, dataset=dataset, name=name, payload=payload, format=fmt, frame=public, notes=notes)


@dataclass
class Unit:
    """The batches of one self-contained request (one symbol, one series, one settlement window):
    all of them load, or — when any failed — only the failures come back, for quarantine."""

    batches: list[Batch] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(b.error is not None for b in self.batches)


def settle(units: Iterable[Unit], as_of: date) -> list[Batch]:
    """The batches to hand over: good units' non-empty batches and failed units' errors.

    ``cursor`` is ``as_of`` on every batch when nothing failed, else None on all (the cursor must
    not move past a unit that will be asked for again next run).
    """
    units = list(units)
    out: list[Batch] = []
    for unit in units:
        if unit.failed:
            bad = [b for b in unit.batches if b.error is not None]
            held = len(unit.batches) - len(bad)
            if held:
                for b in bad:
                    b.notes.append(f"{held} other payload(s) of the same request were not loaded, "
                                   "so that nothing partial lands")
            out.extend(bad)
        else:
            out.extend(b for b in unit.batches if b.frame is not None and b.frame.height)
    ok = not any(u.failed for u in units)
    for b in out:
        b.cursor = as_of if ok else None
    return out


def json_or_none(content: bytes) -> object:
    try:
        return json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None


__all__ = [
    "HttpClient", "HttpRefused", "HttpResponse", "RetryPolicy", "SourceNotConfigured", "Unit", "base_url_env",
    "error_batch", "looks_like_html", "parsed_batch", "redact", "register_secret", "scrub", "secret", "settle",
]
