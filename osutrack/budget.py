"""The upstream request budget's shape in Redis, shared by the workers and the API shim.

Workers take slots from it (`worker.upstream.limiter`); the update queue (`osutrack.queue`)
reads it to release jobs only as fast as the budget lets them run, and the shim reads it to
estimate when a queued job will start.
"""

from __future__ import annotations

from dataclasses import dataclass

from osutrack.settings import RateLimit

BUDGET_KEY_PREFIX = "osutrack:osu:budget"
COOLDOWN_KEY = "osutrack:osu:cooldown"
WAITERS_KEY = "osutrack:osu:interactive_waiters"
# A waiter re-registers on every poll; one that stopped (its process died) stops counting
# after this long, so a crash can never starve the refresh for good.
WAITER_STALE_SECONDS = 5.0
# A slot frees this much later than its window says (3% of the period, at most 100 ms):
# between the stamp and osu! receiving the request lie a Redis reply, building the request
# and the network, a few ms usually and tens of ms on a loaded machine (bench/README.md).
# Without it, 11 requests of a 10/second budget were seen arriving within 0.98 s.
SEND_GUARD_SHARE = 0.03
MAX_SEND_GUARD_MS = 100
# An update asks osu! for the player, then for the player's best scores.
REQUESTS_PER_UPDATE = 2


@dataclass(frozen=True)
class RateWindow:
    """One limit of the budget: at most `limit` requests in any `period_ms` (the limit's
    period plus the send guard)."""

    key: str
    limit: int
    period_ms: int


def windows_of(rate_limit: RateLimit, name: str, share: float = 1.0) -> list[RateWindow]:
    """The windows of a rate limit, scaled by `share`; none when it is off."""
    windows = []
    for rate in rate_limit.rates:
        period_ms = rate.period_seconds * 1000
        guard_ms = min(int(period_ms * SEND_GUARD_SHARE), MAX_SEND_GUARD_MS)
        windows.append(
            RateWindow(
                key=f"{BUDGET_KEY_PREFIX}:{name}:{rate.amount}/{rate.period_seconds}s",
                limit=max(1, int(rate.amount * share)),
                period_ms=period_ms + guard_ms,
            )
        )
    return windows


def fleet_windows(rate_limit: RateLimit) -> list[RateWindow]:
    """The windows every upstream request takes a slot from."""
    return windows_of(rate_limit, "all")


def sustained_rate(windows: list[RateWindow]) -> float | None:
    """Requests per second the budget allows over time (its tightest window); None when
    there is no budget."""
    if not windows:
        return None
    return min(window.limit * 1000 / window.period_ms for window in windows)
