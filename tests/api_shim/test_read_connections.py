"""The shim's per-thread read connections against a real Postgres."""

from __future__ import annotations

import psycopg2
import pytest

from api_shim.read_connections import Prepared, Reader, libpq_dsn

ONE = Prepared("osutrack_test_one", "SELECT $1::int + 1")


def test_a_dropped_connection_is_replaced_transparently(database_url: str) -> None:
    reader = Reader(database_url, 5000)
    assert reader.fetch(ONE, (1,)) == [(2,)]
    backend = reader.fetch("SELECT pg_backend_pid()", ())[0][0]
    admin = psycopg2.connect(libpq_dsn(database_url))
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (backend,))
    finally:
        admin.close()
    # The statement is PREPAREd again on the new connection.
    assert reader.fetch(ONE, (2,)) == [(3,)]
    assert reader.fetch("SELECT pg_backend_pid()", ())[0][0] != backend


def test_statement_timeout_is_an_operational_error_and_the_connection_survives(
    database_url: str,
) -> None:
    reader = Reader(database_url, 100)
    with pytest.raises(psycopg2.OperationalError):
        reader.fetch("SELECT pg_sleep(2)", ())
    assert reader.fetch(ONE, (4,)) == [(5,)]


def test_an_unreachable_database_is_an_operational_error() -> None:
    reader = Reader("postgresql+psycopg2://x@127.0.0.1:9/x", 100)
    with pytest.raises(psycopg2.OperationalError):
        reader.fetch(ONE, (1,))
