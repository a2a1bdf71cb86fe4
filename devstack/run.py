"""`make run`: the whole service on one machine, in the foreground.

    python -m devstack.run

Starts what the environment does not provide (a private Postgres when DATABASE_URL is unset,
a private Redis when REDIS_URL is unset, the osu! API simulator when no osu! credentials
are set), writes what other processes need to join the stack to OSUTRACK_DATA_DIR/stack.env
(0600), applies migrations, then runs the API (granian, with an access log), the update
worker, the refresh worker and Celery beat, relaying their output prefixed with their names.

Every child is supervised: one that dies is restarted after a growing delay
(devstack/supervise.py); one that keeps dying stops everything and the exit status is 1.
Ctrl-C or SIGTERM stops everything (exit status 0).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import urllib.request
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
from devstack.env import child_env, write_env_file
from devstack.procs import port_open, wait_until
from devstack.services import PostgresServer, RedisServer, ServiceError
from devstack.supervise import GaveUp, Server, Supervisor, run_to_end, say
from osutrack.settings import Settings, SettingsError, declarations, load_settings
from simulator.identity import MAX_USER_ID, fixture_players

STARTUP_TIMEOUT_SECONDS = 60.0
# The summary is printed once the children have been silent this long (start-up banners
# and the first periodic tasks done), or after QUIET_WAIT_SECONDS whatever they print.
QUIET_SECONDS = 1.0
QUIET_WAIT_SECONDS = 10.0
POLL_SECONDS = 0.5


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


def simulated_players() -> str:
    """Which user ids the simulator knows, for the summary."""
    recorded = ", ".join(
        f"{user_id} = {player['username']}" for user_id, player in sorted(fixture_players().items())
    )
    return f"{recorded} (recorded players); any other id below {MAX_USER_ID:,} is Player<id>"


def ready_summary(settings: Settings, base: str, simulated: bool) -> list[str]:
    """The last lines of the first screen: where things are and what to try."""
    env_file = settings.stack_env_path
    if settings.rate_limit_update.off:
        limit = "POST /update has no per-client limit (RATE_LIMIT_UPDATE=off)"
    else:
        limit = (
            f"POST /update: {settings.rate_limit_update} per client; "
            "`RATE_LIMIT_UPDATE=off make run` lifts it for local experiments"
        )
    players = (
        f"simulated: {simulated_players()}"
        if simulated
        else f"real osu! players (osu! API {settings.effective_api_version})"
    )
    bar = "=" * 78
    return [
        bar,
        "osutrack-api is ready",
        f"  API       {base}/   interactive docs: {base}/docs",
        f"  Try       curl -X POST '{base}/update?user=2&mode=0'",
        f"  Players   {players}",
        f"  Limit     {limit}",
        f"  Services  URLs and passwords in {env_file} (mode 0600); to attach psql, celery or "
        f"python -m worker.admin: set -a; . {env_file}; set +a",
        "  Scale     make worker adds a worker (e.g. QUEUES=updates CONCURRENCY=4 make worker)",
        "  Stop      Ctrl-C stops every process",
        bar,
    ]


STACK_ENV_HEADER = """Written by `make run` (devstack/run.py), removed when it stops: what a process
needs to join its stack. The URLs (with the passwords) of its services, libpq's PG*
variables for psql, then every setting as `make run` saw it, so that a process joining
the stack (`make worker`) is configured as the stack's own are. Load it into a shell with
    set -a; . {0}; set +a
