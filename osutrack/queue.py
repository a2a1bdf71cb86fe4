"""The update queue: accepted jobs wait in Redis and are released at the budget's pace.

A worker process must never sit waiting for an upstream slot (it would hold a process,
and a message, for as long as the budget is exhausted), and a missing slot must never fail
a job. So a new job's Celery message does not go straight to the `updates` queue that the
workers consume: it goes to the `updates.waiting` list, in acceptance order, and is moved
to `updates` only when the fleet-wide budget has room for it (`release`). A job that meets
a transient upstream failure is sent again to `updates.retry` with the time of its next
attempt in its job hash; `release` moves it back first (it was accepted earlier than
anything still waiting) once that time has come.

Every move is one Lua script on Redis' clock, so a message is always in exactly one list
(nothing lost, nothing doubled, however many processes release at once), and a message
that kombu hands back after a worker died returns to the list it was released from. Each
move reserves the job's upstream requests until its task starts (the `dispatched` set), so
concurrent releases cannot hand out the same free slots twice.

`release` runs where something may have freed room: right after the shim queues a job,
after every update task, and on a short timer in every worker (the budget frees with
time). `osutrack:updates:order` holds every queued job by acceptance number, which gives
`/jobs/{id}` its position; `budget_free_at` its estimated start.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis

from osutrack.budget import (
    COOLDOWN_KEY,
    REQUESTS_PER_UPDATE,
    WAITER_STALE_SECONDS,
    WAITERS_KEY,
    RateWindow,
    sustained_rate,
)
from osutrack.tasknames import RETRY_QUEUE, UPDATE_QUEUE, WAITING_QUEUE

ORDER_KEY = "osutrack:updates:order"
SEQ_KEY = "osutrack:updates:seq"
DISPATCHED_KEY = "osutrack:updates:dispatched"
FREE_AT_KEY = "osutrack:updates:budget_free_at"
# A copy of each released message until its job starts, and when it was released.
RELEASED_KEY = "osutrack:updates:released"
RELEASED_AT_KEY = "osutrack:updates:released_at"
# Kombu's Redis transport keeps the messages workers hold, unacknowledged, in this hash.
KOMBU_UNACKED_KEY = "unacked"
JOB_KEY_PREFIX = "osutrack:job:"
# The member of the budget's waiter set that stands for every queued job: while it is
# fresh, the scheduled refresh leaves the budget to interactive updates.
QUEUE_WAITER = "update-queue"

# Released messages a worker has not picked up yet, at most: enough to keep every update
# process busy, few enough that a released job starts while its reserved slots are fresh.
MAX_RELEASED_AHEAD = 32
# A reservation stops counting after this long even if its task never started (its worker
# died before taking the message, which kombu will hand back).
RESERVATION_SECONDS = 30.0
# A released job not started after this long is looked for in the `updates` queue and
# among the messages workers hold; not found, it is queued again from its copy.
LOST_AFTER_SECONDS = 30.0
# How many retrying jobs one release looks at, and how many messages it moves at most.
RETRY_SCAN = 200
MAX_RELEASE_BATCH = 64
# How often every worker releases what the budget freed.
RELEASE_INTERVAL_SECONDS = 0.25

# KEYS: 1 waiting list, 2 retry list, 3 updates list, 4 dispatched set, 5 waiters set,
# 6 free-at key, 7 cooldown key, 8 released copies (hash), 9 released-at set, 10 kombu's
# unacked hash, then the budget's window keys.
# ARGV: 1 max batch, 2 max released ahead, 3 requests per job, 4 reservation ms,
# 5 retry scan, 6 job key prefix, 7 waiter member, 8 waiter ttl ms, 9 ms after which a
# released job that never started is looked for, then per window its limit and period in
# ms. Returns the number of messages moved.
_RELEASE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local per_job = tonumber(ARGV[3])
local prefix = ARGV[6]

local function job_of(raw)
  local ok, message = pcall(cjson.decode, raw)
  if ok and type(message) == 'table' and type(message.headers) == 'table' then
    return message.headers.id
  end
  return nil
end

-- A released job that has not started for this long: its message is either still queued
-- or held by a live worker, or it was lost (kombu's Redis transport loses a message that
-- a worker popped as it was killed, before noting it as unacknowledged). A lost one goes
-- back to the front of the line from its copy.
local overdue = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', now - tonumber(ARGV[9]))
if #overdue > 0 then
  local held = {}
  for _, raw in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
    local id = job_of(raw)
    if id then held[id] = true end
  end
  for _, entry in ipairs(redis.call('HVALS', KEYS[10])) do
    local ok, unacked = pcall(cjson.decode, entry)
    if ok and type(unacked) == 'table' and type(unacked[1]) == 'table'
        and type(unacked[1].headers) == 'table' and unacked[1].headers.id then
      held[unacked[1].headers.id] = true
    end
  end
  for _, id in ipairs(overdue) do
    if held[id] then
      redis.call('ZADD', KEYS[9], now, id)
    else
      local raw = redis.call('HGET', KEYS[8], id)
      local status = redis.call('HGET', prefix .. id, 'status')
      if raw and (status == 'queued' or status == 'running') then
        redis.call('RPUSH', KEYS[1], raw)
      end
      redis.call('ZREM', KEYS[9], id)
      redis.call('HDEL', KEYS[8], id)
    end
  end
end

redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[4]))
local reserved = redis.call('ZCARD', KEYS[4]) * per_job

local free = math.huge
local free_at = now
local cooldown = tonumber(redis.call('GET', KEYS[7]) or '0')
if cooldown > now then
  free = 0
  free_at = cooldown
end
for i = 11, #KEYS do
  local limit = tonumber(ARGV[10 + (i - 11) * 2])
  local period = tonumber(ARGV[11 + (i - 11) * 2])
  local used = redis.call('ZCOUNT', KEYS[i], now - period, '+inf')
  local room = limit - used - reserved
  if room < free then free = room end
  if room < 1 then
    -- The slot that frees first in this window: its oldest in-window stamp expiring.
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[i], now - period, '+inf',
                              'WITHSCORES', 'LIMIT', 0, 1)
    local at = now + period
    if oldest[2] then at = tonumber(oldest[2]) + period end
    if at > free_at then free_at = at end
  end
end

local ahead = tonumber(ARGV[2]) - redis.call('LLEN', KEYS[3])
local budget = tonumber(ARGV[1])
local moved = 0

local function can_move()
  return moved < budget and ahead > 0 and free >= 1
end

local function released(raw)
  local id = job_of(raw)
  if id then
    redis.call('ZADD', KEYS[4], now, id)
    redis.call('HSET', KEYS[8], id, raw)
    redis.call('ZADD', KEYS[9], now, id)
  end
  moved = moved + 1
  ahead = ahead - 1
  free = free - per_job
end

-- Retrying jobs whose next attempt is due go first: they were accepted before anything
-- still waiting.
if can_move() then
  local retrying = redis.call('LRANGE', KEYS[2], -tonumber(ARGV[5]), -1)
  for i = #retrying, 1, -1 do
    if not can_move() then break end
    local raw = retrying[i]
    local id = job_of(raw)
    local due = 0
    if id then due = tonumber(redis.call('HGET', prefix .. id, 'not_before') or '0') end
    if due <= now then
      redis.call('LREM', KEYS[2], 1, raw)
      redis.call('LPUSH', KEYS[3], raw)
      released(raw)
    end
  end
end
while can_move() do
  local raw = redis.call('RPOPLPUSH', KEYS[1], KEYS[3])
  if not raw then break end
  released(raw)
end

local queued = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])
if queued + redis.call('ZCARD', KEYS[4]) > 0 then
  redis.call('ZADD', KEYS[5], now, ARGV[7])
  redis.call('PEXPIRE', KEYS[5], tonumber(ARGV[8]))
else
  redis.call('ZREM', KEYS[5], ARGV[7])
end
redis.call('SET', KEYS[6], free_at, 'PX', 3600000)
return moved
"""


