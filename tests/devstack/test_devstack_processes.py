"""Child-process handling shared by `make run` and the test fixtures."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from support.processes import wait_until_exited

from devstack.env import child_env
from devstack.procs import spawn, stop_processes
from devstack.supervise import Supervisor


def test_child_env_copies_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSUTRACK_TEST_VAR", "from-parent")

    env = child_env({"DATABASE_URL": "postgresql://x"})
    env["MUTATED"] = "1"

    assert env["OSUTRACK_TEST_VAR"] == "from-parent"
    assert env["DATABASE_URL"] == "postgresql://x"
    assert "MUTATED" not in os.environ


@pytest.mark.integration
def test_stop_escalates_to_sigkill_for_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # The child ignores SIGTERM and has a grandchild in its process group.
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    proc = spawn([sys.executable, "-c", script])
    deadline = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())

    stop_processes([proc], timeout=1.0)

    # Killed, not ended by its own 60 s sleep: the stop escalated once SIGTERM was ignored.
    assert proc.returncode == -signal.SIGKILL
    wait_until_exited(grandchild, timeout=5)


@pytest.mark.integration
def test_supervisor_notices_a_child_that_exits() -> None:
    supervisor = Supervisor()
    supervisor.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], child_env())
    supervisor.start("quitter", [sys.executable, "-c", "raise SystemExit(3)"], child_env())
    try:
        deadline = time.monotonic() + 10
        while (dead := supervisor.exited()) is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert dead.name == "quitter"
        assert dead.proc.returncode == 3
    finally:
        supervisor.stop_all()
    assert supervisor.children == []
