"""Per-client request budgets (RATE_LIMIT_UPDATE, RATE_LIMIT_READ), shared fleet-wide in Redis.

POST /update has its own budget and the read endpoints share another, as in osu!track; the
operator endpoints (/health, /ping, /metrics, /docs, /openapi.json) have none. Every
response of a limited endpoint carries `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset`; a refused request is a 429 with `Retry-After`. A read's budget is taken
before anything else looks at the request, so reads that fail validation count too; an
update's only once it is a valid POST /update (`InboundRateLimit`).

Each resource declares its class as a `rate_limit` attribute (UPDATE, READ or UNLIMITED),
and the middleware reads it from the resource the request is routed to. The app's router
(`DeclaredRateLimitRouter`) refuses a route whose resource declares none, so an endpoint
cannot go unthrottled because someone forgot it.

Each budget is a sliding window counter: the count of the current fixed window plus the
previous window's count weighted by the share of it still inside the sliding window. Unlike
a fixed window it does not let a client spend two windows' worth across a boundary (10
updates in a few seconds under 5/minute), and it keeps two integers per client, not one
entry per request. Every budget of a request is checked and taken in one Lua script
(`SLIDING_WINDOW_SCRIPT`, run with EVALSHA): one Redis round trip per request, however
many budgets ("60/minute;2/second") apply, and atomic across all API processes. A request
that one budget refuses takes nothing from the others.

When Redis cannot be reached the limiter lets requests through (fail open) and logs a
warning: refusing everything would turn a Redis outage into a full outage of the reads,
which need only Postgres.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import falcon
import redis
from falcon.routing import CompiledRouter

from api_shim.client_ip import IPNetwork, client_ip
from api_shim.errors import ApiError
from osutrack.settings import RateLimit, Settings

log = logging.getLogger(__name__)

UPDATE = "update"
READ = "read"
UNLIMITED = "none"
RATE_LIMIT_CLASSES = frozenset({UPDATE, READ, UNLIMITED})

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
# Client addresses (and X-Forwarded-For chains) recently seen, with the identity each one
# resolves to: parsing addresses costs more per request than the rest of the check.
CLIENT_CACHE_SIZE = 4096

# KEYS: one hash per budget (fields w = current window number, c = its count, p = the
# previous window's count). ARGV: amount and period in milliseconds of each budget, in the
# order of KEYS. Windows are numbered from Redis's own clock, so every API process agrees.
# Returns 1 or 0 (taken or refused), then per budget: 1 or 0 (it had room), requests
# remaining, and milliseconds until one more request fits (`until_at_most`).
SLIDING_WINDOW_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local budgets = {}
local taken = 1
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local window = math.floor(now / period)
  local stored = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
  local stored_window = tonumber(stored[1])
  local current, previous = 0, 0
  if stored_window == window then
    current = tonumber(stored[2]) or 0
    previous = tonumber(stored[3]) or 0
  elseif stored_window == window - 1 then
    previous = tonumber(stored[2]) or 0
  end
  local left = period - (now - window * period)
  local fits = previous * left / period + current + 1 <= limit
  if not fits then
    taken = 0
  end
  budgets[i] = {limit, period, window, left, current, previous, fits}
end

-- Milliseconds until the weighted count is at most `target`, if no request comes: the
-- previous window's share fades until the current window ends, then the current one's.
local function until_at_most(target, period, left, current, previous)
  if target < 0 then
    return 0
  end
  if previous * left / period + current <= target then
    return 0
  end
  if current <= target then
    return left - (target - current) * period / previous
  end
  return left + period - target * period / current
end

local reply = {taken}
for i = 1, #KEYS do
  local limit, period, window, left, current, previous, fits = unpack(budgets[i])
  if taken == 1 then
    current = current + 1
    redis.call('HSET', KEYS[i], 'w', window, 'c', current, 'p', previous)
    redis.call('PEXPIRE', KEYS[i], 2 * period)
  end
  local remaining = math.max(0, math.floor(limit - (previous * left / period + current)))
  local wait = until_at_most(limit - remaining - 1, period, left, current, previous)
  reply[#reply + 1] = fits and 1 or 0
  reply[#reply + 1] = remaining
  reply[#reply + 1] = math.ceil(wait)
end
return reply
"""


@dataclass(frozen=True)
class Budget:
    """`amount` requests per `period_seconds`, as in "5/minute"."""

    amount: int
    period_seconds: int

    @property
    def label(self) -> str:
        return f"{self.amount}/{self.period_seconds}s"


class UndeclaredRateLimit(TypeError):
    """A route's resource does not declare its rate-limit class."""


def budgets_of(rate_limit: RateLimit) -> tuple[Budget, ...]:
    """The budgets of a rate-limit setting; none when it is off."""
    return tuple(Budget(rate.amount, rate.period_seconds) for rate in rate_limit.rates)


def declared_rate_limit(resource: object) -> str:
    """The `rate_limit` class `resource` declares; `UndeclaredRateLimit` when it has none."""
    declared = getattr(resource, "rate_limit", None)
    if declared not in RATE_LIMIT_CLASSES:
        raise UndeclaredRateLimit(
            f"{type(resource).__name__} must declare rate_limit as one of "
            f"{sorted(RATE_LIMIT_CLASSES)}, not {declared!r}"
        )
    return str(declared)


