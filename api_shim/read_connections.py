"""Raw psycopg2 connections for the read endpoints: one per serving thread, autocommit.

A read is one statement, so it needs no transaction, no pool checkout and no ping: each
thread keeps its own connection (opened on first use), which bounds
the connections of a process by its thread count. Every connection has `statement_timeout`
set, so no read runs unbounded. SQL is constant text with bound parameters; the per-user
lookups are PREPAREd once per connection, so Postgres parses and plans them once.

A connection found broken is dropped; when it had served earlier requests (Postgres was
restarted since, or the socket went stale), the statement is retried once on a fresh one.
Errors reach the caller as psycopg2 exceptions, which `api_shim.errors` maps to 503.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extensions
from sqlalchemy.engine import make_url

CONNECT_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class Prepared:
    """A statement PREPAREd under `name` on each connection; `sql` uses $1, $2, ..."""

    name: str
    sql: str
    # `EXECUTE name(%s, ...)`, one placeholder per parameter of `sql`.
    execute_sql: str = field(init=False)

    def __post_init__(self) -> None:
        arity = max((int(n) for n in re.findall(r"\$(\d+)", self.sql)), default=0)
        placeholders = ", ".join(["%s"] * arity)
        object.__setattr__(self, "execute_sql", f"EXECUTE {self.name}({placeholders})")


def libpq_dsn(database_url: str) -> str:
    """The libpq URI of a SQLAlchemy URL (`postgresql+psycopg2://` -> `postgresql://`)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


class _Local(threading.local):
    conn: psycopg2.extensions.connection | None = None
    prepared: set[str]

    def __init__(self) -> None:
        self.prepared = set()


class Reader:
    """Runs one read statement on the calling thread's connection."""

    def __init__(self, database_url: str, statement_timeout_ms: int) -> None:
        self._database_url = database_url
        # JIT off: compiling a plan costs tens of milliseconds, far more than any read here
        # runs, and Postgres turns it on by estimated cost (large windows at scale).
        # No parallel workers: each read is one of many concurrent requests, and helper
        # processes would only take the cores the other requests need.
        # extra_float_digits=1 (Postgres' default, set here whatever the server's
        # configuration says): doubles print in their shortest exact form, which the
        # bodies built by Postgres rely on (`api_shim.player_bodies`).
        self._options = (
            f"-c statement_timeout={statement_timeout_ms} -c jit=off"
            " -c max_parallel_workers_per_gather=0 -c extra_float_digits=1"
        )
        self._local = _Local()

    def fetch(self, sql: str | Prepared, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        """All rows of `sql` with `args` bound (`%s` placeholders for plain text)."""
        local = self._local
        reused = local.conn is not None
        try:
            return self._run(local, sql, args)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            broken = local.conn is None or local.conn.closed != 0
            if broken:
                self._drop(local)
            if not (broken and reused):
                raise
        return self._run(local, sql, args)

    def _run(self, local: _Local, sql: str | Prepared, args: Sequence[Any]) -> list[Any]:
        conn = self._connection(local)
        with conn.cursor() as cursor:
            if isinstance(sql, Prepared):
                if sql.name not in local.prepared:
                    cursor.execute(f"PREPARE {sql.name} AS {sql.sql}")
                    local.prepared.add(sql.name)
                cursor.execute(sql.execute_sql, args)
            else:
                cursor.execute(sql, args)
            return cursor.fetchall()

    def _connection(self, local: _Local) -> psycopg2.extensions.connection:
        if local.conn is None:
            local.prepared = set()
            conn = psycopg2.connect(
                libpq_dsn(self._database_url),
                options=self._options,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
            )
            conn.autocommit = True
            local.conn = conn
        return local.conn

    def discard(self) -> None:
        """Close the calling thread's connection; the next read opens a new one.

        Ending the session undoes everything it held: session advisory locks and settings
        changed with `set_config`, whatever statement failed on the way.
        """
        self._drop(self._local)

    @staticmethod
    def _drop(local: _Local) -> None:
        if local.conn is not None:
            local.conn.close()
        local.conn = None
        local.prepared = set()
