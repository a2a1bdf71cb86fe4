"""Inbound limits, the client address and GET /metrics over real HTTP (granian, 2 processes).

The API here runs with its own small limits, so the budgets are shared by granian's worker
processes through Redis, and REMOTE_ADDR is what granian reports for a real socket.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
import redis
import requests
from support.processes import start_api

from devstack.procs import free_port
from osutrack import metrics

pytestmark = pytest.mark.integration

UPDATE_LIMIT = 3
READ_LIMIT = 4
PERIOD_SECONDS = 60  # both limits are per minute


@pytest.fixture(scope="module")
def limited_api(
    service_env: Callable[..., dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    api = start_api(
        service_env(
            RATE_LIMIT_UPDATE=f"{UPDATE_LIMIT}/minute",
            RATE_LIMIT_READ=f"{READ_LIMIT}/minute",
            # The test client connects from 127.0.0.1, which plays the proxy here.
            TRUSTED_PROXIES="127.0.0.1",
        ),
        port,
        log_path=tmp_path_factory.mktemp("limited-api") / "api.log",
    )
    yield f"http://127.0.0.1:{port}"
    api.stop()


@pytest.fixture
def http(redis_client: redis.Redis) -> Iterator[requests.Session]:
    """A session; `redis_client` empties Redis (and so every budget) after the test."""
    with requests.Session() as session:
        yield session


def _forwarded(client: str) -> dict[str, str]:
    return {"X-Forwarded-For": client}


def _valid_update(
    http: requests.Session, api: str, user: int, headers: dict[str, str]
) -> requests.Response:
    return http.post(f"{api}/update", params={"user": user, "mode": 0, "wait": 0}, headers=headers)


def test_update_limit_over_http(limited_api: str, http: requests.Session) -> None:
    client = _forwarded("198.51.100.7")
    # Requests that are not valid updates use up nothing.
    for _ in range(UPDATE_LIMIT + 1):
        bad = http.post(f"{limited_api}/update", params={"user": "x", "mode": "0"}, headers=client)
        assert bad.status_code == 400
        assert "RateLimit-Remaining" not in bad.headers
        assert http.get(f"{limited_api}/update", headers=client).status_code == 405
    answers = [_valid_update(http, limited_api, 2_000_001 + n, client) for n in range(UPDATE_LIMIT)]
    for used, answer in enumerate(answers, start=1):
        assert answer.status_code == 202
        assert answer.headers["RateLimit-Limit"] == str(UPDATE_LIMIT)
        assert answer.headers["RateLimit-Remaining"] == str(UPDATE_LIMIT - used)
        assert int(answer.headers["RateLimit-Reset"]) >= 1

    refused = _valid_update(http, limited_api, 2_000_010, client)
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("Too many requests; ")
    # The sliding window (api_shim/ratelimit.py) frees a slot once the weighted count is at
    # most UPDATE_LIMIT - 1. With c of the requests in the current fixed window (c <= limit)
    # and `left` <= PERIOD of it to go, that takes at most left + PERIOD * (1 - (limit-1)/c):
    # up to PERIOD * (1 + 1/limit) when the requests land early in a minute of Redis's clock.
    longest_wait = math.ceil(PERIOD_SECONDS * (1 + 1 / UPDATE_LIMIT))
    assert 1 <= int(refused.headers["Retry-After"]) <= longest_wait
    assert refused.headers["RateLimit-Remaining"] == "0"

    # Behind the trusted proxy, another client keeps its own budget.
    other = _valid_update(http, limited_api, 2_000_011, _forwarded("198.51.100.8"))
    assert other.status_code == 202
    assert other.headers["RateLimit-Remaining"] == str(UPDATE_LIMIT - 1)


def test_read_limit_over_http(limited_api: str, http: requests.Session) -> None:
    client = _forwarded("198.51.100.9")
    for used in range(1, READ_LIMIT + 1):
        answer = http.get(f"{limited_api}/peak", params={"user": 2, "mode": 0}, headers=client)
        assert answer.status_code == 200
        assert answer.headers["RateLimit-Remaining"] == str(READ_LIMIT - used)
    refused = http.get(f"{limited_api}/hiscores", params={"user": 2}, headers=client)
    assert refused.status_code == 429
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    # The update budget of the same client is untouched.
    update = _valid_update(http, limited_api, 2_000_020, client)
    assert update.headers["RateLimit-Remaining"] == str(UPDATE_LIMIT - 1)


def test_metrics_over_http(
    limited_api: str, http: requests.Session, redis_client: redis.Redis
) -> None:
    # An outcome of its own: jobs of earlier tests may still finish on the session worker.
    metrics.record_job(redis_client, "metrics_test", 1.2)
    for _ in range(READ_LIMIT + 2):
        answer = http.get(f"{limited_api}/metrics")
        assert answer.status_code == 200
        assert "RateLimit-Limit" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'osutrack_jobs_total{outcome="metrics_test"} 1' in answer.text
    assert 'osutrack_queue_depth{queue="updates"} ' in answer.text
    assert "osutrack_refresh_coverage_ratio " in answer.text
