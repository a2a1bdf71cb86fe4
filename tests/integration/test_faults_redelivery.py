"""The same update job delivered twice while the first copy still runs: data written once.

Mechanisms under test (worker/update_store.py): the per-(user, mode) advisory lock serialises
the two copies, and the job id as idempotency key (`finished_updates`) must make the copy
that comes second write nothing and publish the body the first one stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import celery
import pytest
import sqlalchemy as sa
from support.faults import FaultStack, fault_stack, new_fault_user, wait_for

from osutrack import jobs, tasknames

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[FaultStack]:
    """A private Redis and simulator on the session Postgres (no API: tasks sent by hand)."""
    with fault_stack(tmp_path, database_url=database_url) as running:
        yield running


def _lock_waiters(stack: FaultStack, key: int) -> int:
    """Sessions waiting for the bigint advisory lock `key` (pg_locks splits it in two)."""
    query = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = :high AND objid = :low AND objsubid = 1"
    )
    with stack.engine.connect() as connection:
        waiting = connection.scalar(query, {"high": key >> 32, "low": key & 0xFFFFFFFF})
    return int(waiting or 0)


# Observed: both copies find no `finished_updates` row (store_update looks before taking
# the advisory lock), so the one that gets the lock second stores a second snapshot with
# the same stats and publishes its own body (first: false) over the stored one.
def test_same_job_delivered_twice_concurrently_is_written_once(stack: FaultStack) -> None:
    # Two copies of one message (same job id, same task id), as a redelivery or a
    # producer's retry makes, on two worker processes at the same moment. The test holds
    # the user-mode's advisory lock until both copies wait for it inside their
    # transaction, so the overlap is certain rather than a matter of latency.
    workers = [stack.start_worker("copy-1"), stack.start_worker("copy-2")]
    user = new_fault_user()
    lock_key = user * 4 + 0
    job_id, created = jobs.create_or_join_job(stack.redis, user, 0, 3600)
    assert created
    producer = celery.Celery(broker=stack.redis_server.url, set_as_current=False)
    producer.conf.update(task_serializer="json", accept_content=["json"])
    try:
        with stack.engine.connect() as blocker:
            blocker.execute(sa.select(sa.func.pg_advisory_lock(lock_key)))
            blocker.commit()
            for _ in range(2):
                producer.send_task(
                    tasknames.UPDATE_USER, args=[job_id, user, 0], task_id=job_id, queue="updates"
                )
            wait_for(lambda: _lock_waiters(stack, lock_key) == 2, 4, "both copies at the lock")
            blocker.execute(sa.select(sa.func.pg_advisory_unlock(lock_key)))
            blocker.commit()
    finally:
        producer.close()
    wait_for(
        lambda: all(w.output().count(f"[{job_id}] succeeded") == 1 for w in workers),
        20,
        "both copies ran to the end",
    )
    assert stack.job(job_id).status == "finished"  # type: ignore[union-attr]
    # Both copies fetched (they ran at once); only one may write and publish.
    assert stack.upstream_requests(user, "v2_user") == 2
    stack.assert_updated_once(user, 0, [job_id])
    state = stack.job(job_id)
    assert state is not None
    assert state.result is not None
    assert state.result["first"] is True
