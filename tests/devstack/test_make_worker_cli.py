"""`make worker` hands QUEUES and CONCURRENCY to devstack.worker, which refuses to start
when there is no `make run` to join."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devstack.env import child_env

# Marked here, not found from fixtures: the module runs `python -m devstack.worker`.
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# Starting the interpreter and importing the settings takes seconds on a busy machine.
EXIT_TIMEOUT_SECONDS = 60.0


def test_make_worker_passes_queues_and_concurrency() -> None:
    dry = subprocess.run(
        ["make", "-n", "worker", "QUEUES=updates,refresh", "CONCURRENCY=4"],
        cwd=REPO, capture_output=True, text=True, timeout=EXIT_TIMEOUT_SECONDS, check=True,
    )  # fmt: skip
    default = subprocess.run(
        ["make", "-n", "worker"],
        cwd=REPO, env=child_env({"QUEUES": "", "CONCURRENCY": ""}),
        capture_output=True, text=True, timeout=EXIT_TIMEOUT_SECONDS, check=True,
    )  # fmt: skip

    assert "-m devstack.worker --queues updates,refresh --concurrency 4" in dry.stdout
    assert "-m devstack.worker" in default.stdout
    assert "--queues" not in default.stdout


def test_make_worker_without_a_running_make_run_says_so(tmp_path: Path) -> None:
    env = child_env({"OSUTRACK_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "REDIS_URL": ""})

    done = subprocess.run(
        [sys.executable, "-m", "devstack.worker"],
        env=env, capture_output=True, text=True, timeout=EXIT_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip

    assert done.returncode == 2
    assert f"{tmp_path / 'stack.env'} does not exist" in done.stderr
