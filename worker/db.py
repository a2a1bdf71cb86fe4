"""The workers' database engine and one session per task run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session


def make_engine(database_url: str, statement_timeout_ms: int, pool_size: int = 2) -> Engine:
    """A pooled engine that survives a Postgres restart and never waits forever on a lock."""
    return create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=2,
        pool_timeout=10,
        # A restarted Postgres leaves dead connections in the pool: test before use.
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": 5,
            "options": f"-c statement_timeout={statement_timeout_ms} -c lock_timeout=5000",
        },
    )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One session and transaction: committed if the block succeeds, else rolled back."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
