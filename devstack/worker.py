"""`make worker`: one more Celery worker for the stack that `make run` runs.

    python -m devstack.worker [--queues updates] [--concurrency N]

With DATABASE_URL and REDIS_URL unset, it joins the stack of `make run` started from the
same OSUTRACK_DATA_DIR, with the configuration that `make run` wrote to stack.env there (the
URLs of its private services, its simulator when it has no osu! credentials, and every
other setting as `make run` saw it: a worker with another upstream budget, say, would not
share the stack's). With both URLs set, it joins those services like any other worker.
The worker runs in the foreground under its own name (`extra<pid>@host`); Ctrl-C stops it
with a warm shutdown.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from devstack.commands import UPDATE_QUEUES, worker_command
from devstack.env import child_env, read_env_file
from osutrack.settings import SettingsError, load_settings


def _parser(default_concurrency: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack.worker", description=__doc__)
    parser.add_argument(
        "--queues", default=UPDATE_QUEUES, help="comma-separated queues (default: %(default)s)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=default_concurrency,
        help="worker processes (default: WORKER_CONCURRENCY, %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    env = child_env()
    try:
        settings = load_settings(env)
        if not (settings.database_url and settings.redis_url):
            env_file = settings.stack_env_path
            try:
                env = child_env(read_env_file(env_file))
            except FileNotFoundError:
                print(
                    f"make worker: no `make run` to join: {env_file} does not exist (start "
                    "`make run` with the same OSUTRACK_DATA_DIR first, or set DATABASE_URL "
                    "and REDIS_URL)",
                    file=sys.stderr,
                )
                return 2
            print(f"make worker: joining the stack of `make run` ({env_file})", flush=True)
            settings = load_settings(env)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    args = _parser(settings.worker_concurrency).parse_args(argv)
    if args.concurrency < 1:
        print("--concurrency must be at least 1", file=sys.stderr)
        return 2
    hostname = f"extra{os.getpid()}@{socket.gethostname()}"
    cmd = worker_command(
        queues=args.queues,
        concurrency=args.concurrency,
        hostname=hostname,
        loglevel=settings.log_level,
    )
    print(f"make worker: {hostname} on {args.queues}, concurrency {args.concurrency}", flush=True)
    # The worker replaces this process, so Ctrl-C and SIGTERM reach Celery itself.
    os.execve(cmd[0], cmd, env)  # noqa: S606 - a fixed argument list
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
