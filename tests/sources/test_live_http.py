"""The shared HTTP client of the live sources (sources/http.py) against a real server on 127.0.0.1.

Retries are counted on the server side; waits go through a recorder, so the tests never sleep
for a back-off or a Retry-After (except the polite-interval test, which measures real time).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import quote, quote_plus

import pytest
from conftest import serving
from pytest_httpserver import HTTPServer
from werkzeug import Response

from sources.errors import BadInput, SourceUnavailable
from sources.http import HttpClient, HttpRefused, RetryPolicy, _retry_after, redact, register_secret, scrub

PATH = "/data"


@pytest.fixture
def server(http_server, monkeypatch):
    yield from serving(http_server, monkeypatch)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(base_url: str, sleeps: Sleeps | None = None, **kw) -> HttpClient:
    kw.setdefault("retry", RetryPolicy(attempts=4, backoff=0.001, max_backoff=0.004, max_retry_after=30))
    kw.setdefault("min_interval", 0)
    kw.setdefault("timeout", 5.0)
    return HttpClient("testsrc", "http://unused.invalid", base_url=base_url, sleep=sleeps if sleeps is not None else Sleeps(), **kw)


def base(server: HTTPServer) -> str:
    return server.url_for("").rstrip("/")


def test_503_then_success_is_retried_with_small_backoff(server):
    server.expect_ordered_request(PATH).respond_with_data("busy", status=503)
    server.expect_ordered_request(PATH).respond_with_data("busy", status=503)
    server.expect_ordered_request(PATH).respond_with_data('{"ok": 1}', content_type="application/json")
    sleeps = Sleeps()
    got = client(base(server), sleeps).get(PATH)
    assert got.status == 200 and got.content == b'{"ok": 1}' and got.attempts == 3
    assert len(server.log) == 3
    assert len(sleeps) == 2 and all(0 < s <= 0.004 for s in sleeps)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_every_time_ends_in_source_unavailable_after_the_bounded_attempts(server, status):
    server.expect_request(PATH).respond_with_data("down", status=status)
    with pytest.raises(SourceUnavailable, match=f"failed after 4 attempt.*HTTP {status}"):
        client(base(server)).get(PATH)
    assert len(server.log) == 4


def test_429_retry_after_seconds_is_honoured_exactly(server):
    server.expect_ordered_request(PATH).respond_with_data("slow down", status=429, headers={"Retry-After": "7"})
    server.expect_ordered_request(PATH).respond_with_data("fine")
    sleeps = Sleeps()
    assert client(base(server), sleeps).get(PATH).content == b"fine"
    assert sleeps == [7.0]
    assert len(server.log) == 2


def test_429_retry_after_http_date_and_too_long_a_wait(server):
    when = datetime.now(timezone.utc) + timedelta(seconds=20)
    assert 15 <= _retry_after(format_datetime(when, usegmt=True)) <= 20
    assert _retry_after("0") == 0.0 and _retry_after("soon") is None and _retry_after(None) is None
    server.expect_request(PATH).respond_with_data("come back in an hour", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(SourceUnavailable, match="retry after 3600s"):
        client(base(server)).get(PATH)
    assert len(server.log) == 1  # no point waiting an hour: the source is given up at once


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_4xx_is_refused_at_once_with_the_body(server, status):
    server.expect_request(PATH).respond_with_data('{"error": "bad request"}', status=status)
    with pytest.raises(HttpRefused) as info:
        client(base(server)).get(PATH, params={"x": 1})
    assert isinstance(info.value, BadInput)
    assert info.value.status == status and info.value.body == b'{"error": "bad request"}'
    assert f"HTTP {status}" in info.value.reason()
    assert len(server.log) == 1


def test_timeout_is_retried(server):
    def slow(_request):
        time.sleep(0.4)
        return Response("late")

    server.expect_ordered_request(PATH).respond_with_handler(slow)
    server.expect_ordered_request(PATH).respond_with_data("on time")
    sleeps = Sleeps()
    got = client(base(server), sleeps, timeout=0.1).get(PATH)
    assert got.content == b"on time" and got.attempts == 2 and len(sleeps) == 1
    deadline = time.monotonic() + 2
    while len(server.log) < 2 and time.monotonic() < deadline:  # let the slow handler finish here
        time.sleep(0.02)


class RawServer:
    """A bare TCP server whose first ``bad`` connections misbehave, then answer properly."""

    def __init__(self, bad: int, how: str) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.bad, self.how, self.connections = bad, how, 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.recv(65536)
                if self.connections <= self.bad and self.how == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                elif self.connections <= self.bad and self.how == "truncated":
                    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"cha')
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"ok\": true}")

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("how", ["reset", "truncated"])
def test_connection_reset_and_body_cut_short_are_retried(how):
    raw = RawServer(bad=2, how=how)
    try:
        got = client(f"http://127.0.0.1:{raw.port}").get(PATH)
        assert got.content == b'{"ok": true}' and got.attempts == 3
        assert raw.connections == 3
    finally:
        raw.close()


def test_connection_refused_gives_up_after_the_attempts():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more
    sleeps = Sleeps()
    with pytest.raises(SourceUnavailable, match="ConnectError"):
        client(f"http://127.0.0.1:{port}", sleeps).get(PATH)
    assert len(sleeps) == 3


def test_polite_interval_between_requests_to_one_host(server):
    server.expect_request(PATH).respond_with_data("x")
    c = client(base(server), sleeps=None, min_interval=0.15)
    c.sleep = time.sleep
    t0 = time.monotonic()
    for _ in range(3):
        c.get(PATH)
    assert time.monotonic() - t0 >= 0.29
    assert len(server.log) == 3


def test_user_agent_and_base_url_from_environment(server, monkeypatch):
    server.expect_request(PATH).respond_with_data("x")
    monkeypatch.setenv("CAPSPREAD_TESTSRC_BASE_URL", base(server) + "/")
    monkeypatch.setenv("CAPSPREAD_USER_AGENT", "capspread-test/1.0")
    c = HttpClient("testsrc", "http://unused.invalid", min_interval=0)
    assert c.base_url == base(server)
    c.get(PATH)
    assert server.log[0][0].headers["User-Agent"] == "capspread-test/1.0"


def test_redaction_of_urls_json_and_known_secrets():
    assert redact("GET https://x/y?series_id=A&api_key=abc123def&file_type=json") == \
        "GET https://x/y?series_id=A&api_key=***&file_type=json"
    assert redact('{"registrationkey": "k-9f8e7d"}') == '{"registrationkey": "***"}'
    assert redact("https://stooq.com/q/d/l/?s=spy.us&apikey=zz99") == "https://stooq.com/q/d/l/?s=spy.us&apikey=***"
    register_secret("canary-4f1c2b")
    assert redact("the key canary-4f1c2b leaked") == "the key *** leaked"


def test_a_key_echoed_percent_encoded_is_masked_too():
    """A key with ``+``, ``/`` or ``=`` comes back from an error page that echoes the query string
    percent-encoded (hex in either case, ``+`` for a space or not): masked in every spelling, in
    text and in payloads."""
    key = "Cn+ry/k3y=9 z"
    register_secret(key)
    lower_hex = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(key, safe=""))
    echoed = [quote(key, safe=""), lower_hex, quote_plus(key), quote(key)]
    assert len(set(echoed)) == 4 and all(key not in e for e in echoed)
    page = "403 for /q/d/l/?s=spy.us&d1=1 " + " | ".join(f"seen {e} here" for e in echoed)
    assert redact(page) == "403 for /q/d/l/?s=spy.us&d1=1 " + " | ".join("seen *** here" for _ in echoed)
    assert scrub(page.encode()) == redact(page).encode()


def test_httpx_request_log_lines_are_redacted(server, caplog):
    server.expect_request(PATH).respond_with_data("x")
    caplog.set_level(logging.DEBUG)
    client(base(server)).get(PATH, params={"api_key": "zz-canary-77aa"})
    assert server.log[0][0].args["api_key"] == "zz-canary-77aa"  # the server did get the key
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))  # not the test server's
    assert "HTTP Request" in ours and "api_key=***" in ours
    assert "zz-canary-77aa" not in ours
