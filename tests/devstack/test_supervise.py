"""The supervisor behind `make run` restarts a dead child and gives up on one that keeps dying.

Real child processes; the policy is shortened so that its delays stay small, and every
wait below is bounded by what that policy says should happen.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from devstack.env import child_env
from devstack.procs import free_port
from devstack.services import AOF_LOSS_WINDOW_SECONDS, RedisServer
from devstack.supervise import GaveUp, RestartPolicy, Server, Supervisor

# Marked here, not found from fixtures: the module supervises real child processes.
pytestmark = pytest.mark.integration

POLICY = RestartPolicy(
    max_deaths=3, window_seconds=60.0, first_delay_seconds=0.2, max_delay_seconds=0.4
)
# Starting a Python child (or Redis) takes well under this even on a busy machine.
START_SECONDS = 30.0
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def _checks_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float) -> None:
    """Run supervision rounds, as `make run` does, until `done()` (within `timeout` s)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s"
        supervisor.check()
        time.sleep(0.05)


def test_a_killed_child_is_restarted_after_the_delay_with_a_loud_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    supervisor = Supervisor(POLICY)
    child = supervisor.start("sleeper", SLEEPER, child_env())
    try:
        first = child.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)

        _checks_until(
            supervisor,
            lambda: child.pid != first and child.exit_code() is None,
            POLICY.first_delay_seconds + START_SECONDS,
        )

        out = capsys.readouterr().out
        assert f"!!! sleeper (pid {first}) killed by SIGKILL: restarting it in 0.2 s" in out
        assert f"sleeper restarted (pid {child.pid})" in out
    finally:
        supervisor.stop_all()


def test_a_child_that_keeps_dying_makes_the_supervisor_give_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    supervisor = Supervisor(POLICY)
    bystander = supervisor.start("bystander", SLEEPER, child_env())
    supervisor.start("quitter", [sys.executable, "-c", "raise SystemExit(3)"], child_env())
    restarts_bound = POLICY.max_deaths * (POLICY.max_delay_seconds + START_SECONDS)
    try:
        with pytest.raises(GaveUp, match="quitter died 3 times within 60 s"):
            _checks_until(supervisor, lambda: False, restarts_bound)
        out = capsys.readouterr().out
        assert out.count("!!! quitter") == POLICY.max_deaths
        assert out.count("quitter restarted") == POLICY.max_deaths - 1
        assert "exited with status 3" in out
        assert bystander.exit_code() is None
    finally:
        supervisor.stop_all()
    assert bystander.exit_code() is not None
    assert supervisor.children == []


def test_a_killed_server_is_restarted_with_its_data(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", free_port())
    supervisor = Supervisor(POLICY)
    supervisor.add(Server("redis", server))
    try:
        with redis.Redis.from_url(server.url, socket_timeout=5) as client:
            client.set("kept", "yes")
        # In the append-only file by now.
        time.sleep(AOF_LOSS_WINDOW_SECONDS)
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)

        _checks_until(
            supervisor,
            lambda: server.pid != first and server.is_running(),
            POLICY.first_delay_seconds + START_SECONDS,
        )

        with redis.Redis.from_url(server.url, socket_timeout=5) as client:
            assert client.get("kept") == b"yes"
    finally:
        supervisor.stop_all()
    assert not server.is_running()
