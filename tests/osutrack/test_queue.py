"""The update queue's release (`osutrack.queue`) against a real Redis, with the messages the
shim really sends. No worker consumes this Redis database: what a release moves stays in
the `updates` list."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from api_shim.broker import Broker
from osutrack import jobs, queue, tasknames
from osutrack.budget import COOLDOWN_KEY, WAITERS_KEY, fleet_windows
from osutrack.settings import RateLimit, load_settings

CLOSED_DATABASE_URL = "postgresql+psycopg2://x@127.0.0.1:9/x"

MakeBroker = Callable[[str], Broker]


# The session's Celery worker consumes database 0; these tests keep to one of their own.
QUEUE_TEST_DB = 9


@pytest.fixture
def queue_redis(redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    """A database of the session Redis that no worker consumes, empty before and after."""
    url = f"{redis_url.rsplit('/', 1)[0]}/{QUEUE_TEST_DB}"
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    yield url, client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(queue_redis: tuple[str, redis.Redis]) -> redis.Redis:
    return queue_redis[1]


@pytest.fixture
def make_broker(queue_redis: tuple[str, redis.Redis]) -> Iterator[MakeBroker]:
    """`make_broker(rate)`: the shim's broker with OSU_API_RATE_LIMIT=rate."""
    url = queue_redis[0]
    made: list[Broker] = []

    def build(rate: str) -> Broker:
        settings = load_settings(
            {"REDIS_URL": url, "DATABASE_URL": CLOSED_DATABASE_URL, "OSU_API_RATE_LIMIT": rate}
        )
        broker = Broker(settings)
        made.append(broker)
        return broker

    yield build
    for broker in made:
        broker.celery.close()


def _accept(broker: Broker, user: int) -> str:
    """What POST /update does for a new job, without releasing it."""
    job_id, created = jobs.create_or_join_job(broker.redis, user, 0, 3600)
    assert created
    broker.send_update(job_id, user, 0)
    return job_id


def _released(client: redis.Redis) -> list[str]:
    """Job ids in the `updates` list, next-to-run first (kombu pops from the right)."""
    raw: list[str] = client.lrange(tasknames.UPDATE_QUEUE, 0, -1)  # type: ignore[assignment]
    return [json.loads(message)["headers"]["id"] for message in reversed(raw)]


def _start(client: redis.Redis, job_id: str, attempt: int = 0) -> jobs.Start:
    """What a worker does when it takes the job's message."""
    return jobs.start_job(client, job_id, attempt, f"test:deliveries:{job_id}:{attempt}", 60)


def test_without_a_budget_jobs_are_released_in_acceptance_order_up_to_the_cap(
    make_broker: MakeBroker, redis_client: redis.Redis
) -> None:
    broker = make_broker("off")
    accepted = [_accept(broker, user) for user in range(1, queue.MAX_RELEASED_AHEAD + 6)]
    assert broker.queue.release() == queue.MAX_RELEASED_AHEAD
    assert _released(redis_client) == accepted[: queue.MAX_RELEASED_AHEAD]
    assert redis_client.llen(tasknames.WAITING_QUEUE) == 5
    # Nothing more while the released ones are not taken.
    assert broker.queue.release() == 0
    redis_client.delete(tasknames.UPDATE_QUEUE)
    assert broker.queue.release() == 5
    assert _released(redis_client) == accepted[queue.MAX_RELEASED_AHEAD :]


def test_a_release_reserves_each_job_its_requests_until_it_starts(
    make_broker: MakeBroker, redis_client: redis.Redis
) -> None:
    # 4 requests a second: room for two updates of two requests each.
    broker = make_broker("4/second")
    accepted = [_accept(broker, user) for user in range(10, 16)]
    assert broker.queue.release() == 2
    assert broker.queue.release() == 0
    assert _released(redis_client) == accepted[:2]
    # Started jobs no longer hold a reservation; their requests now fill the window.
    window = fleet_windows(RateLimit.parse("4/second"))[0]
    now_ms = _redis_ms(redis_client)
    for job_id in accepted[:2]:
        assert not _start(redis_client, job_id).stale
        redis_client.zadd(window.key, {f"{job_id}:user": now_ms, f"{job_id}:best": now_ms})
    assert broker.queue.release() == 0
    # The queue expects the next start when the oldest of those requests leaves the window.
    free_at = int(redis_client.get(queue.FREE_AT_KEY))  # type: ignore[arg-type]
    assert free_at == now_ms + window.period_ms
    # Once it has, two more go.
    redis_client.zremrangebyscore(window.key, "-inf", "+inf")
    assert broker.queue.release() == 2
    assert _released(redis_client) == accepted[:4]


