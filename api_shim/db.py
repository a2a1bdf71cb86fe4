"""The Postgres handles of the shim, created lazily once per process.

Granian forks its workers after importing the app, and a pooled connection must never be
shared across a fork, so the engine is built on first use in each process (and rebuilt if
the process id changes). The read endpoints use `reader` (raw per-thread connections,
`api_shim.read_connections`); the engine serves the rest (health, metrics).
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import Engine, create_engine

from api_shim.read_connections import Reader
from osutrack.settings import Settings

POOL_SIZE = 5
POOL_MAX_OVERFLOW = 5
POOL_TIMEOUT_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 3


class Database:
    """Owns this process's SQLAlchemy engine for `settings.database_url`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._pid = 0
        self.reader = Reader(settings.database_url, settings.statement_timeout_ms)

    @property
    def engine(self) -> Engine:
        """The engine of the current process, created on first use."""
        with self._lock:
            if self._engine is None or self._pid != os.getpid():
                if self._engine is not None:
                    # Inherited across a fork: drop the parent's connections without
                    # closing them, since the parent still owns those sockets.
                    self._engine.dispose(close=False)
                self._engine = self._create()
                self._pid = os.getpid()
            return self._engine

    def _create(self) -> Engine:
        settings = self._settings
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
