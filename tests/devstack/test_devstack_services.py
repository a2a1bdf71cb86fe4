"""The private Postgres and Redis servers really start, stop, restart and keep data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis

from devstack.procs import free_port, port_open
from devstack.services import PostgresServer, RedisServer

# Marked here, not found from fixtures: the module starts its own Postgres and Redis servers.
pytestmark = pytest.mark.integration


def _query(server: PostgresServer, sql: str) -> list[tuple[object, ...]]:
    conn = psycopg2.connect(server.dsn())
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path / "pg", free_port(), fsync=False)
    yield server
    server.stop()


@pytest.fixture
def redis_srv(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", free_port())
    yield server
    server.stop()


def test_postgres_start_creates_database_and_stop_closes_port(postgres: PostgresServer) -> None:
    postgres.start()

    assert postgres.is_running()
    assert _query(postgres, "SELECT current_database()") == [("osutrack",)]
    assert postgres.url == (
        f"postgresql+psycopg2://postgres:{postgres.password}@127.0.0.1:{postgres.port}/osutrack"
    )

    postgres.stop()

    assert not postgres.is_running()
    assert not port_open("127.0.0.1", postgres.port)


def test_postgres_restart_keeps_data(postgres: PostgresServer) -> None:
    postgres.start()
    _query(postgres, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")

    postgres.restart()

    assert postgres.is_running()
    assert _query(postgres, "SELECT v FROM kept") == [(42,)]


def test_postgres_reuses_cluster_after_stale_pidfile(tmp_path: Path) -> None:
    first = PostgresServer(tmp_path / "pg", free_port(), fsync=False)
    first.start()
    _query(first, "CREATE TABLE kept (v int)")
    first.stop()
    # What a postmaster killed without cleanup leaves behind: a PID that no longer runs.
    dead_pid = _dead_pid()
    (first.pgdata / "postmaster.pid").write_text(f"{dead_pid}\n{first.pgdata}\n")

    second = PostgresServer(tmp_path / "pg", free_port(), fsync=False)
    try:
        second.start()
        assert _query(second, "SELECT count(*) FROM kept") == [(0,)]
    finally:
        second.stop()


def test_redis_start_ping_stop(redis_srv: RedisServer) -> None:
    redis_srv.start()

    client = redis.Redis.from_url(redis_srv.url)
    assert client.ping()
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    client.close()

    redis_srv.stop()

    assert not redis_srv.is_running()
    assert not port_open("127.0.0.1", redis_srv.port)


def test_redis_aof_survives_restart(redis_srv: RedisServer) -> None:
    redis_srv.start()
    client = redis.Redis.from_url(redis_srv.url, decode_responses=True)
    client.set("written-before-restart", "still here")
    client.rpush("queue", "a", "b")
    client.close()

    redis_srv.restart()

    client = redis.Redis.from_url(redis_srv.url, decode_responses=True)
    assert client.get("written-before-restart") == "still here"
    assert client.lrange("queue", 0, -1) == ["a", "b"]
    client.close()


def _dead_pid() -> int:
    """A PID that no process has right now."""
    pid = os.getpid() + 100_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1