then run psql, celery -A worker ... or python -m worker.admin ..."""


def stack_configuration(stack: dict[str, str]) -> dict[str, str]:
    """`stack` (URLs, PG*, simulator) first, then every other setting of this process.

    A setting this process did not set is written empty (its default), except a URL, which
    must not be empty when set: it is written as its default.
    """
    inherited = child_env()
    rest = {
        declaration.variable: inherited.get(declaration.variable)
        or (declaration.default if declaration.refuse_empty else "")
        for declaration in declarations().values()
        if declaration.variable not in stack
    }
    return {**{name: value for name, value in stack.items() if value}, **rest}


def start_private_services(settings: Settings, supervisor: Supervisor) -> dict[str, str]:
    """Start the private Postgres/Redis the environment lacks, supervised.

    Returns what a process needs to use them: DATABASE_URL and REDIS_URL, plus libpq's
    PG* variables for psql when the Postgres is private.
    """
    found = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    if not settings.database_url:
        pg = PostgresServer(settings.data_dir / "postgres", settings.private_postgres_port)
        say("devstack", f"starting private Postgres on 127.0.0.1:{pg.port} ({pg.data_dir})")
        supervisor.add(Server("postgres", pg))
        found |= {"DATABASE_URL": pg.url, **pg.libpq_env()}
    if not settings.redis_url:
        rd = RedisServer(settings.data_dir / "redis", settings.private_redis_port)
        say("devstack", f"starting private Redis on 127.0.0.1:{rd.port} ({rd.data_dir})")
        supervisor.add(Server("redis", rd))
        found["REDIS_URL"] = rd.url
    return found


# What each child prints once it is up (the API is judged by GET /health instead).
WORKER_READY = " ready."
BEAT_READY = "beat: Starting..."


def app_commands(settings: Settings) -> dict[str, tuple[list[str], str | None]]:
    """The long-running children, by name, in start order, with their ready line."""
    return {
        "worker": (
            worker_command(concurrency=settings.worker_concurrency, loglevel=settings.log_level),
            WORKER_READY,
        ),
        "refresher": (
            worker_command(
                queues=BACKGROUND_QUEUES,
                concurrency=1,
                hostname="refresher1@%h",
                loglevel=settings.log_level,
            ),
            WORKER_READY,
        ),
        "beat": (beat_command(loglevel=settings.log_level), BEAT_READY),
        "api": (
            api_command(settings.host, settings.port, access_log=settings.access_log),
            None,
        ),
    }


def _healthy(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        return bool(response.status == 200)
    return False


def _serve(settings: Settings, supervisor: Supervisor) -> int:
    """Run everything; children always stop before the servers they depend on."""
    env_file = settings.stack_env_path
    wrote_env_file = False
    try:
        stack = start_private_services(settings, supervisor)
        if not settings.osu_credentials_configured:
            port = settings.simulator_port
            print(simulator_warning(port), flush=True)
            supervisor.start(
                "simulator",
                simulator_command(
                    "127.0.0.1",
                    port,
                    "--auto-advance-seconds",
                    "300",
                    # Kept beside the database, so a restart does not rewind the players.
                    "--state-file",
                    str(settings.data_dir / "simulator" / "world.json"),
                ),
                child_env(),
            )
            wait_until(
                lambda: port_open("127.0.0.1", port),
                timeout=STARTUP_TIMEOUT_SECONDS,
                what=f"simulator on 127.0.0.1:{port}",
                alive=supervisor.keep_alive,
            )
            stack |= simulator_osu_env(f"http://127.0.0.1:{port}")
        write_env_file(env_file, stack_configuration(stack), STACK_ENV_HEADER.format(env_file))
        wrote_env_file = True
        say("devstack", f"the stack's URLs and configuration are in {env_file} (mode 0600)")
        return _run_children(settings, supervisor, stack)
    finally:
        _ignore_signals()
        say("devstack", "stopping all processes")
        supervisor.stop_all()
        if wrote_env_file:
            env_file.unlink(missing_ok=True)


def _run_children(settings: Settings, supervisor: Supervisor, stack: dict[str, str]) -> int:
    """Migrations, then API, workers and beat, supervised until a child keeps dying."""
    env = child_env(stack)
    if migrations_available():
        code = run_to_end("migrate", migrate_command(), env)
        if code != 0:
            say("devstack", f"migrations failed (exit code {code}); not starting the service")
            return 1
    else:
        say("devstack", "worker.migrate is missing: the schema was NOT migrated")

    for name, (cmd, ready_text) in app_commands(settings).items():
        supervisor.start(name, cmd, env, ready_text)
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    base = f"http://{shown_host}:{settings.port}"
    wait_until(
        lambda: supervisor.all_ready() and _healthy(f"{base}/health"),
        timeout=STARTUP_TIMEOUT_SECONDS,
        what=f"every worker and beat ready, and GET {base}/health answering 200",
        alive=supervisor.keep_alive,
        interval=POLL_SECONDS,
    )
    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: supervisor.quiet_for(QUIET_SECONDS),
            timeout=QUIET_WAIT_SECONDS,
            what="a quiet moment",
            alive=supervisor.keep_alive,
        )
    for line in ready_summary(settings, base, not settings.osu_credentials_configured):
        say("devstack", line)

    while True:
        supervisor.check()
        time.sleep(POLL_SECONDS)


def main() -> int:
    """Run the stack until Ctrl-C/SIGTERM (exit 0) or until a child keeps dying (exit 1)."""
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
    except GaveUp as exc:
        say("devstack", f"stopped: {exc}")
        return 1
    except (ServiceError, TimeoutError) as exc:
        say("devstack", f"could not start: {exc}")
        return 1
    say("devstack", "stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
