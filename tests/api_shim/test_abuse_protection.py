"""Per-client limits and the update queue cap, through Falcon's test client and a real Redis.

Postgres points at a closed port: the reads answer 503, which is enough to see that they
are counted and carry the headers. The update tests use `wait=0`, so a valid POST /update
registers its job, queues its task in Redis and answers 202 without any worker.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import redis
from falcon import testing

from api_shim.app import create_app
from api_shim.update_endpoints import QUEUE_FULL_RETRY_AFTER_SECONDS
from osutrack import jobs, tasknames
from osutrack.settings import load_settings

CLOSED_DATABASE_URL = "postgresql+psycopg2://x@127.0.0.1:9/x"
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
CLIENT = "203.0.113.9"
JOB_PATH = "/jobs/00000000-0000-0000-0000-000000000000"

AppFactory = Callable[..., testing.TestClient]


@pytest.fixture
def make_client(redis_url: str, redis_client: redis.Redis) -> AppFactory:
    """`make_client(**env)`: the app on the test Redis; `redis_client` flushes it after."""

    def build(**env: str) -> testing.TestClient:
        settings = load_settings(
            {"REDIS_URL": redis_url, "DATABASE_URL": CLOSED_DATABASE_URL, **env}
        )
        return testing.TestClient(create_app(settings))

    return build


def _post_update(
    client: testing.TestClient, query: str = "user=x&mode=0", **kwargs: object
) -> testing.Result:
    kwargs.setdefault("remote_addr", CLIENT)
    return client.simulate_post("/update", query_string=query, **kwargs)


_update_users = itertools.count(1000)


def _update(client: testing.TestClient, **kwargs: object) -> testing.Result:
    """A valid POST /update for a user of its own (a job queued, answered 202 at once)."""
    return _post_update(client, f"user={next(_update_users)}&mode=0&wait=0", **kwargs)


def _get(
    client: testing.TestClient, path: str, query: str = "user=1&mode=0", **kwargs: object
) -> testing.Result:
    kwargs.setdefault("remote_addr", CLIENT)
    return client.simulate_get(path, query_string=query, **kwargs)


def _assert_rate_headers(
    result: testing.Result, limit: int, remaining: int, window: int = 60
) -> None:
    assert result.headers["ratelimit-limit"] == str(limit)
    assert result.headers["ratelimit-remaining"] == str(remaining)
    # A request taken now slides out of the budget during the next window, so the wait for
    # one more request is at most two windows.
    assert 1 <= int(result.headers["ratelimit-reset"]) <= 2 * window


def _assert_too_many(result: testing.Result, limit: int) -> None:
    assert result.status_code == 429
    assert result.headers["content-type"] == "application/json"
    assert result.json["error"].startswith("Too many requests; ")
    retry_after = result.headers["retry-after"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 120
    assert retry_after == result.headers["ratelimit-reset"]
    _assert_rate_headers(result, limit, 0)


def test_sixth_update_in_a_minute_is_429(make_client: AppFactory) -> None:
    client = make_client()
    # Refused before they are updates: none of them uses up the update budget.
    refusals = [
        _post_update(client, "user=x&mode=0"),
        _post_update(client, "user=1&mode=9"),
        _post_update(client, "user=1&mode=0&wait=99"),
        _post_update(client, "user=%ff&mode=0"),
        client.simulate_get("/update", query_string="user=1&mode=0", remote_addr=CLIENT),
        client.simulate_head("/update", query_string="user=1&mode=0", remote_addr=CLIENT),
        client.simulate_options("/update", remote_addr=CLIENT),
    ]
    assert [answer.status_code for answer in refusals] == [400, 400, 400, 400, 405, 405, 200]
    # Accepted: a job is queued each time (no worker runs here).
    answers = [_post_update(client, f"user={user}&mode=0&wait=0") for user in range(1, 6)]
    assert [answer.status_code for answer in answers] == [202] * 5
    for used, answer in enumerate(answers, start=1):
        _assert_rate_headers(answer, 5, 5 - used)
    refused = _post_update(client, "user=6&mode=0&wait=0")
    _assert_too_many(refused, 5)
    assert "access-control-allow-origin" not in refused.headers
    # Refused requests still are not counted, and GET /update is still a 405.
    assert _post_update(client, "user=x&mode=0").status_code == 400
    assert client.simulate_get("/update", remote_addr=CLIENT).status_code == 405
    # Another client still has its own budget.
    other = _post_update(client, "user=7&mode=0&wait=0", remote_addr="198.51.100.20")
    assert other.status_code == 202
    _assert_rate_headers(other, 5, 4)


def test_query_string_guard_refusals_count_for_reads(make_client: AppFactory) -> None:
    client = make_client(RATE_LIMIT_READ="2/minute")
    for _ in range(2):
        result = _get(client, "/peak", "user=%ff&mode=0")
        assert result.status_code == 400
    _assert_too_many(_get(client, "/peak", "user=%ff&mode=0"), 2)


def test_reads_and_updates_have_separate_budgets(make_client: AppFactory) -> None:
    client = make_client(RATE_LIMIT_UPDATE="2/minute", RATE_LIMIT_READ="4/minute")
    for user in (1, 2):
        assert _post_update(client, f"user={user}&mode=0&wait=0").status_code == 202
    _assert_too_many(_post_update(client, "user=3&mode=0&wait=0"), 2)

    reads = [
        _get(client, "/peak"),
        _get(client, "/stats_history"),
        _get(client, "/bestplays", "mode=9"),
        _get(client, JOB_PATH),
    ]
    assert [read.status_code for read in reads] == [503, 503, 400, 404]
    for used, read in enumerate(reads, start=1):
        _assert_rate_headers(read, 4, 4 - used)
    refused = _get(client, "/hiscores")
    _assert_too_many(refused, 4)
    assert refused.headers["access-control-allow-origin"] == "*"
    assert _get(client, JOB_PATH).status_code == 429


@pytest.mark.parametrize("path", ["/health", "/ping", "/metrics", "/docs", "/openapi.json"])
def test_operator_endpoints_are_not_limited(make_client: AppFactory, path: str) -> None:
    client = make_client(RATE_LIMIT_READ="1/minute", RATE_LIMIT_UPDATE="1/minute")
    for _ in range(3):
        result = _get(client, path)
        assert result.status_code != 429
        assert not set(RATE_HEADERS) & set(result.headers)


def test_off_disables_one_limit(make_client: AppFactory) -> None:
    client = make_client(RATE_LIMIT_UPDATE="off", RATE_LIMIT_READ="2/minute")
    for _ in range(8):
        result = _post_update(client)
        assert result.status_code == 400
        assert not set(RATE_HEADERS) & set(result.headers)
    _get(client, "/peak")
    _get(client, "/peak")
    _assert_too_many(_get(client, "/peak"), 2)


def test_both_limits_off(make_client: AppFactory) -> None:
    client = make_client(RATE_LIMIT_UPDATE="off", RATE_LIMIT_READ="OFF")
    for _ in range(8):
        assert _post_update(client).status_code == 400
        assert _get(client, "/peak").status_code == 503


def test_several_limits_report_the_tightest(make_client: AppFactory) -> None:
    client = make_client(RATE_LIMIT_UPDATE="10/minute;2/hour")
    first = _update(client)
    _assert_rate_headers(first, 2, 1, window=3600)
    _update(client)
    refused = _update(client)
    assert refused.status_code == 429
    assert refused.headers["ratelimit-limit"] == "2"
    assert 60 < int(refused.headers["retry-after"]) <= 7200


def test_forged_forwarded_for_does_not_dodge_the_limit(make_client: AppFactory) -> None:
    client = make_client(RATE_LIMIT_UPDATE="2/minute")
    for forged in ("198.51.100.1", "198.51.100.2"):
        result = _update(client, headers={"X-Forwarded-For": forged})
        assert result.status_code == 202
    _assert_too_many(_update(client, headers={"X-Forwarded-For": "198.51.100.3"}), 2)


def test_trusted_proxy_forwards_client_addresses(make_client: AppFactory) -> None:
    client = make_client(RATE_LIMIT_UPDATE="2/minute", TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.7")
    proxy = "10.0.0.1"

    def via_proxy(forwarded_for: str) -> testing.Result:
        return _update(client, remote_addr=proxy, headers={"X-Forwarded-For": forwarded_for})

    # The same client through two proxy hops; what it claims on the left is ignored.
    assert via_proxy("198.51.100.1").status_code == 202
    assert via_proxy("6.6.6.6, 198.51.100.1, 192.0.2.7").status_code == 202
    _assert_too_many(via_proxy("7.7.7.7, 198.51.100.1"), 2)
    # Another client behind the same proxy has its own budget, and so has the proxy.
    other = via_proxy("198.51.100.2")
    assert other.status_code == 202
    _assert_rate_headers(other, 2, 1)
    own = _update(client, remote_addr=proxy)
    _assert_rate_headers(own, 2, 1)


def test_ipv6_clients_share_their_64(make_client: AppFactory) -> None:
    client = make_client(RATE_LIMIT_UPDATE="2/minute")
    assert _update(client, remote_addr="2001:db8:1:2::1").status_code == 202
    assert _update(client, remote_addr="2001:db8:1:2::2").status_code == 202
    _assert_too_many(_update(client, remote_addr="2001:db8:1:2:ffff::3"), 2)
    assert _update(client, remote_addr="2001:db8:1:3::1").status_code == 202


def test_redis_down_lets_requests_through() -> None:
    settings = load_settings(
        {
            "REDIS_URL": "redis://127.0.0.1:9/0",
            "DATABASE_URL": CLOSED_DATABASE_URL,
            "RATE_LIMIT_UPDATE": "1/minute",
            "RATE_LIMIT_READ": "1/minute",
        }
    )
    client = testing.TestClient(create_app(settings))
    for _ in range(3):
        bad = _post_update(client)
        assert bad.status_code == 400
        assert not set(RATE_HEADERS) & set(bad.headers)
        valid = _post_update(client, "user=1&mode=0&wait=0")
        assert valid.status_code == 503
        assert valid.json == {"error": "redis unavailable"}
        assert _get(client, "/peak").status_code == 503


def _fill_update_queue(redis_client: redis.Redis, depth: int) -> None:
    current = int(redis_client.llen(tasknames.UPDATE_QUEUE))  # type: ignore[arg-type]
    redis_client.lpush(tasknames.UPDATE_QUEUE, *(f"fake-{n}" for n in range(depth - current)))


def test_full_queue_refuses_new_jobs_but_not_joins(
    make_client: AppFactory, redis_client: redis.Redis
) -> None:
    client = make_client(RATE_LIMIT_UPDATE="off", MAX_QUEUE_DEPTH="3")
    in_flight = _post_update(client, "user=11&mode=0&wait=0")
    assert in_flight.status_code == 202
    # At the cap is still room; only more than MAX_QUEUE_DEPTH refuses.
    _fill_update_queue(redis_client, 3)
    assert _post_update(client, "user=12&mode=0&wait=0").status_code == 202
    assert redis_client.llen(tasknames.UPDATE_QUEUE) == 4

    refused = _post_update(client, "user=13&mode=0&wait=0")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == str(QUEUE_FULL_RETRY_AFTER_SECONDS)
    assert refused.json == {"error": "Too many updates queued; try again later"}
    assert not redis_client.exists(jobs.inflight_key(13, 0))
    # The same user in another mode is a new job too.
    assert _post_update(client, "user=11&mode=1&wait=0").status_code == 503

    joined = _post_update(client, "user=11&mode=0&wait=0")
    assert joined.status_code == 202
    assert joined.json["job_id"] == in_flight.json["job_id"]
    assert redis_client.llen(tasknames.UPDATE_QUEUE) == 4


def test_queue_cap_counts_against_the_limit_too(
    make_client: AppFactory, redis_client: redis.Redis
) -> None:
    client = make_client(RATE_LIMIT_UPDATE="1/minute", MAX_QUEUE_DEPTH="1")
    _fill_update_queue(redis_client, 2)
    refused = _post_update(client, "user=21&mode=0&wait=0")
    assert refused.status_code == 503
    _assert_rate_headers(refused, 1, 0)
    _assert_too_many(_post_update(client, "user=21&mode=0&wait=0"), 1)
