"""Per-client request budgets (RATE_LIMIT_UPDATE, RATE_LIMIT_READ), shared fleet-wide in Redis.

POST /update has its own budget and the read endpoints share another, as in osu!track; the
operator endpoints (/health, /ping, /metrics, /docs, /openapi.json) have none. Every
response of a limited endpoint carries `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset`; a refused request is a 429 with `Retry-After`. The budget is taken
before anything else looks at the request, so requests that fail validation count too: a
flood of bad requests is still a flood.

When Redis cannot be reached the limiter lets requests through (fail open) and logs a
warning: refusing everything would turn a Redis outage into a full outage of the reads,
which need only Postgres.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import falcon
import redis
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from api_shim.client_ip import IPNetwork, client_ip
from api_shim.errors import ApiError
from osutrack.settings import Settings

log = logging.getLogger(__name__)

UPDATE = "update"
READ = "read"

UPDATE_PATHS = frozenset({"/update"})
READ_PATHS = frozenset({"/stats_history", "/hiscores", "/peak", "/bestplays"})
READ_PREFIXES = ("/jobs/",)

KEY_PREFIX = "osutrack:inbound"
# A limiter that cannot answer quickly is treated as down (fail open), so a stalled Redis
# adds well under a second to a request instead of the endpoint's own longer timeouts.
REDIS_CONNECT_TIMEOUT_SECONDS = 0.5
REDIS_SOCKET_TIMEOUT_SECONDS = 1.0
# While Redis is down every request would log; once a minute per process says it enough.
WARNING_INTERVAL_SECONDS = 60.0
# An IPv6 client usually holds a whole /64, so counting single addresses would give it
# 2^64 budgets; its /64 is the identity instead.
IPV6_CLIENT_PREFIX = 64


def limit_class(path: str) -> str | None:
    """UPDATE or READ for a limited path, None for operator and unknown paths."""
    if path in UPDATE_PATHS:
        return UPDATE
    if path in READ_PATHS or path.startswith(READ_PREFIXES):
        return READ
    return None


def parse_limit(text: str) -> tuple[RateLimitItem, ...]:
    """A setting like "5/minute" or "60/minute;2/second" as items; "off" or "" is none."""
    if text.strip().lower() in ("", "off"):
        return ()
    return tuple(parse_many(text))


def client_key(address: str) -> str:
    """The identity a budget is kept under: the address, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_CLIENT_PREFIX}", strict=False))
    return address


@dataclass(frozen=True)
class Verdict:
    """The outcome of taking one request from a client's budget.

    With several limits (e.g. "60/minute;2/second") it describes the binding one: a limit
    that refused (the longest wait), otherwise the one with the fewest requests left.
    `reset_seconds` is the whole number of seconds, at least 1, until that window lets
    another request through.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """The RateLimit-* headers of the response."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


def _binding(verdicts: Sequence[Verdict]) -> Verdict:
    refused = [verdict for verdict in verdicts if not verdict.allowed]
    if refused:
        return max(refused, key=lambda verdict: verdict.reset_seconds)
    return min(verdicts, key=lambda verdict: (verdict.remaining, -verdict.reset_seconds))


class InboundLimiter:
    """Takes requests from per-client budgets kept in Redis under `osutrack:inbound`."""

    def __init__(self, redis_url: str, limits: Mapping[str, Sequence[RateLimitItem]]) -> None:
        self._redis_url = redis_url
        self._limits = {kind: tuple(items) for kind, items in limits.items()}
        self._lock = threading.Lock()
        self._pid = 0
        self._strategy: SlidingWindowCounterRateLimiter | None = None
        self._last_warning = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings) -> InboundLimiter:
        return cls(
            settings.redis_url,
            {
                UPDATE: parse_limit(settings.rate_limit_update),
                READ: parse_limit(settings.rate_limit_read),
            },
        )

    def _limiter(self) -> SlidingWindowCounterRateLimiter:
        # Built on first use in each process, like the other Redis clients: granian forks
        # its workers after the app is created. The sliding window counter keeps two
        # counters per client and costs one small script per check, yet unlike a fixed
        # window it does not let a client spend two windows' worth across a boundary
        # (10 updates in a few seconds under 5/minute).
        with self._lock:
            if self._strategy is None or self._pid != os.getpid():
                storage = RedisStorage(
                    self._redis_url,
                    key_prefix=KEY_PREFIX,
                    socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
                    socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
                )
                self._strategy = SlidingWindowCounterRateLimiter(storage)
                self._pid = os.getpid()
            return self._strategy

    def hit(self, kind: str, client: str) -> Verdict | None:
        """Take one request of class `kind` from `client`'s budget.

        None when that class is not limited, or when Redis cannot be reached (the request
        is let through and a warning logged).
        """
        items = self._limits.get(kind, ())
        if not items:
            return None
        key = client_key(client)
        try:
            limiter = self._limiter()
            verdicts = []
            for item in items:
                allowed = limiter.hit(item, kind, key)
                stats = limiter.get_window_stats(item, kind, key)
                reset = max(1, math.ceil(stats.reset_time - time.time()))
                verdicts.append(Verdict(allowed, item.amount, stats.remaining, reset))
        except redis.RedisError as err:
            self._warn(err)
            return None
        return _binding(verdicts)

    def _warn(self, err: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL_SECONDS:
            self._last_warning = now
            log.warning("Inbound rate limits not enforced: Redis unavailable: %s", err)


class InboundRateLimit:
    """Falcon middleware: the budget check before every other guard, headers after.

    Registered first, so a request that a later guard or the validation refuses has
    already been counted.
    """

    def __init__(self, limiter: InboundLimiter, trusted_proxies: Sequence[IPNetwork]) -> None:
        self._limiter = limiter
        self._trusted = tuple(trusted_proxies)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        kind = limit_class(req.path)
        if kind is None:
            return
        client = client_ip(req.remote_addr, req.get_header("X-Forwarded-For"), self._trusted)
        verdict = self._limiter.hit(kind, client)
        req.context.rate_limit = verdict
        if verdict is not None and not verdict.allowed:
            raise ApiError(
                429,
                f"Too many requests; try again in {verdict.reset_seconds} seconds",
                retry_after=verdict.reset_seconds,
            )

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        verdict: Verdict | None = getattr(req.context, "rate_limit", None)
        if verdict is not None:
            resp.set_headers(verdict.headers())
