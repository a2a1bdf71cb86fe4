"""Read-your-writes across streaming replicas: where in the WAL each player was last written.

A worker that finished an update records, before it reports the job finished, the
primary's WAL position after the commit under the player's id in Redis. A read of that
player may then use a replica only when the replica has replayed at least that far
(`api_shim.replicas`); any other read of a marked player goes to the primary. A client
learns that its update finished only after the mark is there, so its next read sees the
update whichever API process or machine answers it. The mark outlives the lag bound by a
margin: past it, every replica still serving reads has replayed the update.
"""

from __future__ import annotations

import redis

KEY_PREFIX = "osutrack:written"
# Beyond REPLICA_MAX_LAG_SECONDS: a replica is checked about once a second, so one that
# serves reads is never further behind than its bound plus that second.
TTL_MARGIN_SECONDS = 60

# The position after every record inserted so far, ours included (with
# synchronous_commit=off, the written or flushed position may still be before our commit).
CURRENT_POSITION_SQL = "SELECT pg_current_wal_insert_lsn()::text"

# Sets the mark unless it already holds a later position (two updates of one player in
# different modes may report in either order); the later mark lives on for the full TTL.
_RAISE_MARK = """
local current = redis.call('GET', KEYS[1])
if not current or current < ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def parse_lsn(text: str) -> int:
    """The byte position of a Postgres LSN such as "16/B374D848"."""
    high, sep, low = text.partition("/")
    if not sep:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def _stored(position: int) -> str:
    # Fixed-width hex, so Redis compares marks as strings in position order.
    return f"{position:016x}"


def mark_key(user_id: int) -> str:
    return f"{KEY_PREFIX}:{user_id}"


def ttl_seconds(replica_max_lag_seconds: float) -> int:
    """How long a mark is kept: past it, no serving replica can be behind the write."""
    return int(replica_max_lag_seconds) + TTL_MARGIN_SECONDS


def record(client: redis.Redis, user_id: int, lsn: str, ttl: int) -> None:
    """Note that `user_id` was written up to WAL position `lsn` (text, as Postgres prints
    it); raises `redis.RedisError` when Redis cannot take it."""
    client.eval(_RAISE_MARK, 1, mark_key(user_id), _stored(parse_lsn(lsn)), ttl)


def written_up_to(client: redis.Redis, user_id: int) -> int | None:
    """The WAL position a replica must have replayed to show `user_id`'s latest update,
    or None when no update is recent enough to matter."""
    value: str | bytes | None = client.get(mark_key(user_id))  # type: ignore[assignment]
    if value is None:
        return None
    return int(value, 16)
