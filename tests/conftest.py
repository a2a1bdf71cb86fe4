"""Session-wide real services for the test suite.

Everything here starts lazily: a test gets Postgres, Redis, the simulator, a Celery worker
or the API only if it (or a fixture it uses) asks for them, so unit tests start nothing.
Each service runs once per session (once per xdist worker) in a temp dir on a free port
and is stopped at the end; a service that cannot start fails the tests that need it, with
its log in the error.

Fixtures:
    pg_server         session   PostgresServer (fsync off) with an empty `osutrack` database
    database_url      session   SQLAlchemy URL of that database, migrated to head
    db_engine         session   SQLAlchemy Engine on database_url
    db_session        function  Session in an outer transaction rolled back after the test
    redis_server      session   RedisServer
    redis_url         session   its URL
    redis_client      function  redis.Redis (decode_responses=True), flushed after the test
    simulator_process session   RunningSimulator: the process and its base_url
    simulator         function  SimulatorClient, simulator reset after the test
    service_env       session   service_env(**overrides) -> env dict for child processes
    worker_process    session   a real Celery worker on both queues (v2 upstream)
    api_url           session   base URL of granian serving api_shim.asgi:app
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

import hypothesis
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session
from support.processes import ManagedProcess, start_api, start_worker
from support.simulator import RunningSimulator, SimulatorClient, start_simulator

from devstack.commands import migrate_command, migrations_available, simulator_osu_env
from devstack.env import child_env
from devstack.procs import free_port
from devstack.services import PostgresServer, RedisServer

# The unit/db/integration markers, assigned to every test, and the unit tests' guard; the
# browser test's screenshot or skip banner at the end of the run.
pytest_plugins = ("support.layers", "support.browser_report")

# No wall-clock limits on property tests: `make test` runs them beside four busy workers,
# where generating an example may take seconds without anything being wrong.
hypothesis.settings.register_profile(
    "suite", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("suite")

ServiceEnv = Callable[..., dict[str, str]]


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres"), free_port(), fsync=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session database, migrated once with `python -m worker.migrate`."""
    if not migrations_available():
        pytest.fail("worker/migrate.py does not exist: cannot create the schema", pytrace=False)
    log_path = tmp_path_factory.mktemp("migrate") / "migrate.log"
    migrate = ManagedProcess(
        "migrate", migrate_command(), child_env({"DATABASE_URL": pg_server.url}), log_path
    )
    migrate.start()
    code = migrate.wait(timeout=120)
    if code != 0:
        pytest.fail(f"migrations failed (exit {code}):\n{migrate.output()}", pytrace=False)
    return pg_server.url


@pytest.fixture(scope="session")
def db_engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(db_engine: sa.Engine) -> Iterator[Session]:
    """A Session whose commits only release savepoints; everything is rolled back after.

    SQLAlchemy's recipe "Joining a Session into an External Transaction".
    """
    connection = db_engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A text-mode client; the database is emptied after the test.

    Kombu's queue bindings survive the flush: a session-wide Celery worker declares them
    once at start-up, and without them every task sent later would be silently dropped.
    """
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    bindings = {
        key: cast("set[str]", client.smembers(key)) for key in client.scan_iter("_kombu.binding.*")
    }
    client.flushdb()
    for key, members in bindings.items():
        if members:
            client.sadd(key, *members)
    client.close()


@pytest.fixture(scope="session")
def simulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    running = start_simulator(child_env(), tmp_path_factory.mktemp("simulator") / "sim.log")
    yield running
    running.process.stop()


@pytest.fixture
def simulator(simulator_process: RunningSimulator) -> Iterator[SimulatorClient]:
    client = SimulatorClient(simulator_process.base_url)
    yield client
    client.reset()
    client.session.close()


@pytest.fixture(scope="session")
def service_env(
    database_url: str, redis_url: str, simulator_process: RunningSimulator
) -> ServiceEnv:
    """`service_env(**overrides)`: the environment of a worker/API/beat child process.

    The test services plus the simulator as a v2 upstream, on top of this process's
    environment (PATH, HOME...); keyword arguments replace or add variables.
    """
    base = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **simulator_osu_env(simulator_process.base_url),
        "OSU_API_VERSION": "v2",
        # The upstream budget has tests of its own; elsewhere it would only slow the suite.
        "OSU_API_RATE_LIMIT": "off",
        # Likewise the per-IP limits: every test client is 127.0.0.1.
        "RATE_LIMIT_UPDATE": "off",
        "RATE_LIMIT_READ": "off",
        "OSU_API_RETRY_BACKOFF_SECONDS": "0.05",
        # Transient upstream failures are retried this long: the faults tests need a job to
        # give up within seconds, not the default two minutes.
        "OSU_API_RETRY_HORIZON_SECONDS": "2",
        "LOG_LEVEL": "INFO",
    }

    def build(**overrides: str) -> dict[str, str]:
        return child_env(base | overrides)

    return build


@pytest.fixture(scope="session")
def worker_process(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    worker = start_worker(
        service_env(),
        hostname="worker-session@%h",
        log_path=tmp_path_factory.mktemp("worker") / "worker.log",
    )
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def api_url(service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    api = start_api(service_env(), port, log_path=tmp_path_factory.mktemp("api") / "api.log")
    yield f"http://127.0.0.1:{port}"
    api.stop()
