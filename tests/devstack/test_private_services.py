"""The private Postgres and Redis answer only clients that know their password.

Anyone on the machine can reach 127.0.0.1, so the password (generated into a 0600 file of
the server's directory) is what keeps other users out. The session servers of
tests/conftest.py are the ones checked: they are built exactly as `make run` builds its own.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis

from devstack.procs import free_port
from devstack.services import PostgresServer, RedisServer


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _connect(dsn: str) -> None:
    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path / "pg", free_port(), fsync=False)
    yield server
    server.stop()


def test_postgres_refuses_a_client_without_the_password(pg_server: PostgresServer) -> None:
    tcp = f"host=127.0.0.1 port={pg_server.port} user=postgres dbname=osutrack"
    socket = f"host={pg_server.socket_dir} port={pg_server.port} user=postgres dbname=osutrack"

    _connect(pg_server.dsn())
    _connect(f"{socket} password={pg_server.password}")
    for refused in (tcp, f"{tcp} password=wrong", socket):
        with pytest.raises(psycopg2.OperationalError, match="password"):
            _connect(refused)
    assert _mode(pg_server.password_path) == 0o600
    assert _mode(pg_server.socket_dir) == 0o700


def test_postgres_password_never_on_a_command_line(pg_server: PostgresServer) -> None:
    assert pg_server.pid is not None
    cmdline = Path(f"/proc/{pg_server.pid}/cmdline").read_bytes()

    assert pg_server.password.encode() not in cmdline


@pytest.mark.integration
def test_a_cluster_without_a_password_file_gets_a_new_password(
    own_postgres: PostgresServer,
) -> None:
    """A cluster from before passwords existed (or whose file was removed) is locked again."""
    own_postgres.start()
    old = own_postgres.password
    own_postgres.stop()
    own_postgres.password_path.unlink()

    own_postgres.start()

    assert own_postgres.password != old
    _connect(own_postgres.dsn())
    with pytest.raises(psycopg2.OperationalError, match="password"):
        _connect(own_postgres.dsn().replace(own_postgres.password, old))


def test_redis_refuses_a_client_without_the_password(redis_server: RedisServer) -> None:
    without = redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=5)
    wrong = redis.Redis(
        host="127.0.0.1", port=redis_server.port, password="wrong", socket_timeout=5
    )
    right = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        assert right.ping()
        with pytest.raises(redis.AuthenticationError):
            without.ping()
        with pytest.raises(redis.AuthenticationError):
            wrong.ping()
    finally:
        for client in (without, wrong, right):
            client.close()
    assert _mode(redis_server.password_path) == 0o600
    assert _mode(redis_server.config_path) == 0o600
    assert redis_server.pid is not None
    assert (
        redis_server.password.encode() not in Path(f"/proc/{redis_server.pid}/cmdline").read_bytes()
    )