def test_a_due_retry_goes_before_jobs_accepted_after_it(
    make_broker: MakeBroker, redis_client: redis.Redis
) -> None:
    broker = make_broker("off")
    first, second = _accept(broker, 21), _accept(broker, 22)
    assert broker.queue.release() == 2
    redis_client.delete(tasknames.UPDATE_QUEUE)
    # `first` failed transiently: it waits for its next attempt in the retry queue.
    _start(redis_client, first)
    jobs.hold_until(redis_client, first, time.time() + 3600)
    broker.celery.send_task(
        tasknames.UPDATE_USER, args=[first, 21, 0, 1], task_id=first, queue=tasknames.RETRY_QUEUE
    )
    jobs.mark_requeued(
        redis_client, first, 1, last_error="the osu! API answered 500 (user)",
        next_attempt_at=time.time() + 3600,
    )  # fmt: skip
    third = _accept(broker, 23)
    assert broker.queue.release() == 1
    assert _released(redis_client) == [third]
    state = jobs.read_job(redis_client, first)
    assert state is not None
    assert (state.status, state.attempt, state.last_error) == (
        "queued", 1, "the osu! API answered 500 (user)",
    )  # fmt: skip
    # Its place is kept: it is still ahead of the job accepted after it.
    assert queue.place_of(redis_client, first, []).position == 0
    # Due now: released, and its message is attempt 1.
    jobs.hold_until(redis_client, first, time.time() - 1)
    fourth = _accept(broker, 24)
    assert broker.queue.release() == 2
    assert _released(redis_client) == [third, first, fourth]
    messages = redis_client.lrange(tasknames.UPDATE_QUEUE, 0, -1)
    first_message = next(m for m in messages if json.loads(m)["headers"]["id"] == first)
    args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(first_message)["body"]))
    assert args == [first, 21, 0, 1]
    # A copy of attempt 0 (say, handed back by kombu after a worker died) is now stale.
    assert _start(redis_client, first, attempt=0).stale
    assert not _start(redis_client, first, attempt=1).stale
    del second


def test_an_upstream_pause_holds_every_job_and_sets_the_expected_start(
    make_broker: MakeBroker, redis_client: redis.Redis
) -> None:
    broker = make_broker("60/minute")
    job_id = _accept(broker, 31)
    pause_ends_ms = _redis_ms(redis_client) + 20_000
    redis_client.set(COOLDOWN_KEY, pause_ends_ms, px=20_000)
    assert broker.queue.release() == 0
    assert int(redis_client.get(queue.FREE_AT_KEY)) >= pause_ends_ms  # type: ignore[arg-type]
    place = queue.place_of(redis_client, job_id, broker.budget_windows)
    assert place.position == 0
    assert place.eta >= pause_ends_ms / 1000 - 1
    redis_client.delete(COOLDOWN_KEY)
    assert broker.queue.release() == 1


def test_positions_and_estimates_go_down_as_the_queue_drains(
    make_broker: MakeBroker, redis_client: redis.Redis
) -> None:
    # 4 requests a second sustained: one update every half second.
    broker = make_broker("4/second")
    windows = broker.budget_windows
    accepted = [_accept(broker, user) for user in range(40, 46)]
    places = [queue.place_of(redis_client, job_id, windows) for job_id in accepted]
    assert [place.position for place in places] == list(range(6))
    gaps = [later.eta - earlier.eta for earlier, later in itertools.pairwise(places)]
    # Two requests per job at 4 per (1.03 s with the send guard): about 0.515 s apart.
    per_job = 2 * windows[0].period_ms / 1000 / windows[0].limit
    assert all(gap == pytest.approx(per_job, abs=0.05) for gap in gaps)
    # The first two are released and start: everyone behind moves up by two.
    broker.queue.release()
    for job_id in accepted[:2]:
        _start(redis_client, job_id)
    later = [queue.place_of(redis_client, job_id, windows) for job_id in accepted[2:]]
    assert [place.position for place in later] == list(range(4))


def test_queued_jobs_mark_the_budget_as_wanted_by_interactive_updates(
    make_broker: MakeBroker, redis_client: redis.Redis
) -> None:
    broker = make_broker("2/second")
    job_ids = [_accept(broker, user) for user in (51, 52)]
    broker.queue.release()
    assert redis_client.zscore(WAITERS_KEY, queue.QUEUE_WAITER) is not None
    # Released and started, nothing left waiting: the scheduled refresh may use the budget.
    redis_client.delete(tasknames.UPDATE_QUEUE)
    for job_id in job_ids:
        _start(redis_client, job_id)
    redis_client.delete(tasknames.WAITING_QUEUE)
    broker.queue.release()
    assert redis_client.zscore(WAITERS_KEY, queue.QUEUE_WAITER) is None


def _redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()  # type: ignore[misc]
    return int(seconds) * 1000 + int(micros) // 1000


def test_a_released_message_lost_with_its_worker_is_queued_again(
    make_broker: MakeBroker, redis_client: redis.Redis
) -> None:
    broker = make_broker("off")
    lost, held, started = (_accept(broker, user) for user in (61, 62, 63))
    assert broker.queue.release() == 3
    raws = {
        json.loads(raw)["headers"]["id"]: raw
        for raw in redis_client.lrange(tasknames.UPDATE_QUEUE, 0, -1)
    }
    # A worker popped `lost` and died before kombu noted it; another holds `held`
    # unacknowledged (its task runs); `started` started.
    redis_client.delete(tasknames.UPDATE_QUEUE)
    redis_client.hset(
        queue.KOMBU_UNACKED_KEY, "tag-1", json.dumps([json.loads(raws[held]), "", "updates"])
    )
    _start(redis_client, started)
    # Not yet overdue: nothing happens.
    assert broker.queue.release() == 0
    overdue = _redis_ms(redis_client) - int(queue.LOST_AFTER_SECONDS * 1000) - 1
    for job_id in (lost, held):
        redis_client.zadd(queue.RELEASED_AT_KEY, {job_id: overdue})
    assert broker.queue.release() == 1
    assert _released(redis_client) == [lost]
    # The one a worker holds stays with it, looked at again later.
    assert redis_client.zscore(queue.RELEASED_AT_KEY, held) is not None
    assert _start(redis_client, lost).state is not None
    assert redis_client.hget(queue.RELEASED_KEY, lost) is None
