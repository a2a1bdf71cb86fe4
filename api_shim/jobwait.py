"""Waiting for update jobs with neither a thread nor a Redis connection per waiter.

A worker publishes a job's id on `jobs.DONE_CHANNEL` in the same transaction that writes
the job's final state. Each API process keeps one subscription to that channel (one task
on its event loop, redis.asyncio) and wakes the requests waiting on that job: each waiter
is an asyncio future with its own deadline. Pub/sub delivers only to those subscribed at
that moment, so a message sent before the subscription took effect or while it was being
re-established is lost; hence a safety net: every `recheck_seconds` the listener reads the
status of every job someone is waiting on (one pipelined round trip) and wakes the waiters
of jobs that ended or vanished. A waiter therefore learns of its job's end within
`recheck_seconds` at worst, and never sleeps past its own deadline.

While Redis cannot be reached the listener wakes every waiter: each then reads its job,
which fails, and the request answers 503, as a BLPOP did when Redis went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import redis
import redis.asyncio as aioredis

from api_shim.blocking import BlockingPool
from osutrack import jobs

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0
RECONNECT_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 3.0
# Every socket read of the listener other than the wait for a message is a short reply.
SOCKET_TIMEOUT_SECONDS = 10.0
HEALTH_CHECK_SECONDS = 30
# Statuses read per round trip of the safety net: bounds one reply's size.
RECHECK_BATCH = 1000


class JobWaits:
    """This process's waiters on update jobs, woken by one subscription."""

    def __init__(
        self, redis_url: str, blocking: BlockingPool, recheck_seconds: float = RECHECK_SECONDS
    ) -> None:
        self._redis_url = redis_url
        self._blocking = blocking
        self._recheck_seconds = recheck_seconds
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Requests of this process waiting on a job now."""
        return sum(len(futures) for futures in self._waiters.values())

    async def wait_for_job(
        self, client: redis.Redis, job_id: str, timeout: float
    ) -> jobs.JobState | None:
        """`jobs.wait_for_job` without a thread: the job's state once it finished or
        failed, or after `timeout` seconds (then possibly still queued or running); None
        when the job is unknown. `client` reads the state, on a pool thread."""
        if timeout <= 0:
            return await self._blocking.run(jobs.read_job, client, job_id)
        # Watched before the first read: a job that ends in between still wakes this one.
        woken = self._watch(job_id)
        try:
            state = await self._blocking.run(jobs.read_job, client, job_id)
            if state is None or state.is_terminal:
                return state
            self._ensure_listener()
            await asyncio.wait((woken,), timeout=timeout)
        finally:
            self._unwatch(job_id, woken)
        return await self._blocking.run(jobs.read_job, client, job_id)

    def _watch(self, job_id: str) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # First wait of this process (granian forks after the app is built), or a new
            # loop: the previous one's listener and waiters went with it.
            self._loop = loop
            self._waiters = {}
            self._listener = None
        woken: asyncio.Future[None] = loop.create_future()
        self._waiters.setdefault(job_id, set()).add(woken)
        return woken

    def _ensure_listener(self) -> None:
        """Start the subscription when a request first has to wait; its first recheck
        covers a job that ended before it was subscribed."""
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    def _unwatch(self, job_id: str, woken: asyncio.Future[None]) -> None:
        futures = self._waiters.get(job_id)
        if futures is None:
            return
        futures.discard(woken)
        if not futures:
            del self._waiters[job_id]

    def _wake(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            for woken in self._waiters.pop(job_id, ()):
                if not woken.done():
                    woken.set_result(None)

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self._redis_url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            health_check_interval=HEALTH_CHECK_SECONDS,
        )

    async def _listen(self) -> None:
        """Subscribe, wake waiters on messages and on rechecks; reconnect when Redis fails.

        Connections are closed only after a failure: when the task is cancelled, its loop
        is going away and the connections with it, and awaiting their close then could
        keep the loop from ever finishing.
        """
        while True:
            client = self._client()
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await self._serve(client, pubsub)
            except (redis.RedisError, OSError) as err:
                log.warning("Job completion channel lost, reconnecting: %s", err)
            except Exception:
                # A bug here must not leave every later waiter to sleep out its deadline.
                log.exception("Job completion listener failed, restarting it")
            await _close(pubsub, client)
            await self._recheck_or_wake_all()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _serve(self, client: aioredis.Redis, pubsub: aioredis.client.PubSub) -> None:
        loop = asyncio.get_running_loop()
        await pubsub.subscribe(jobs.DONE_CHANNEL)
        # Jobs that ended before the subscription took effect were announced to nobody
        # here.
        await self._recheck(client)
        next_check = loop.time() + self._recheck_seconds
        while True:
            message = await pubsub.get_message(timeout=max(0.0, next_check - loop.time()))
            if message is not None and message["type"] == "message":
                self._wake((message["data"],))
            if loop.time() >= next_check:
                await self._recheck(client)
                next_check = loop.time() + self._recheck_seconds

    async def _recheck_or_wake_all(self) -> None:
        """Recheck on a new connection; when Redis cannot answer, wake every waiter: each
        then reads its job itself, which fails, and answers 503 while Redis is away."""
        client = self._client()
        try:
            await self._recheck(client)
        except (redis.RedisError, OSError):
            self._wake(list(self._waiters))
        await _close(None, client)

    async def _recheck(self, client: aioredis.Redis) -> None:
        """Wake the waiters of every watched job that ended or whose state is gone."""
        job_ids = list(self._waiters)
        for start in range(0, len(job_ids), RECHECK_BATCH):
            batch = job_ids[start : start + RECHECK_BATCH]
            pipe = client.pipeline(transaction=False)
            for job_id in batch:
                pipe.hget(jobs.job_key(job_id), "status")
            statuses = await pipe.execute()
            self._wake(
                job_id
                for job_id, status in zip(batch, statuses, strict=True)
                if status is None or status in jobs.TERMINAL_STATUSES
            )


async def _close(pubsub: aioredis.client.PubSub | None, client: aioredis.Redis) -> None:
    """Close both, giving up on a connection that does not close in time."""
    with contextlib.suppress(redis.RedisError, OSError, TimeoutError):
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            if pubsub is not None:
                await pubsub.aclose()
            await client.aclose()