class DeclaredRateLimitRouter(CompiledRouter):
    """Falcon's router, refusing every resource without a rate-limit declaration."""

    def add_route(self, uri_template: str, resource: object, **kwargs: Any) -> None:
        declared_rate_limit(resource)
        super().add_route(uri_template, resource, **kwargs)

    def limit_class(self, path: str) -> str | None:
        """UPDATE or READ for a limited path, None for unlimited and unknown paths."""
        found = self.find(path)
        if found is None:
            return None
        declared = declared_rate_limit(found[0])
        return None if declared == UNLIMITED else declared


@functools.lru_cache(maxsize=CLIENT_CACHE_SIZE)
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
    `reset_seconds` is the whole number of seconds, at least 1, until that budget has room
    for one more request than `remaining`.
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


def verdicts_of(reply: Sequence[int], budgets: Sequence[Budget]) -> list[Verdict]:
    """The per-budget verdicts of one `SLIDING_WINDOW_SCRIPT` reply."""
    verdicts = []
    for index, budget in enumerate(budgets):
        fits, remaining, wait_ms = reply[1 + 3 * index : 4 + 3 * index]
        reset = max(1, math.ceil(int(wait_ms) / 1000))
        verdicts.append(Verdict(bool(fits), budget.amount, int(remaining), reset))
    return verdicts


class _ProcessRedis:
    """A Redis client and the script's handle, built in the process that uses them."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(
            redis_url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        )
        self.script = self.client.register_script(SLIDING_WINDOW_SCRIPT)


class InboundLimiter:
    """Takes requests from per-client budgets kept in Redis under `osutrack:inbound`."""

    def __init__(self, redis_url: str, limits: Mapping[str, Sequence[Budget]]) -> None:
        self._redis_url = redis_url
        self._budgets = {kind: tuple(budgets) for kind, budgets in limits.items() if budgets}
        self._args = {
            kind: [value for b in budgets for value in (b.amount, b.period_seconds * 1000)]
            for kind, budgets in self._budgets.items()
        }
        self._redis: _ProcessRedis | None = None
        self._last_warning = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings) -> InboundLimiter:
        return cls(
            settings.redis_url,
            {
                UPDATE: budgets_of(settings.rate_limit_update),
                READ: budgets_of(settings.rate_limit_read),
            },
        )

    def limits(self, kind: str) -> bool:
        """True when requests of class `kind` have a budget."""
        return kind in self._budgets

    def start(self) -> None:
        """Build this process's Redis client as the process starts serving (granian
        forks its workers after the app is built)."""
        self._process_redis()

    def _process_redis(self) -> _ProcessRedis:
        current = self._redis
        if current is None:
            # Built on first use too, for a server that sends no lifespan startup.
            current = self._redis = _ProcessRedis(self._redis_url)
        return current

    def hit(self, kind: str, client: str) -> Verdict | None:
        """Take one request of class `kind` from `client`'s budget.

        None when that class is not limited, or when Redis cannot be reached (the request
        is let through and a warning logged).
        """
        budgets = self._budgets.get(kind)
        if budgets is None:
            return None
        identity = client_key(client)
        keys = [f"{KEY_PREFIX}:{kind}:{identity}:{budget.label}" for budget in budgets]
        try:
            handle = self._process_redis()
            reply = handle.script(keys=keys, args=self._args[kind], client=handle.client)
        except redis.RedisError as err:
            self._warn(err)
            return None
        return _binding(verdicts_of(reply, budgets))

    def _warn(self, err: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL_SECONDS:
            self._last_warning = now
            log.warning("Inbound rate limits not enforced: Redis unavailable: %s", err)


class InboundRateLimit:
    """Falcon middleware: the read budget before every other guard, headers after.

    Registered first, so a read that a later guard or the validation refuses has already
    been counted: a flood of bad reads is still a flood. POST /update is different: it
    uses up RATE_LIMIT_UPDATE only once it passed validation (`take_update`), so a client
    that sent a malformed update, a HEAD, an OPTIONS or a GET (405) keeps its budget for
    the updates it means.
    """

    def __init__(
        self,
        limiter: InboundLimiter,
        trusted_proxies: Sequence[IPNetwork],
        router: DeclaredRateLimitRouter,
    ) -> None:
        self._limiter = limiter
        self._router = router
        trusted = tuple(trusted_proxies)
        # Cached per middleware, since the answer depends on its trusted proxies.
        self._client_of = functools.lru_cache(maxsize=CLIENT_CACHE_SIZE)(
            lambda peer, forwarded_for: client_ip(peer, forwarded_for, trusted)
        )

    async def process_startup(self, scope: Any, event: Any) -> None:
        self._limiter.start()

    async def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Falcon routes only after every middleware's process_request, so the routed
        # resource is looked up here: the guards after this one never refuse an uncounted
        # read.
        if self._limiter.limits(READ) and self._router.limit_class(req.path) == READ:
            self._take(req, READ)

    def take_update(self, req: falcon.Request) -> None:
        """Use up one POST /update of the client's budget; 429 when it is spent."""
        self._take(req, UPDATE)

    def _take(self, req: falcon.Request, kind: str) -> None:
        # An unlimited class needs no client address, whose parsing is most of the cost.
        if not self._limiter.limits(kind):
            return
        client = self._client_of(req.remote_addr, req.get_header("X-Forwarded-For"))
        verdict = self._limiter.hit(kind, client)
        req.context.rate_limit = verdict
        if verdict is not None and not verdict.allowed:
            raise ApiError(
                429,
                f"Too many requests; try again in {verdict.reset_seconds} seconds",
                retry_after=verdict.reset_seconds,
            )

    async def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        verdict: Verdict | None = getattr(req.context, "rate_limit", None)
        if verdict is not None:
            resp.set_headers(verdict.headers())
