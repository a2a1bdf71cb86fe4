"""Read replicas for real: a streaming standby of the session Postgres, copied with
pg_basebackup, behind an API started with DATABASE_REPLICA_URLS.

Which server answered is read from the servers themselves: Postgres shows each session's
last statement in pg_stat_activity, and the API's reads are PREPAREd statements executed
with the player's id as a literal. Requests open a new connection each (`Connection:
close`), so they land on both API processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest
import redis
import requests
from support.processes import start_api
from support.simulator import SimulatorClient

from devstack.procs import free_port, wait_until
from devstack.services import PostgresReplica, PostgresServer
from osutrack import write_marks

pytestmark = pytest.mark.integration

WAIT_SECONDS = 60.0
# A replica paused for a whole test still serves the reads of everyone else.
PATIENT_MAX_LAG = "3600"
STRICT_MAX_LAG = "1"
SETTLED_LAG = 4.0


@pytest.fixture(scope="module")
def replica(
    pg_server: PostgresServer, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostgresReplica]:
    server = PostgresReplica(pg_server, tmp_path_factory.mktemp("replica"), free_port())
    server.start()
    yield server
    server.stop()


def _api(
    service_env: Callable[..., dict[str, str]],
    replica: PostgresReplica,
    max_lag: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    env = service_env(DATABASE_REPLICA_URLS=replica.url, REPLICA_MAX_LAG_SECONDS=max_lag)
    port = free_port()
    log_path = tmp_path_factory.mktemp("replica-api") / "api.log"
    api = start_api(env, port, log_path=log_path)
    yield f"http://127.0.0.1:{port}"
    api.stop()


@pytest.fixture(scope="module")
def api(
    service_env: Callable[..., dict[str, str]],
    replica: PostgresReplica,
    worker_process: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    yield from _api(service_env, replica, PATIENT_MAX_LAG, tmp_path_factory)


@pytest.fixture(scope="module")
def strict_api(
    service_env: Callable[..., dict[str, str]],
    replica: PostgresReplica,
    worker_process: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    yield from _api(service_env, replica, STRICT_MAX_LAG, tmp_path_factory)


@pytest.fixture
def marks(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def _get(api: str, path: str, **params: object) -> requests.Response:
    return requests.get(f"{api}{path}", params=params, headers={"Connection": "close"}, timeout=30)


def _update(api: str, user: int) -> dict[str, Any]:
    response = requests.post(
        f"{api}/update", params={"user": user, "mode": 0}, headers={"Connection": "close"},
        timeout=70,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def _query(server: PostgresServer, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(server.dsn(), connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def _ran(server: PostgresServer, statement: str) -> bool:
    """True when a session of `server` (other than this one) last ran `statement`."""
    rows = _query(
        server,
        "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query = %s",
        (statement,),
    )
    return rows[0][0] > 0


def _playcounts(server: PostgresServer, user: int) -> list[int]:
    rows = _query(
        server,
        "SELECT playcount FROM stats_snapshots WHERE user_id = %s AND mode = 0 "
        "ORDER BY captured_at",
        (user,),
    )
    return [row[0] for row in rows]


def _history_playcounts(api: str, user: int) -> list[int]:
    response = _get(api, "/stats_history", user=user, mode=0)
    assert response.status_code == 200, response.text
    return [row["playcount"] for row in response.json()]


def _metrics(api: str) -> dict[str, float]:
    response = _get(api, "/metrics")
    assert response.status_code == 200, response.text
    samples = {}
    for line in response.text.splitlines():
        if line.startswith("osutrack_replica_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


SERVING = 'osutrack_replica_serving{replica="0"}'
LAG = 'osutrack_replica_lag_seconds{replica="0"}'


def _serving(api: str) -> float | None:
    return _metrics(api).get(SERVING)


def _until(check: Callable[[], bool], what: str) -> None:
    wait_until(check, timeout=WAIT_SECONDS, what=what, interval=0.2)


def _metrics_when(
    api: str, check: Callable[[dict[str, float]], bool], what: str
) -> dict[str, float]:
    """The first /metrics sample set (of whichever process answered) that passes `check`."""
    seen: list[dict[str, float]] = []

    def passes() -> bool:
        seen.append(_metrics(api))
        return check(seen[-1])

    _until(passes, what)
    return seen[-1]


def _replicated(replica: PostgresReplica, user: int, playcounts: list[int]) -> None:
    _until(lambda: _playcounts(replica, user) == playcounts, f"the replica to hold {user}")


def test_reads_are_answered_by_the_replica(
    api: str,
    replica: PostgresReplica,
    pg_server: PostgresServer,
    new_user_id: Callable[[], int],
) -> None:
    user = new_user_id()
    _update(api, user)
    _replicated(replica, user, _playcounts(pg_server, user))

    def peak_on_replica() -> bool:
        response = _get(api, "/peak", user=user, mode=0)
        assert response.status_code == 200, response.text
        assert response.json()[0]["best_global_rank"] is not None
        return _ran(replica, f"EXECUTE osutrack_peak({user}, 0)")

    _until(peak_on_replica, "a /peak answered by the replica")
    # Once the processes use the replica, every read endpoint does.
    for path, statement in (
        ("/stats_history", f"EXECUTE osutrack_stats_history({user}, 0, '-infinity', 'infinity')"),
        ("/hiscores", f"EXECUTE osutrack_user_hiscores({user}, 0, '-infinity', 'infinity')"),
    ):
        _until(
            lambda path=path, statement=statement: (
                _get(api, path, user=user, mode=0).status_code == 200 and _ran(replica, statement)
            ),
            f"a {path} answered by the replica",
        )
    _until(
        lambda: (
            _get(api, "/bestplays", mode=3).status_code == 200
            and _ran(replica, "EXECUTE osutrack_bestplays_stamp(3)")
        ),
        "a /bestplays answered by the replica",
    )


def test_a_client_reads_its_own_update_while_the_replica_is_paused(
    api: str,
    replica: PostgresReplica,
    pg_server: PostgresServer,
    simulator: SimulatorClient,
    marks: redis.Redis,
    new_user_id: Callable[[], int],
) -> None:
    user = new_user_id()
    _update(api, user)
    before = _playcounts(pg_server, user)
    _replicated(replica, user, before)
    _until(lambda: _history_playcounts(api, user) == before, "the first update to be read")
    replica.pause_replay()
    try:
        truth = simulator.advance(user, 0)
        _update(api, user)
        after = _playcounts(pg_server, user)
        assert after[-1] == truth["stats"]["playcount"]
        # The replica lags: it has not replayed the update...
        assert _playcounts(replica, user) == before
        # ...and still every read of the updated player shows it, from either process.
        for _ in range(10):
            assert _history_playcounts(api, user) == after
        assert _ran(
            pg_server, f"EXECUTE osutrack_stats_history({user}, 0, '-infinity', 'infinity')"
        )
        # It is the mark that sends those reads to the primary: without it the (healthy,
        # if paused) replica answers, with what it has.
        marks.delete(write_marks.mark_key(user))
        _until(lambda: _history_playcounts(api, user) == before, "a read from the replica")
    finally:
        replica.resume_replay()
    _replicated(replica, user, after)
    _until(lambda: _history_playcounts(api, user) == after, "the replica to catch up")


def test_a_stopped_replica_is_skipped_and_comes_back(
    api: str,
    replica: PostgresReplica,
    pg_server: PostgresServer,
    new_user_id: Callable[[], int],
) -> None:
    user = new_user_id()
    _update(api, user)
    _replicated(replica, user, _playcounts(pg_server, user))
    _until(lambda: _serving(api) == 1.0, "the replica to serve")
    replica.stop()
    try:
        # Reads go on: a read that meets the dead replica is run on the primary, and the
        # next check skips the replica.
        for _ in range(10):
            assert _history_playcounts(api, user) == _playcounts(pg_server, user)
        skipped = _metrics_when(
            api, lambda m: m.get(SERVING) == 0.0, "/metrics to show the replica skipped"
        )
        assert math.isnan(skipped[LAG])
        for _ in range(10):
            assert _get(api, "/peak", user=user, mode=0).status_code == 200
    finally:
        replica.start()
    _until(lambda: _serving(api) == 1.0, "the restarted replica to serve again")


def test_lag_is_exported_per_replica_without_its_address(
    api: str, replica: PostgresReplica
) -> None:
    serving = _metrics_when(api, lambda m: m.get(SERVING) == 1.0, "the replica to serve")
    assert 0.0 <= serving[LAG] <= float(PATIENT_MAX_LAG)
    response = _get(api, "/metrics")
    assert "# TYPE osutrack_replica_lag_seconds gauge" in response.text
    assert replica.password not in response.text
    assert f":{replica.port}" not in response.text


def test_a_replica_behind_by_more_than_the_bound_is_skipped_until_it_catches_up(
    strict_api: str,
    replica: PostgresReplica,
    pg_server: PostgresServer,
    simulator: SimulatorClient,
    marks: redis.Redis,
    new_user_id: Callable[[], int],
) -> None:
    user = new_user_id()
    _update(strict_api, user)
    before = _playcounts(pg_server, user)
    _replicated(replica, user, before)
    _until(lambda: _serving(strict_api) == 1.0, "the replica to serve")
    replica.pause_replay()
    try:
        simulator.advance(user, 0)
        _update(strict_api, user)
        after = _playcounts(pg_server, user)
        assert _playcounts(replica, user) == before
        # Skipped, and far enough behind (SETTLED_LAG) that the other API process, which
        # checks within a second of this one, has skipped it too.
        _metrics_when(
            strict_api,
            lambda m: m.get(SERVING) == 0.0 and m[LAG] >= SETTLED_LAG,
            "/metrics to show the replica skipped",
        )
        # Without its mark, the player's reads still show the update: no process reads
        # from a replica this far behind.
        marks.delete(write_marks.mark_key(user))
        for _ in range(10):
            assert _history_playcounts(strict_api, user) == after
    finally:
        replica.resume_replay()
    _until(lambda: _serving(strict_api) == 1.0, "the replica to serve again")
