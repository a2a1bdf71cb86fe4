"""The Postgres handles of one API process (built at its start, `api_shim.services`).

The read endpoints use `reader` (raw per-thread connections, `api_shim.read_connections`);
the engine serves the rest (health, metrics). Neither connects before it is used.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from api_shim.read_connections import Reader
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
