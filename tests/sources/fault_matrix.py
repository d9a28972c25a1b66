"""The fault matrix shared by test_live_faults.py (Live sources I) and test_live_ii_faults.py (Live sources II).

A test module states its sources as ``Spec``s in a ``Matrix``, provides a ``server`` fixture (from
``Matrix.serving``) and the ``matrix`` and ``name`` fixtures (``Matrix.fixtures``), and star-imports
this module: its ``test_*`` functions (``__all__``) then run each fault against every source of the
module. The faults particular to some sources stay in the module, written with the helpers here.

Each fault ends either recovered (the retry got the good answer) or in a clear failure of that
source's dataset alone: a batch with ``error`` (quarantined, never retried) or ``SourceUnavailable``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

import pytest
from conftest import serving
from pytest_httpserver import HTTPServer
from werkzeug import Response

from sources.errors import SourceUnavailable
from sources.http import RetryPolicy

__all__ = ["test_good_answer", "test_429_with_retry_after_recovers", "test_timeout_recovers",
           "test_html_instead_of_data_is_quarantined_without_retry", "test_truncated_body_is_quarantined",
           "test_renamed_field_is_quarantined"]

OPTIONS = dict(retry=RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, max_retry_after=30), min_interval=0,
               timeout=0.25)


@dataclass
class Spec:
    name: str
    dataset: str
    path: str
    build: Callable[..., object]
    good: Callable[[], bytes]
    renamed: Callable[[], bytes]  # the good answer with a field renamed
    as_of: date
    content_type: str = "application/json"
    method: str = "GET"
    cursor: date | None = None
    empty: bytes | None = None  # an answer with no observations, where the module tests one

    def run(self, waits: list | None = None):
        waits = waits if waits is not None else []
        return self.build(sleep=waits.append, **OPTIONS).fetch(self.dataset, self.as_of, self.cursor)

    def answer(self, body: bytes | None = None) -> Response:
        """``body`` (the good answer when None) served as this source's data is."""
        return Response(self.good() if body is None else body, content_type=self.content_type)


def renaming(good: Callable[[], bytes], old: bytes, new: bytes) -> Callable[[], bytes]:
    """The answer of ``good`` with ``old`` (which it must hold) replaced by ``new``."""
    def renamed() -> bytes:
        body = good()
        assert old in body
        return body.replace(old, new)
    return renamed


@dataclass
class Matrix:
    specs: dict[str, Spec]
    # answers served on every request to these paths besides the data requests (a source's handshake);
    # with a handshake the data answers are one-shot, without one they must come in order
    handshake: dict[str, Response] = field(default_factory=dict)

    def fixtures(self):
        """The module's ``matrix`` fixture (this matrix) and ``name`` fixture (each of its sources in turn)."""
        @pytest.fixture(name="matrix")
        def matrix() -> Matrix:
            return self

        @pytest.fixture(name="name", params=list(self.specs))
        def name(request) -> str:
            return request.param

        return matrix, name

    def serving(self, http_server: HTTPServer, monkeypatch, **kw):
        """For the module's ``server`` fixture: ``conftest.serving`` for these sources, handshake armed."""
        for server in serving(http_server, monkeypatch, self.specs, **kw):
            self.arm(server)
            yield server

    def arm(self, server: HTTPServer) -> None:
        for path, response in self.handshake.items():
            server.expect_request(path).respond_with_response(response)

    def respond(self, server: HTTPServer, spec: Spec, *answers) -> None:
        """``answers`` (a Response or a handler each) to the next data requests of ``spec``, in turn."""
        expect = server.expect_oneshot_request if self.handshake else server.expect_ordered_request
        for answer in answers:
            handler = expect(spec.path, method=spec.method)
            if isinstance(answer, Response):  # (a Response is callable too: test it first)
                handler.respond_with_response(answer)
            else:
                handler.respond_with_handler(answer)

    def requests(self, server: HTTPServer) -> int:
        """The requests served so far, the handshake's aside."""
        return sum(req.path not in self.handshake for req, _ in server.log)


def assert_recovered(batches, spec: Spec) -> None:
    assert batches and all(b.error is None and b.frame.height > 0 for b in batches)
    assert all(b.cursor == spec.as_of for b in batches)


def assert_quarantined(batches, *needles: str) -> None:
    assert batches and all(b.error is not None for b in batches)
    for b in batches:
        assert b.frame is None and b.cursor is None
        for needle in needles:
            assert needle in b.error.reason()


def assert_5xx_recovers_or_unavailable(server: HTTPServer, matrix: Matrix, name: str, status: int) -> None:
    """The body of the modules' 5xx tests (each parametrises its own statuses)."""
    spec = matrix.specs[name]
    matrix.respond(server, spec, Response("oops", status=status), spec.answer())
    assert_recovered(spec.run(), spec)
    assert matrix.requests(server) == 2
    server.clear()
    matrix.arm(server)
    server.expect_request(spec.path, method=spec.method).respond_with_data("oops", status=status)
    with pytest.raises(SourceUnavailable, match=f"{name}: .*HTTP {status}"):
        spec.run()
    assert matrix.requests(server) == 3  # the bounded attempts


def test_good_answer(server, matrix, name):
    spec = matrix.specs[name]
    matrix.respond(server, spec, spec.answer())
    assert_recovered(spec.run(), spec)


def test_429_with_retry_after_recovers(server, matrix, name):
    spec = matrix.specs[name]
    matrix.respond(server, spec, Response("slow down", status=429, headers={"Retry-After": "3"}), spec.answer())
    waits: list = []
    assert_recovered(spec.run(waits), spec)
    assert waits == [3.0] and matrix.requests(server) == 2


def test_timeout_recovers(server, matrix, name):
    spec = matrix.specs[name]

    def slow(_request):
        time.sleep(0.5)
        return spec.answer()

    matrix.respond(server, spec, slow, spec.answer())
    assert_recovered(spec.run(), spec)
    deadline = time.monotonic() + 2
    while matrix.requests(server) < 2 and time.monotonic() < deadline:  # let the slow answer finish inside this test
        time.sleep(0.02)


def test_html_instead_of_data_is_quarantined_without_retry(server, matrix, name):
    spec = matrix.specs[name]
    matrix.respond(server, spec, Response("<!DOCTYPE html>\n<html><body><h1>Service unavailable</h1></body></html>",
                                          content_type="text/html"))
    assert_quarantined(spec.run(), "HTML page")
    assert matrix.requests(server) == 1


def test_truncated_body_is_quarantined(server, matrix, name):
    spec = matrix.specs[name]
    body = spec.good()
    cut = len(body) // 2
    while body[cut - 1:cut + 1].count(b"\n"):  # cut inside a line, never on a line break
        cut += 1
    matrix.respond(server, spec, spec.answer(body[:cut]))
    assert_quarantined(spec.run())
    assert matrix.requests(server) == 1


def test_renamed_field_is_quarantined(server, matrix, name):
    spec = matrix.specs[name]
    matrix.respond(server, spec, spec.answer(spec.renamed()))
    assert_quarantined(spec.run())
