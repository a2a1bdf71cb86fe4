"""`make run`: the whole service on one machine, in the foreground.

    python -m devstack.run

Starts what the environment does not provide (a private Postgres when DATABASE_URL is unset,
a private Redis when REDIS_URL is unset, the osu! API simulator when no osu! credentials
are set), applies migrations, then runs the API (granian), one Celery worker and Celery
beat, relaying their output prefixed with their names. Ctrl-C or SIGTERM stops everything;
if any child exits on its own, everything is stopped and the exit status is 1.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from types import FrameType

from devstack.commands import (
    BACKGROUND_QUEUES,
    api_command,
    beat_command,
    migrate_command,
    migrations_available,
    simulator_command,
    simulator_osu_env,
    worker_command,
)
from devstack.env import child_env
from devstack.procs import port_open, wait_until
from devstack.services import PostgresServer, RedisServer, ServiceError
from devstack.supervise import Supervisor, run_to_end, say
from osutrack.settings import Settings, SettingsError, load_settings

STARTUP_TIMEOUT_SECONDS = 60.0


class _StopRequested(Exception):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise _StopRequested(signal.Signals(signum).name)


def _ignore_signals() -> None:
    """While shutting down, a second Ctrl-C must not cut the cleanup short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def simulator_warning(port: int) -> str:
    """The banner shown when the stack runs against the simulator instead of osu!."""
    bar = "!" * 78
    return "\n".join(
        [
            bar,
            "!!  NO osu! API CREDENTIALS ARE SET: ALL DATA COMES FROM THE SIMULATOR.",
            f"!!  Players, stats and scores are made up (simulator on 127.0.0.1:{port}).",
            "!!  To track real players, register an OAuth application at",
            "!!  https://osu.ppy.sh/home/account/edit (section 'OAuth'), then run",
            "!!      OSU_CLIENT_ID=<id> OSU_CLIENT_SECRET=<secret> make run",
            "!!  or, for the legacy v1 API:  OSU_API_KEY=<key> make run",
            bar,
        ]
    )


@contextlib.contextmanager
def private_services(settings: Settings) -> Iterator[dict[str, str]]:
    """Start the private Postgres/Redis the environment lacks; yield the URLs to use."""
    urls = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    servers: list[PostgresServer | RedisServer] = []
    try:
        if not settings.database_url:
            pg = PostgresServer(settings.data_dir / "postgres", settings.private_postgres_port)
            servers.append(pg)
            say("devstack", f"starting private Postgres on 127.0.0.1:{pg.port} ({pg.data_dir})")
            pg.start()
            urls["DATABASE_URL"] = pg.url
        if not settings.redis_url:
            rd = RedisServer(settings.data_dir / "redis", settings.private_redis_port)
            servers.append(rd)
            say("devstack", f"starting private Redis on 127.0.0.1:{rd.port} ({rd.data_dir})")
            rd.start()
            urls["REDIS_URL"] = rd.url
        yield urls
    finally:
        for server in reversed(servers):
            server.stop()


def app_commands(settings: Settings) -> dict[str, list[str]]:
    """The long-running children, by name, in start order."""
    return {
        "worker": worker_command(
            concurrency=settings.worker_concurrency, loglevel=settings.log_level
        ),
        "refresher": worker_command(
            queues=BACKGROUND_QUEUES,
            concurrency=1,
            hostname="refresher1@%h",
            loglevel=settings.log_level,
        ),
        "beat": beat_command(loglevel=settings.log_level),
        "api": api_command(settings.host, settings.port),
    }


def _serve(settings: Settings, supervisor: Supervisor) -> int:
    """Run everything; children always stop before the servers they depend on."""
    with private_services(settings) as urls:
        try:
            return _run_children(settings, supervisor, urls)
        finally:
            _ignore_signals()
            say("devstack", "stopping all processes")
            supervisor.stop_all()


def _run_children(settings: Settings, supervisor: Supervisor, urls: dict[str, str]) -> int:
    """Simulator (if needed), migrations, then API, worker and beat until one exits."""
    overrides = dict(urls)
    if not settings.osu_credentials_configured:
        port = settings.simulator_port
        print(simulator_warning(port), flush=True)
        supervisor.start(
            "simulator",
            simulator_command("127.0.0.1", port, "--auto-advance-seconds", "300"),
            child_env(),
        )
        wait_until(
            lambda: port_open("127.0.0.1", port),
            timeout=STARTUP_TIMEOUT_SECONDS,
            what=f"simulator on 127.0.0.1:{port}",
            alive=lambda: supervisor.exited() is None,
        )
        overrides |= simulator_osu_env(f"http://127.0.0.1:{port}")
    env = child_env(overrides)

    if migrations_available():
        code = run_to_end("migrate", migrate_command(), env)
        if code != 0:
            say("devstack", f"migrations failed (exit code {code}); not starting the service")
            return 1
    else:
        say("devstack", "worker.migrate is missing: the schema was NOT migrated")

    for name, cmd in app_commands(settings).items():
        supervisor.start(name, cmd, env)
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    wait_until(
        lambda: port_open(shown_host, settings.port),
        timeout=STARTUP_TIMEOUT_SECONDS,
        what=f"API on {settings.host}:{settings.port}",
        alive=lambda: supervisor.exited() is None,
    )
    base = f"http://{shown_host}:{settings.port}"
    say("devstack", f"API ready at {base}/  (interactive docs: {base}/docs)")
    say("devstack", "press Ctrl-C to stop")

    while (dead := supervisor.exited()) is None:
        time.sleep(0.5)
    say("devstack", f"{dead.name} exited unexpectedly (exit code {dead.proc.returncode})")
    return 1


def main() -> int:
    """Run the stack until Ctrl-C/SIGTERM (exit 0) or until a child dies (exit 1)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    supervisor = Supervisor()
    try:
        code = _serve(settings, supervisor)
    except _StopRequested as exc:
        say("devstack", f"stopped on {exc}")
        return 0
    except (ServiceError, TimeoutError) as exc:
        say("devstack", f"could not start: {exc}")
        return 1
    say("devstack", "stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
