"""Alembic environment: migrations run online against the URL `worker.migrate` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from osutrack.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("worker.migrate must set sqlalchemy.url")

connectable = create_engine(url, poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        # Several processes may start at once (docker compose, make run): the advisory lock
        # makes the second wait and then find nothing left to do.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7428513)")
        context.run_migrations()
