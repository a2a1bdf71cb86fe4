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
    command.downgrade(alembic_config(scratch_url), "0006")
    at_0006 = _tables_and_indexes(scratch_url)
    assert at_head - at_0006 == {"bestplays_months_ranked"}
    command.downgrade(alembic_config(scratch_url), "0005")
    at_0005 = _tables_and_indexes(scratch_url)
    assert at_0006 - at_0005 == {"read_versions", "read_versions_pkey"}
    command.downgrade(alembic_config(scratch_url), "0004")
    at_0004 = _tables_and_indexes(scratch_url)
    month_lists = {"bestplays_months", "bestplays_month_lists", "bestplays_month_changes"}
    assert at_0005 - at_0004 == month_lists | {f"{table}_pkey" for table in month_lists}
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


def test_0004_reruns_after_its_index_build_failed(scratch_url: str) -> None:
    """The state a failed concurrent build leaves: version 0003, the watermark table
    already committed, an INVALID index under the new index's name."""
    upgrade(scratch_url, "0004")
    command.downgrade(alembic_config(scratch_url), "0003")
    engine = sa.create_engine(scratch_url, isolation_level="AUTOCOMMIT")
    snapshot = (
        "INSERT INTO stats_snapshots (user_id, mode, count300, count100, count50, playcount,"
        " ranked_score, total_score, pp_rank, level, pp_raw, accuracy, count_rank_ss,"
        " count_rank_s, count_rank_a, captured_at)"
        " VALUES (:user, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 99, 1, 1, 1, now())"
    )
    try:
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    "CREATE TABLE job_watermarks (job varchar(64) PRIMARY KEY,"
                    " watermark timestamptz NOT NULL)"
                )
            )
            for user in (1, 2):
                connection.execute(sa.text(snapshot), {"user": user})
            # Two snapshots in mode 0: a unique build on mode fails and stays INVALID.
            with pytest.raises(sa.exc.IntegrityError):
                connection.execute(
                    sa.text(
                        "CREATE UNIQUE INDEX CONCURRENTLY stats_snapshots_captured_at"
                        " ON stats_snapshots (mode)"
                    )
                )
        upgrade(scratch_url, "0004")
        with engine.connect() as connection:
            index = connection.execute(
                sa.text(
                    "SELECT i.indisvalid, i.indisunique FROM pg_index i"
                    " JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE c.relname = 'stats_snapshots_captured_at'"
                )
            ).one()
            assert tuple(index) == (True, False)
    finally:
        engine.dispose()


def test_0007_keeps_each_built_lists_last_play_and_sketch(scratch_url: str) -> None:
    upgrade(scratch_url, "0006")
    engine = sa.create_engine(scratch_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO bestplays_month_lists VALUES"
                    " (0, '2020-01-01Z', now(), 3, 10), (0, '2020-02-01Z', now(), 0, 10)"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO bestplays_months SELECT 0, '2020-01-01Z', p, 100 + p, 7, 1, 1,"
                    " 400.0 - p, 0, 'A', ('2020-01-0' || p || 'Z')::timestamptz, now()"
                    " FROM generate_series(1, 3) AS p"
                )
            )
        upgrade(scratch_url)
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT month, last_pp, extract(day FROM last_score_time), last_score_id,"
                    " sketch_pp FROM bestplays_month_lists ORDER BY month"
                )
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row[1:]) for row in rows] == [
        (397.0, 3, 103, [399.0, 398.0, 397.0]),
        (None, None, None, []),
    ]
