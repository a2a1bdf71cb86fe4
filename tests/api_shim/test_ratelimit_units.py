"""The inbound limiter's pure parts: which paths are limited, limits, client keys, verdicts.

Which paths are limited comes from the `rate_limit` each routed resource declares; an app
with a resource that declares none cannot be built.

The sliding window script itself runs against a real Redis in `test_ratelimit_script.py`.
"""

from __future__ import annotations

import logging

import falcon.asgi
import pytest

from api_shim.app import create_app
from api_shim.ratelimit import (
    READ,
    UNLIMITED,
    UPDATE,
    Budget,
    DeclaredRateLimitRouter,
    InboundLimiter,
    UndeclaredRateLimit,
    Verdict,
    _binding,
    budgets_of,
    client_key,
    verdicts_of,
)
from osutrack.settings import RateLimit, Settings

# Nothing is connected while an app is built, so unreachable addresses are enough.
CLOSED_SETTINGS = Settings(
    database_url="postgresql+psycopg2://x@127.0.0.1:9/x",
    redis_url="redis://127.0.0.1:9/0",
)


def _router(app: falcon.asgi.App) -> DeclaredRateLimitRouter:
    router = app._router
    assert isinstance(router, DeclaredRateLimitRouter)
    return router


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/update", UPDATE),
        ("/stats_history", READ),
        ("/hiscores", READ),
        ("/peak", READ),
        ("/bestplays", READ),
        ("/jobs/00000000-0000-0000-0000-000000000000", READ),
        ("/jobs/anything", READ),
        ("/health", None),
        ("/ping", None),
        ("/metrics", None),
        ("/docs", None),
        ("/openapi.json", None),
        ("/", None),
        ("/jobs", None),
        ("/updates", None),
    ],
)
def test_limit_class(path: str, expected: str | None) -> None:
    assert _router(create_app(CLOSED_SETTINGS)).limit_class(path) == expected


def test_budgets_of() -> None:
    assert budgets_of(RateLimit.parse("off")) == ()
    assert budgets_of(RateLimit.parse("5/minute")) == (Budget(5, 60),)
    assert budgets_of(RateLimit.parse("60/minute;2/second")) == (Budget(60, 60), Budget(2, 1))
    assert budgets_of(RateLimit.parse("10/2 hours")) == (Budget(10, 7200),)


class _Undeclared:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.text = "unthrottled"


class _Misdeclared(_Undeclared):
    rate_limit = "reads"


class _Declared(_Undeclared):
    rate_limit = UNLIMITED


@pytest.mark.parametrize("resource", [_Undeclared(), _Misdeclared()])
def test_an_app_with_an_undeclared_endpoint_is_refused(resource: object) -> None:
    app = create_app(CLOSED_SETTINGS)
    with pytest.raises(UndeclaredRateLimit, match="must declare rate_limit"):
        app.add_route("/new_read", resource)
    assert _router(app).find("/new_read") is None


def test_a_declared_endpoint_is_added() -> None:
    app = create_app(CLOSED_SETTINGS)
    app.add_route("/new_read", _Declared())
    assert _router(app).find("/new_read") is not None
    assert _router(app).limit_class("/new_read") is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("198.51.100.1", "198.51.100.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("/run/api.sock", "/run/api.sock"),
    ],
)
def test_client_key_groups_ipv6_by_64(address: str, expected: str) -> None:
    assert client_key(address) == expected


def test_verdict_headers() -> None:
    assert Verdict(allowed=True, limit=5, remaining=3, reset_seconds=42).headers() == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "3",
        "RateLimit-Reset": "42",
    }


def test_binding_verdict_is_the_tightest() -> None:
    minute = Verdict(allowed=True, limit=60, remaining=50, reset_seconds=40)
    second = Verdict(allowed=True, limit=2, remaining=1, reset_seconds=1)
    assert _binding([minute, second]) == second
    refused_short = Verdict(allowed=False, limit=2, remaining=0, reset_seconds=1)
    refused_long = Verdict(allowed=False, limit=60, remaining=0, reset_seconds=30)
    assert _binding([refused_short, minute]) == refused_short
    assert _binding([refused_short, refused_long]) == refused_long


def test_verdicts_of_a_script_reply() -> None:
    budgets = (Budget(60, 60), Budget(2, 1))
    # Refused by the second budget: nothing taken; waits are milliseconds, rounded up.
    reply = [0, 1, 57, 1500, 0, 0, 400]
    assert verdicts_of(reply, budgets) == [
        Verdict(allowed=True, limit=60, remaining=57, reset_seconds=2),
        Verdict(allowed=False, limit=2, remaining=0, reset_seconds=1),
    ]
    # A zero wait (the budget is whole) still says at least one second.
    assert verdicts_of([1, 1, 60, 0], budgets[:1])[0].reset_seconds == 1


def test_unlimited_class_touches_nothing() -> None:
    limiter = InboundLimiter(
        "redis://127.0.0.1:9/0", {UPDATE: (), READ: budgets_of(RateLimit.parse("off"))}
    )
    assert limiter.hit(UPDATE, "198.51.100.1") is None
    assert limiter.hit(READ, "198.51.100.1") is None
    assert not limiter.limits(UPDATE)
    assert not limiter.limits(READ)


def test_redis_down_fails_open_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    limiter = InboundLimiter(
        "redis://127.0.0.1:9/0", {UPDATE: budgets_of(RateLimit.parse("1/minute"))}
    )
    with caplog.at_level(logging.WARNING, logger="api_shim.ratelimit"):
        for _ in range(3):
            assert limiter.hit(UPDATE, "198.51.100.1") is None
    warnings = [record for record in caplog.records if "not enforced" in record.getMessage()]
    assert len(warnings) == 1
