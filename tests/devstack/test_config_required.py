"""A process started without the URLs (or credentials) it needs exits at once, non-zero,
with one line naming what is missing and how to join the stack of `make run`.

Real processes: the Celery worker, beat, the API under granian, the operator commands. The
URLs that are present point at closed ports: a process that did not stop at its check
would keep retrying them, and the bounded wait below would fail the test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devstack.commands import api_command, beat_command, migrate_command, worker_command
from devstack.env import child_env
from devstack.procs import free_port
from osutrack.settings import load_settings, missing_configuration

# Starting the interpreter and importing Celery or the app takes seconds on a busy machine;
# a process that did not stop at its check never exits at all.
EXIT_TIMEOUT_SECONDS = 60.0

CLOSED_DATABASE_URL = "postgresql+psycopg2://x:y@127.0.0.1:9/x"
CLOSED_REDIS_URL = "redis://127.0.0.1:9/0"
FULL = {
    "DATABASE_URL": CLOSED_DATABASE_URL,
    "REDIS_URL": CLOSED_REDIS_URL,
    "OSU_CLIENT_ID": "1",
    "OSU_CLIENT_SECRET": "secret",
    "OSU_API_KEY": "",
}
NO_CREDENTIALS = {"OSU_CLIENT_ID": "", "OSU_CLIENT_SECRET": "", "OSU_API_KEY": ""}
ADMIN = [sys.executable, "-m", "worker.admin", "refresh-all"]

CASES = [
    ("worker", worker_command(), {"REDIS_URL": ""}, "REDIS_URL not set"),
    ("worker", worker_command(), {"DATABASE_URL": ""}, "DATABASE_URL not set"),
    ("worker", worker_command(), NO_CREDENTIALS, "OSU_CLIENT_ID and OSU_CLIENT_SECRET"),
    ("beat", beat_command(), {"REDIS_URL": ""}, "REDIS_URL not set"),
    ("api", api_command("127.0.0.1", 0), {"DATABASE_URL": ""}, "DATABASE_URL not set"),
    ("api", api_command("127.0.0.1", 0), {"REDIS_URL": ""}, "REDIS_URL not set"),
    ("admin", ADMIN, {"DATABASE_URL": ""}, "DATABASE_URL not set"),
    ("migrate", migrate_command(), {"DATABASE_URL": ""}, "DATABASE_URL not set"),
]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("process", "cmd", "blanked", "missing"),
    CASES,
    ids=[f"{case[0]}-{'-'.join(case[2])}" for case in CASES],
)
def test_a_half_configured_process_exits_at_once_naming_what_is_missing(
    process: str, cmd: list[str], blanked: dict[str, str], missing: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = child_env({**FULL, **blanked, "OSUTRACK_DATA_DIR": str(data_dir)})
    if process == "api":
        cmd = api_command("127.0.0.1", free_port())

    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=EXIT_TIMEOUT_SECONDS, check=False
    )

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    ours = [line for line in output.splitlines() if f"{process} cannot start:" in line]
    # granian imports the app once per worker process, so the API says it once per process.
    assert ours, output
    assert all(line == ours[0] for line in ours)
    assert missing in ours[0]
    assert f"set -a; . {data_dir / 'stack.env'}; set +a" in ours[0]
    if process in ("worker", "beat"):
        assert len(ours) == 1
        # Celery's default broker is never tried.
        assert "amqp" not in output


def test_each_process_kind_asks_only_for_what_it_uses() -> None:
    nothing = load_settings({})
    everything = load_settings(FULL)
    urls_only = load_settings({**FULL, **NO_CREDENTIALS})

    for process in ("api", "worker", "beat", "admin", "migrate"):
        assert missing_configuration(everything, process) is None
        assert missing_configuration(nothing, process) is not None
    assert missing_configuration(urls_only, "api") is None
    assert missing_configuration(urls_only, "beat") is None
    assert "osu! API credentials" in str(missing_configuration(urls_only, "worker"))
    assert "REDIS_URL" not in str(missing_configuration(nothing, "admin"))
    assert "DATABASE_URL" not in str(missing_configuration(nothing, "beat"))
    assert "make worker" in str(missing_configuration(nothing, "worker"))


REFUSED_RATE = "RATE_LIMIT_READ='5/fortnight' is refused: expected a rate like 60/minute"
EMPTY_URL = "DATABASE_URL is set but empty: expected a SQLAlchemy Postgres URL"
# Celery reads its configuration (celeryconfig) before the worker's or beat's own check.
REFUSING = [
    ("celery", worker_command(), {"RATE_LIMIT_READ": "5/fortnight"}, REFUSED_RATE),
    ("celery", beat_command(), {"RATE_LIMIT_READ": "5/fortnight"}, REFUSED_RATE),
    ("api", api_command("127.0.0.1", 0), {"RATE_LIMIT_READ": "5/fortnight"}, REFUSED_RATE),
    ("api", api_command("127.0.0.1", 0), {"DATABASE_URL": ""}, EMPTY_URL),
    ("celery", worker_command(), {"DATABASE_URL": " "}, EMPTY_URL),
    ("admin", ADMIN, {"DATABASE_URL": ""}, EMPTY_URL),
    ("migrate", migrate_command(), {"RATE_LIMIT_READ": "5/fortnight"}, REFUSED_RATE),
]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("label", "cmd", "bad", "refusal"),
    REFUSING,
    ids=[f"{case[1][-1]}-{'-'.join(case[2])}" for case in REFUSING],
)
def test_a_refused_value_stops_the_process_with_one_line_naming_it(
    label: str, cmd: list[str], bad: dict[str, str], refusal: str, tmp_path: Path
) -> None:
    # Set directly: `child_env` unsets a variable given an empty value.
    env = {**child_env({**FULL, "OSUTRACK_DATA_DIR": str(tmp_path / "data")}), **bad}
    if label == "api":
        cmd = api_command("127.0.0.1", free_port())

    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=EXIT_TIMEOUT_SECONDS, check=False
    )

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    ours = [line for line in output.splitlines() if "cannot start:" in line]
    assert ours, output
    assert all(line.startswith(f"{label} cannot start: {refusal}") for line in ours), output
    if label != "api":
        assert done.returncode == 2
        assert "Traceback" not in output