class UpdateQueue:
    """Releases queued update jobs as the upstream budget allows (see the module doc)."""

    def __init__(self, client: redis.Redis, windows: list[RateWindow]) -> None:
        self._client = client
        self._windows = windows
        self._release = client.register_script(_RELEASE)

    def release(self) -> int:
        """Move every job that may run now to the `updates` queue; return how many."""
        keys = [
            WAITING_QUEUE,
            RETRY_QUEUE,
            UPDATE_QUEUE,
            DISPATCHED_KEY,
            WAITERS_KEY,
            FREE_AT_KEY,
            COOLDOWN_KEY,
            RELEASED_KEY,
            RELEASED_AT_KEY,
            KOMBU_UNACKED_KEY,
        ] + [window.key for window in self._windows]
        args: list[str | int | float] = [
            MAX_RELEASE_BATCH,
            MAX_RELEASED_AHEAD,
            REQUESTS_PER_UPDATE,
            int(RESERVATION_SECONDS * 1000),
            RETRY_SCAN,
            JOB_KEY_PREFIX,
            QUEUE_WAITER,
            int(WAITER_STALE_SECONDS * 4000),
            int(LOST_AFTER_SECONDS * 1000),
        ]
        for window in self._windows:
            args += [window.limit, window.period_ms]
        return int(self._release(keys=keys, args=args))


def next_sequence(client: redis.Redis) -> int:
    """A new acceptance number (strictly increasing across every API process)."""
    return int(client.incr(SEQ_KEY))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Place:
    """Where a queued job stands: `position` jobs are ahead of it (0 = next), and it is
    expected to start at `eta` (Unix seconds)."""

    position: int
    eta: float


def place_of(client: redis.Redis, job_id: str, windows: list[RateWindow]) -> Place:
    """The job's place in the queue and its estimated start.

    The estimate assumes every job ahead makes its two requests at the budget's sustained
    rate, starting when the budget next has room (or when the job's own retry is due).
    """
    pipe = client.pipeline(transaction=False)
    pipe.zrank(ORDER_KEY, job_id)
    pipe.get(FREE_AT_KEY)
    pipe.hget(JOB_KEY_PREFIX + job_id, "not_before")
    rank, free_at_raw, not_before_raw = pipe.execute()
    now = time.time()
    position = int(rank) if rank is not None else 0
    start = max(now, float(free_at_raw or 0) / 1000, float(not_before_raw or 0) / 1000)
    rate = sustained_rate(windows)
    if rate is not None:
        start += position * REQUESTS_PER_UPDATE / rate
    return Place(position, start)


def retry_after_seconds(place: Place) -> int:
    """Whole seconds until the estimated start, at least 1 (for a Retry-After header)."""
    return max(1, math.ceil(place.eta - time.time()))


def depth(client: redis.Redis) -> int:
    """Update jobs queued and not yet started (released or not)."""
    pipe = client.pipeline(transaction=False)
    pipe.llen(UPDATE_QUEUE)
    pipe.llen(WAITING_QUEUE)
    pipe.llen(RETRY_QUEUE)
    return sum(int(count) for count in pipe.execute())
