"""HTTP caching of the read endpoints through the real API, worker and Postgres.

An ETag names a body: a client holding it gets 304 (with the ETag and Cache-Control, no
body) until the body changes, and then 200 with the new body. Every writer moves the
read versions the tags derive from (an update, the peaks repair, a rebuild for
/bestplays); a write that changes nothing keeps them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests
from celery import Celery
from conftest import Stack
from support.processes import ManagedProcess
from support.simulator import SimulatorClient

from osutrack.tasknames import MAINTENANCE_QUEUE, REBUILD_BESTPLAYS, RECOMPUTE_PEAKS

pytestmark = pytest.mark.integration

JSON_UTF8 = "application/json; charset=utf-8"
PLAYER_READS = ("/stats_history", "/hiscores", "/peak")


def _get(stack: Stack, path: str, tag: str | None = None, **params: object) -> requests.Response:
    headers = {} if tag is None else {"If-None-Match": tag}
    return stack.http.get(f"{stack.api_url}{path}", params=params, headers=headers, timeout=30)


def _answer(stack: Stack, path: str, **params: object) -> tuple[str, bytes]:
    response = _get(stack, path, **params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON_UTF8
    tag = response.headers["ETag"]
    assert tag.startswith('W/"')
    return tag, response.content


def _assert_not_modified(
    stack: Stack, path: str, tag: str, cache_control: str, sent: str | None = None, **params: object
) -> None:
    """304 with `tag` and `cache_control` when asked with `sent` (default: `tag`)."""
    response = _get(stack, path, sent or tag, **params)
    assert response.status_code == 304, response.text
    assert response.content == b""
    assert response.headers["ETag"] == tag
    assert response.headers["Cache-Control"] == cache_control


def _run_task(stack: Stack, redis_url: str, name: str, done: Callable[[], bool]) -> None:
    producer = Celery("caching-test", broker=redis_url)
    producer.send_task(name, queue=MAINTENANCE_QUEUE)
    producer.close()
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, f"{name} did not run"
        time.sleep(0.2)


def test_player_reads_answer_304_until_their_body_changes(
    v2_stack: Stack, simulator: SimulatorClient, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    assert v2_stack.post_update(user, 0).status_code == 200
    before = {path: _answer(v2_stack, path, user=user, mode=0) for path in PLAYER_READS}
    for path, (tag, body) in before.items():
        assert _get(v2_stack, path, user=user, mode=0).headers["Cache-Control"] == "no-cache"
        _assert_not_modified(v2_stack, path, tag, "no-cache", user=user, mode=0)
        # The strong form of the same tag matches too (weak comparison), in a list, and `*`.
        _assert_not_modified(v2_stack, path, tag, "no-cache", tag[2:], user=user, mode=0)
        _assert_not_modified(v2_stack, path, tag, "no-cache", f'W/"x", {tag}', user=user, mode=0)
        _assert_not_modified(v2_stack, path, tag, "no-cache", "*", user=user, mode=0)
        for wrong in ('W/"0-0000000000000000"', tag[:-2] + '0"', '"x", "y"'):
            response = _get(v2_stack, path, wrong, user=user, mode=0)
            assert response.status_code == 200
            assert response.content == body
            assert response.headers["ETag"] == tag
        # Another player, mode or window is another body, so another tag.
        other = _get(v2_stack, path, tag, user=user, mode=1)
        assert other.status_code == 200
        assert other.headers["ETag"] != tag
    window = _get(v2_stack, "/hiscores", before["/hiscores"][0], user=user, mode=0, to="2001-01-01")
    assert window.status_code == 200
    assert window.content == b"[]"

    # New stats and new top plays: every body changes, and so does every tag.
    simulator.advance(user, 0, new_top_plays=2)
    assert v2_stack.post_update(user, 0).status_code == 200
    after = {}
    for path, (tag, body) in before.items():
        response = _get(v2_stack, path, tag, user=user, mode=0)
        assert response.status_code == 200, path
        assert response.content != body
        after[path] = (response.headers["ETag"], response.content)
        assert after[path][0] != tag
        assert after[path] == _answer(v2_stack, path, user=user, mode=0)
        _assert_not_modified(v2_stack, path, after[path][0], "no-cache", user=user, mode=0)

    # An update that finds nothing new leaves the stored top plays as they are: same tag,
    # still 304. It moves the snapshot's and the peaks' times, so their tags move; their
    # bodies too, unless the times moved within the same printed second.
    assert v2_stack.post_update(user, 0).status_code == 200
    _assert_not_modified(
        v2_stack, "/hiscores", after["/hiscores"][0], "no-cache", user=user, mode=0
    )
    for path in ("/stats_history", "/peak"):
        tag, body = after[path]
        now_tag, now_body = _answer(v2_stack, path, user=user, mode=0)
        assert now_tag != tag, path
        assert _answer(v2_stack, path, user=user, mode=0) == (now_tag, now_body)


def test_the_peaks_repair_keeps_tags_of_unchanged_peaks(
    v2_stack: Stack, new_user_id: Callable[[], int], redis_url: str, worker_process: ManagedProcess
) -> None:
    user = new_user_id()
    assert v2_stack.post_update(user, 0).status_code == 200
    tag, body = _answer(v2_stack, "/peak", user=user, mode=0)
    output = worker_process.output

    def repaired() -> bool:
        return any(
            RECOMPUTE_PEAKS in line and "succeeded" in line for line in output().splitlines()
        )

    _run_task(v2_stack, redis_url, RECOMPUTE_PEAKS, repaired)
    # The repair rewrites peaks only where they differ from the snapshots.
    assert _answer(v2_stack, "/peak", user=user, mode=0) == (tag, body)


def test_errors_carry_no_tags_and_head_answers_like_get(
    v2_stack: Stack, new_user_id: Callable[[], int]
) -> None:
    for path in (*PLAYER_READS, "/bestplays"):
        response = _get(v2_stack, path, "*", user="abc", mode=9)
        assert response.status_code == 400
        assert "ETag" not in response.headers
        assert "Cache-Control" not in response.headers
        assert response.headers["Content-Type"].startswith("application/json")
        assert "error" in response.json()
    user = new_user_id()
    assert v2_stack.post_update(user, 0).status_code == 200
    tag, _ = _answer(v2_stack, "/peak", user=user, mode=0)
    url = f"{v2_stack.api_url}/peak"
    head = v2_stack.http.head(url, params={"user": user, "mode": 0}, timeout=30)
    assert head.status_code == 200
    assert head.headers["ETag"] == tag
    assert head.content == b""
    head = v2_stack.http.head(
        url, params={"user": user, "mode": 0}, headers={"If-None-Match": tag}, timeout=30
    )
    assert head.status_code == 304
    assert head.headers["ETag"] == tag


def test_bestplays_is_fresh_until_its_next_rebuild(
    v2_stack: Stack, new_user_id: Callable[[], int], redis_url: str, worker_process: ManagedProcess
) -> None:
    assert v2_stack.post_update(new_user_id(), 2).status_code == 200
    output = worker_process.output

    def rebuilds() -> int:
        return sum(
            REBUILD_BESTPLAYS in line and "succeeded" in line for line in output().splitlines()
        )

    done = rebuilds()
    _run_task(v2_stack, redis_url, REBUILD_BESTPLAYS, lambda: rebuilds() > done)
    tag, body = _answer(v2_stack, "/bestplays", mode=2, limit=5)
    cache_control = _get(v2_stack, "/bestplays", mode=2, limit=5).headers["Cache-Control"]
    assert cache_control.startswith("public, max-age=")
    # BESTPLAYS_REFRESH_SECONDS is 60 in the tests' environment.
    assert 0 <= int(cache_control.rsplit("=", 1)[1]) <= 60
    response = _get(v2_stack, "/bestplays", tag, mode=2, limit=5)
    assert response.status_code == 304
    assert response.headers["ETag"] == tag
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert _get(v2_stack, "/bestplays", tag, mode=2, limit=6).status_code == 200
    # A new rebuild names its answers anew.
    done = rebuilds()
    _run_task(v2_stack, redis_url, REBUILD_BESTPLAYS, lambda: rebuilds() > done)
    response = _get(v2_stack, "/bestplays", tag, mode=2, limit=5)
    assert response.status_code == 200
    assert response.headers["ETag"] != tag
    assert response.content == body
