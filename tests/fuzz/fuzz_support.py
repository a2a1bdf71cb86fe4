"""Helpers shared by the fuzz tests: what a well-behaved answer looks like, raw HTTP, and
a census of everything a POST /update could leave behind.

The fuzz tests talk to a real granian over real sockets (the session's `api_url`), so the
answers checked here are what a client gets, including those granian gives before the app
sees the request.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from api_shim import params
from osutrack import queue

# Every fuzz test talks HTTP to processes started once per session: hypothesis must not
# time single examples (a first request may wait for a pool connection) nor complain
# that the session fixtures are shared between examples.
FUZZ_SETTINGS = settings(
    # Bounded: each example is a real HTTP request; 100 per property is a few seconds.
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HTTP_TIMEOUT_SECONDS = 30

READ_ENDPOINTS = ("/stats_history", "/hiscores", "/peak", "/bestplays")
OPERATOR_ENDPOINTS = ("/health", "/ping", "/metrics", "/openapi.json", "/docs")
JOB_PATH = "/jobs/00000000-0000-4000-8000-000000000000"
EVERY_PATH = ("/update", JOB_PATH, *READ_ENDPOINTS, *OPERATOR_ENDPOINTS)

# Every message a parameter rule can answer with: a 400 must carry one of these, so a
# refusal for the wrong reason (or a leaked exception text) is noticed.
PARAM_MESSAGES = frozenset(
    {
        params.USER_MESSAGE,
        params.MODE_MESSAGE,
        params.LIMIT_MESSAGE,
        params.USER_MODE_MESSAGE,
        params.RANGE_MESSAGE,
        params.date_message("from"),
        params.date_message("to"),
        params.wait_message(60),
        "Query string too long",
        "Query string is not valid UTF-8",
    }
)

# The tables a worker writes for an update, and the Redis keys a created job leaves.
WRITTEN_TABLES = ("stats_snapshots", "hiscores", "tracked_users", "finished_updates")
JOB_KEY_PATTERNS = ("osutrack:job:*", "osutrack:inflight:*")

# The first user id of the range these tests may create (lower ids belong to others).
FIRST_FUZZ_USER = 9_000_000


def error_message(response: requests.Response) -> str:
    """The `error` of a JSON error answer; fails unless the answer is exactly that shape."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str), body
    assert body["error"], body
    return str(body["error"])


def assert_param_refusal(response: requests.Response) -> str:
    """A 400 naming one of the documented parameter rules."""
    message = error_message(response)
    assert response.status_code == 400, (response.status_code, message)
    assert message in PARAM_MESSAGES, message
    return message


def assert_ok_or_param_refusal(response: requests.Response) -> None:
    """A read either answers a JSON list or refuses with a documented parameter message."""
    if response.status_code == 200:
        assert response.headers["Content-Type"].startswith("application/json")
        assert isinstance(response.json(), list)
        return
    assert_param_refusal(response)


@dataclass(frozen=True)
class RawAnswer:
    """An HTTP answer read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(base_url: str, request_line: bytes, headers: bytes = b"") -> RawAnswer:
    """Send `request_line` (e.g. b"GET /peak?user=\\xff HTTP/1.1") byte for byte.

    `requests` and `http.client` percent-encode or refuse bytes outside ASCII, so a client
    that sends them raw (which many do) can only be played from a socket.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    message = (
        request_line
        + b"\r\nHost: "
        + f"{host}:{port}".encode()
        + b"\r\nConnection: close\r\n"
        + headers
        + b"\r\n"
    )
    with socket.create_connection((host, port), timeout=HTTP_TIMEOUT_SECONDS) as sock:
        sock.sendall(message)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        body = answer.read()
        return RawAnswer(answer.status, {k.lower(): v for k, v in answer.getheaders()}, body)


def assert_raw_refusal_or_json(answer: RawAnswer) -> None:
    """Never a 5xx; an answer with a body is a JSON error from the app.

    granian itself may refuse a request it cannot parse before the app runs: that answer is
    a 4xx with an empty body, which is acceptable (nothing reached the app).
    """
    assert answer.status < 500, (answer.status, answer.body[:500])
    if answer.status >= 400 and answer.body:
        assert answer.headers.get("content-type", "").startswith("application/json"), answer
        body = answer.json()
        assert isinstance(body, dict)
        assert isinstance(body.get("error"), str)


@dataclass(frozen=True)
class Census:
    """What a worker or the shim could have written for an update."""

    rows: dict[str, int]
    job_keys: int
    queued: int


def census(engine: sa.Engine, client: redis.Redis) -> Census:
    """Counts of the written tables, of job/in-flight keys, and of queued update messages."""
    with engine.connect() as conn:
        rows = {
            # Table names come from the constant tuple above, never from a request.
            table: int(conn.scalar(sa.select(sa.func.count()).select_from(sa.table(table))) or 0)
            for table in WRITTEN_TABLES
        }
    job_keys = sum(
        1 for pattern in JOB_KEY_PATTERNS for _ in client.scan_iter(match=pattern, count=1000)
    )
    # Waiting for the budget, waiting to retry, or released to the workers.
    queued = queue.depth(client)
    return Census(rows, job_keys, queued)
