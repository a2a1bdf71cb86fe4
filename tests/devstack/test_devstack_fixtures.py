"""The conftest fixtures hand out working services."""

from __future__ import annotations

import psycopg2
import redis
import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session
from support.processes import ManagedProcess
from support.simulator import SimulatorClient

from devstack.services import PostgresServer

USER = 31338


def test_session_postgres_has_the_database(pg_server: PostgresServer) -> None:
    conn = psycopg2.connect(pg_server.dsn())
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW fsync")
            assert cur.fetchone() == ("off",)
    finally:
        conn.close()


def test_redis_client_decodes_text(redis_client: redis.Redis) -> None:
    redis_client.set("k", "v")

    assert redis_client.get("k") == "v"


def test_database_url_is_migrated(db_session: Session) -> None:
    version = db_session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()

    assert version


def test_simulator_helper_round_trip(simulator: SimulatorClient) -> None:
    simulator.advance(USER, 0, steps=1, new_top_plays=1)
    requests.get(f"{simulator.base_url}/api/v2/users/{USER}/osu", timeout=5)

    assert simulator.truth(USER, 0)
    assert simulator.requests_log()


def test_worker_and_api_start(worker_process: ManagedProcess, api_url: str) -> None:
    assert worker_process.is_running()
    assert requests.get(f"{api_url}/openapi.json", timeout=5).status_code == 200
