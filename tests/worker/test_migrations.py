"""The migrations build exactly the schema the code queries, and step back down cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from devstack.services import PostgresServer
from osutrack.schema import metadata
from worker.migrate import alembic_config, upgrade

SCRATCH_DATABASE = "osutrack_migrations"


def test_migrated_database_matches_the_declared_tables(db_engine: sa.Engine) -> None:
    with db_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def _drop_database(pg_server: PostgresServer, name: str, *, create: bool) -> None:
    conn = psycopg2.connect(pg_server.dsn("postgres"))
    try:
        # CREATE and DROP DATABASE cannot run inside a transaction block.
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            if create:
                cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


@pytest.fixture
def scratch_url(pg_server: PostgresServer) -> Iterator[str]:
    """An empty database of its own, so stepping down never disturbs the session's."""
    _drop_database(pg_server, SCRATCH_DATABASE, create=True)
    yield pg_server.url.rsplit("/", 1)[0] + "/" + SCRATCH_DATABASE
    _drop_database(pg_server, SCRATCH_DATABASE, create=False)


def _tables_and_indexes(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT relname FROM pg_class JOIN pg_namespace n ON n.oid = relnamespace"
                    " WHERE nspname = 'public' AND relkind IN ('r', 'i')"
                )
            )
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def test_every_migration_steps_down_and_up_again(scratch_url: str) -> None:
    upgrade(scratch_url)
    at_head = _tables_and_indexes(scratch_url)
    assert {"job_watermarks", "stats_snapshots_captured_at", "bestplays_months"} <= at_head
    command.downgrade(alembic_config(scratch_url), "0004")
    at_0004 = _tables_and_indexes(scratch_url)
    month_lists = {"bestplays_months", "bestplays_month_lists", "bestplays_month_changes"}
    assert at_head - at_0004 == month_lists | {f"{table}_pkey" for table in month_lists}
    command.downgrade(alembic_config(scratch_url), "0003")
    at_0003 = _tables_and_indexes(scratch_url)
    assert at_0004 - at_0003 == {"job_watermarks", "job_watermarks_pkey",
                                 "stats_snapshots_captured_at"}  # fmt: skip
    command.downgrade(alembic_config(scratch_url), "base")
    assert _tables_and_indexes(scratch_url) == {"alembic_version", "alembic_version_pkc"}
    upgrade(scratch_url)
    assert _tables_and_indexes(scratch_url) == at_head
    engine = sa.create_engine(scratch_url)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    finally:
        engine.dispose()
