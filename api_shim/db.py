"""The Postgres handles of one API process (built at its start, `api_shim.services`).

The read endpoints take their reader from `reads` (raw per-thread connections,
`api_shim.read_connections`, on a replica when one is healthy: `api_shim.replicas`); the
engine serves the rest (health, metrics), always on the primary. Neither connects before
it is used.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from api_shim.read_connections import Reader
from api_shim.replicas import ReadRouting
from osutrack.settings import Settings

POOL_SIZE = 5
POOL_MAX_OVERFLOW = 5
POOL_TIMEOUT_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 3


class Database:
    """This process's SQLAlchemy engine and read connections for `settings.database_url`."""

    def __init__(self, settings: Settings) -> None:
        self.engine = _create_engine(settings)
        self.reader = Reader(settings.database_url, settings.statement_timeout_ms)
        self.reads = ReadRouting(settings, self.reader)


def _create_engine(settings: Settings) -> Engine:
    return create_engine(
        settings.database_url,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={
            "options": f"-c statement_timeout={settings.statement_timeout_ms}",
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        },
    )
