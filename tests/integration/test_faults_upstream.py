"""Upstream faults: retried, then a clear failed job; never a missing user; nothing partial.

Mechanisms under test:
- `UpstreamHttp.request_json` (worker/upstream/http.py) raises timeouts, connection errors,
  429 and 5xx answers and bodies that are not JSON as transient `UpstreamError`s, and the
  update task sends the job back to the queue for another attempt (worker/update_job.py) until
  OSU_API_RETRY_HORIZON_SECONDS after its first attempt;
- a job still failing then is a failed job with its status (502, or 503 + Retry-After
  when rate limited), never the "exists: false" body of a user osu! does not know;
- `update_user` asks osu! everything before it writes, in one transaction, so a failure
  of either call (user or best scores) leaves no row behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from support.faults import FaultStack, fault_stack, new_fault_user, wait_for

from worker.upstream.limiter import COOLDOWN_KEY

pytestmark = pytest.mark.integration

# Short, so a persistent fault ends in a failed job within seconds; long enough for a few
# attempts at the stack's 0.05 s first backoff.
HORIZON_SECONDS = 3
# Below the simulator's `slow` fault, so a slow answer is a timeout.
TIMEOUT_SECONDS = 1

# kind, extra fault fields, the job's status once every attempt failed, error text.
FAULTS = [
    pytest.param(kind, extra, status, message, id=kind)
    for kind, extra, status, message in [
        ("http_500", {}, 502, "answered 500"),
        ("http_502", {}, 502, "answered 502"),
        ("http_503", {}, 502, "answered 503"),
        ("http_504", {}, 502, "answered 504"),
        ("slow", {"delay_ms": 2500}, 502, "timed out"),
        ("garbage", {}, 502, "malformed"),
        ("truncated", {}, 502, "malformed"),
        ("http_429", {"retry_after": 1}, 503, "rate limiting"),
    ]
]
# Which call the fault hits: the first one (user) or the second (best scores), after
# which the update had everything it needed but one piece.
CALLS = {"user": "/api/v2/users/{user}/osu", "best": "/api/v2/users/{user}/scores"}


@pytest.fixture(scope="module")
def module_stack(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> Iterator[FaultStack]:
    """One private stack for the whole table of faults (each case uses its own user)."""
    with fault_stack(
        tmp_path_factory.mktemp("faults-upstream"),
        database_url=database_url,
        OSU_API_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        OSU_API_RETRY_HORIZON_SECONDS=str(HORIZON_SECONDS),
    ) as running:
        running.start_api()
        running.start_worker("upstream", concurrency=2)
        yield running


@pytest.fixture
def stack(module_stack: FaultStack) -> Iterator[FaultStack]:
    """The module's stack, with faults and a 429's fleet-wide pause cleared after a case."""
    yield module_stack
    module_stack.simulator.clear_faults()
    module_stack.redis.delete(COOLDOWN_KEY)


def _assert_nothing_stored(stack: FaultStack, user: int) -> None:
    rows = stack.stored(user, 0)
    assert (rows.snapshots, rows.plays, rows.finished, rows.tracked) == ([], [], {}, 0)


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(("kind", "extra", "status", "message"), FAULTS)
def test_persistent_fault_fails_the_job_clearly_and_writes_nothing(
    stack: FaultStack, kind: str, extra: dict[str, Any], status: int, message: str, call: str
) -> None:
    # Breaking it: if an exhausted retry were mapped to "not found", the answer would be a
    # 200 with exists false; if the best-scores call came after the snapshot was written
    # (or in another transaction), a fault on it would leave a snapshot behind.
    user = new_fault_user()
    endpoint = "v2_user" if call == "user" else "v2_best"
    prefix = CALLS[call].format(user=user)
    stack.simulator.add_fault(kind=kind, count=-1, path_prefix=prefix, **extra)
    response = stack.post_update(user, wait=25)
    assert response.status_code == status, response.text
    body = response.json()
    assert message in body["error"]
    assert "exists" not in body
    if status == 503:
        assert response.headers["Retry-After"] == "1"
    job = stack.get(f"/jobs/{body['job_id']}").json()
    assert (job["status"], job["result"]) == ("failed", None)
    # Retried until the horizon: the first attempt, then at least one more (the delays
    # are random but never reach past the horizon, where the last attempt is made).
    assert job["attempt"] >= 1
    started = _parse_time(job["enqueued_at"])
    assert _parse_time(job["finished_at"]) - started >= HORIZON_SECONDS - 1
    _assert_requests(stack, user, endpoint, job["attempt"] + 1)
    _assert_nothing_stored(stack, user)

    # The failure left no trace: once osu! answers, this is the player's first update.
    stack.simulator.clear_faults()
    stack.redis.delete(COOLDOWN_KEY)
    retried = stack.post_update(user, wait=25)
    assert retried.status_code == 200, retried.text
    assert retried.json()["first"] is True
    stack.assert_updated_once(user, 0, _only_job(stack, user))


def _parse_time(printed: str) -> float:
    """Unix seconds of a time as the API prints it (whole seconds)."""
    return datetime.strptime(printed, "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC).timestamp()


def _only_job(stack: FaultStack, user: int) -> list[str]:
    """The id of the one job that committed for (user, osu!)."""
    finished = list(stack.stored(user, 0).finished)
    assert len(finished) == 1, finished
    return finished


def _assert_requests(stack: FaultStack, user: int, endpoint: str, count: int) -> None:
    # A request the worker gave up on (timeout) is logged by the simulator only when its
    # delayed answer is finally sent, a moment after the job ended.
    wait_for(
        lambda: stack.upstream_requests(user, endpoint) >= count,
        5,
        f"{count} {endpoint} requests",
        interval=0.2,
    )
    assert stack.upstream_requests(user, endpoint) == count


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(("kind", "extra", "status", "message"), FAULTS)
def test_fault_that_clears_after_one_request_is_retried_and_the_job_succeeds(
    stack: FaultStack, kind: str, extra: dict[str, Any], status: int, message: str, call: str
) -> None:
    # A transient failure is invisible to the client: one retry, then the normal answer
    # and exactly the data of a fault-free update.
    del status, message
    user = new_fault_user()
    endpoint = "v2_user" if call == "user" else "v2_best"
    stack.simulator.add_fault(
        kind=kind, count=1, path_prefix=CALLS[call].format(user=user), **extra
    )
    response = stack.post_update(user, wait=25)
    assert response.status_code == 200, response.text
    assert response.json()["exists"] is True
    assert response.json()["first"] is True
    _assert_requests(stack, user, endpoint, 2)
    stack.assert_updated_once(user, 0, _only_job(stack, user))


def test_user_gone_for_one_request_reads_as_missing_and_keeps_the_history(
    stack: FaultStack,
) -> None:
    # osu! answering 404 for a user it knew (restricted, or a glitch) is a 200 "exists:
    # false" that writes nothing and deletes nothing; the next update is a normal one.
    user = new_fault_user()
    first = stack.post_update(user, wait=25)
    assert first.status_code == 200, first.text
    before = stack.stored(user, 0)
    stack.simulator.add_fault(
        kind="empty_user", count=1, path_prefix=CALLS["user"].format(user=user)
    )
    gone = stack.post_update(user, wait=25)
    assert gone.status_code == 200, gone.text
    assert gone.json()["exists"] is False
    after = stack.stored(user, 0)
    assert after == before
    again = stack.post_update(user, wait=25)
    assert again.status_code == 200, again.text
    assert again.json()["exists"] is True
    assert again.json()["first"] is False
