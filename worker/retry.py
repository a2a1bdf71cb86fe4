"""When to try again after a transient upstream failure: pure arithmetic, no I/O."""

from __future__ import annotations

import random

# Longest wait between two attempts, kept below the broker's visibility timeout
# (celeryconfig) because a refresh batch waits out its delay as a countdown message.
MAX_RETRY_DELAY_SECONDS = 30.0


def next_retry_at(
    now: float,
    attempt: int,
    backoff_seconds: float,
    retry_after: int | None,
    horizon_ends: float,
) -> float | None:
    """When attempt `attempt + 1` may start after a transient failure, or None when the
    horizon is over.

    Exponential backoff from `backoff_seconds`, capped, with half of each delay random
    ("equal jitter") so jobs that failed together do not come back together; never before
    osu!'s Retry-After, and never after the horizon, where the last attempt is made.
    """
    if now >= horizon_ends:
        return None
    ceiling = min(backoff_seconds * 2**attempt, MAX_RETRY_DELAY_SECONDS)
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        if now + retry_after > horizon_ends:
            return None
        delay = max(delay, float(retry_after))
    return min(now + delay, horizon_ends)
