"""Command lines of the service's processes, shared by `make run` and the test suite.

Each runs under the current interpreter (`python -m ...`), so nothing depends on the
virtualenv's bin directory being on PATH.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# Interactive updates get worker processes of their own, so a refresh backlog (which waits
# for its share of the upstream budget) never holds the process an update needs.
UPDATE_QUEUES = "updates"
BACKGROUND_QUEUES = "refresh,maintenance"


def simulator_command(host: str, port: int, *extra: str) -> list[str]:
    """The osu! API simulator; it prints `simulator listening on http://H:P` when ready."""
    return [sys.executable, "-m", "simulator", "--host", host, "--port", str(port), *extra]


def migrate_command() -> list[str]:
    """Alembic upgrade to head of the database named by DATABASE_URL."""
    return [sys.executable, "-m", "worker.migrate"]


def worker_command(
    *,
    queues: str = UPDATE_QUEUES,
    concurrency: int = 2,
    hostname: str = "worker1@%h",
    loglevel: str = "INFO",
) -> list[str]:
    """A Celery worker; it logs `celery@<hostname> ready.` once it consumes."""
    return [
        sys.executable, "-m", "celery", "-A", "worker", "worker",
        "--loglevel", loglevel,
        "-Q", queues,
        "--concurrency", str(concurrency),
        "--hostname", hostname,
    ]  # fmt: skip


def beat_command(*, loglevel: str = "INFO") -> list[str]:
    """Celery beat with the scheduler of celeryconfig (RedBeat, whose lock in Redis keeps a
    second beat idle, made to ride out a Redis restart: worker/beat.py)."""
    return [
        sys.executable, "-m", "celery", "-A", "worker", "beat",
        "--loglevel", loglevel,
    ]  # fmt: skip


# One access-log line per request: method, path (no query string), status, duration.
ACCESS_LOG_FORMAT = "%(method)s %(path)s %(status)d %(dt_ms).1f ms"
# Requests in progress per API process, waiting updates included (bench/README.md,
# "Waiting holds no thread").
BACKPRESSURE = 4096


def api_command(host: str, port: int, *, access_log: bool = False) -> list[str]:
    """The Falcon shim under granian (ASGI): 2 processes, one event loop each.

    A request waiting for its update job holds no thread: it is a future on the event
    loop, woken by the process's one subscription to the jobs' done channel
    (`api_shim.jobwait`). Calls that would block the loop run on each process's pool of
    API_THREADS threads (`api_shim.blocking`), which the app sizes from its settings, so
    granian's own blocking threads stay at 1 (all it allows for ASGI). A waiting update
    still counts against granian's backpressure (requests in progress per process, by
    default backlog / workers = 512), so it is raised to BACKPRESSURE: a burst of waiting
    updates must not leave a process unable to start a read. HTTP/1.1 only and no
    WebSocket handling: the API speaks neither HTTP/2 nor WebSockets, and a worker that
    does not have to sniff for them serves plain requests a little faster
    (bench/README.md, read endpoints). The access log is for `make run`; the tests and
    benchmarks leave it off.
    """
    logging = ["--access-log", "--access-log-fmt", ACCESS_LOG_FORMAT] if access_log else []
    return [
        sys.executable, "-m", "granian",
        "--interface", "asgi",
        "--host", host, "--port", str(port),
        "--workers", "2", "--backpressure", str(BACKPRESSURE),
        "--http", "1", "--no-ws",
        *logging,
        "api_shim.asgi:app",
    ]  # fmt: skip


def migrations_available() -> bool:
    """True when `worker/migrate.py` exists, judged without importing the worker package.

    Importing `worker` would build the Celery app from this process's environment.
    """
    spec = importlib.util.find_spec("worker")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(
        (Path(loc) / "migrate.py").exists() or (Path(loc) / "migrate" / "__init__.py").exists()
        for loc in spec.submodule_search_locations
    )


SIMULATOR_CLIENT_ID = "1"
SIMULATOR_CLIENT_SECRET = "simulator-secret"  # noqa: S105 - the simulator's fixed test secret


def simulator_osu_env(base_url: str) -> dict[str, str]:
    """The OSU_* variables that point workers at the simulator instead of osu!."""
    return {
        "OSU_API_BASE_URL": base_url,
        "OSU_CLIENT_ID": SIMULATOR_CLIENT_ID,
        "OSU_CLIENT_SECRET": SIMULATOR_CLIENT_SECRET,
    }
