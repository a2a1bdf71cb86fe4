"""Real service processes for integration tests: Celery workers, beat, the API.

A `ManagedProcess` owns one child: its output goes to a log file (read it with `output()`),
`start()` blocks until a readiness check passes and raises with the log tail if it does not,
`stop()` sends SIGTERM then SIGKILL, and `kill(sig)` sends any signal for fault tests.
Children die with the test session even if pytest itself is killed (see devstack.procs).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import requests

from devstack.commands import api_command, beat_command, worker_command
from devstack.procs import spawn, stop_process, tail, wait_until

# Test workers take every queue unless a test says otherwise.
ALL_QUEUES = "updates,refresh,maintenance"

READY_TIMEOUT_SECONDS = 60.0


class ManagedProcess:
    """One child process with its output captured to `log_path`."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        env: Mapping[str, str],
        log_path: Path | None = None,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.env = dict(env)
        self.log_path = log_path or _log_dir() / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None

    @property
    def pid(self) -> int:
        """PID of the running child (its process group has the same id)."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """Exit code once the child has exited, else None."""
        return None if self._proc is None else self._proc.poll()

    def is_running(self) -> bool:
        """True while the child is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(
        self,
        ready: Callable[[ManagedProcess], bool] | None = None,
        *,
        timeout: float = READY_TIMEOUT_SECONDS,
    ) -> ManagedProcess:
        """Start the child and wait until `ready(self)` is true; returns self.

        Raises `RuntimeError` with the end of the log if the child exits or is not ready
        within `timeout` seconds; the child is stopped first.
        """
        if self.is_running():
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._proc = spawn(self.cmd, env=self.env, stdout=self._log)
        if ready is None:
            return self
        try:
            wait_until(
                lambda: ready(self),
                timeout=timeout,
                what=f"{self.name} ({' '.join(self.cmd)})",
                alive=self.is_running,
                details=lambda: tail(self.log_path, 60),
            )
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(str(exc)) from None
        return self

    def wait_for_output(self, text: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Block until `text` appears in the log (`TimeoutError` with the log tail if not)."""
        wait_until(
            lambda: text in self.output(),
            timeout=timeout,
            what=f"{text!r} in the output of {self.name}",
            details=lambda: tail(self.log_path, 60),
        )

    def output(self) -> str:
        """Everything the child has written to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the child only (not its pool processes), without waiting."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to exit and return its exit code."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL to its whole group after `timeout` seconds; exit code."""
        code = None
        if self._proc is not None:
            code = stop_process(self._proc, sig=signal.SIGTERM, timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


def _log_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="osutrack-proc-"))


def _output_contains(text: str) -> Callable[[ManagedProcess], bool]:
    return lambda proc: text in proc.output()


def start_worker(
    env: Mapping[str, str],
    queues: str = ALL_QUEUES,
    concurrency: int = 2,
    hostname: str | None = None,
    log_path: Path | None = None,
) -> ManagedProcess:
    """A real `celery -A worker worker`, ready once it logs `<hostname> ready.`.

    Each worker gets a unique node name unless one is given, so several can run at once.
    """
    node = hostname or f"test-{uuid.uuid4().hex[:8]}@%h"
    cmd = worker_command(queues=queues, concurrency=concurrency, hostname=node)
    proc = ManagedProcess(f"worker-{node.split('@')[0]}", cmd, env, log_path)
    return proc.start(_output_contains(" ready."))


def start_beat(env: Mapping[str, str], log_path: Path | None = None) -> ManagedProcess:
    """A real `celery -A worker beat` with RedBeat, ready once it logs `beat: Starting...`."""
    proc = ManagedProcess("beat", beat_command(), env, log_path)
    return proc.start(_output_contains("beat: Starting..."))


def start_api(env: Mapping[str, str], port: int, log_path: Path | None = None) -> ManagedProcess:
    """granian serving `api_shim.asgi:app` on 127.0.0.1:`port` (API_THREADS from `env`).

    Ready once `GET /openapi.json` answers 200, i.e. a worker process has imported the app.
    """
    proc = ManagedProcess("api", api_command("127.0.0.1", port), env, log_path)
    return proc.start(lambda _proc: _answers(f"http://127.0.0.1:{port}/openapi.json"))


def _answers(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(url, timeout=2).status_code == 200
    return False


def has_exited(pid: int) -> bool:
    """True once `pid` has exited: reaped, or a zombie that its parent has yet to reap.

    A killed process whose parent is gone is re-parented to PID 1 or to the nearest
    subreaper (a container's init, a systemd user manager, some CI runners), which may reap
    it late; until then its pid still answers kill(pid, 0).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    # The state follows the command name, in parentheses that may hold anything.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state in {"Z", "X"}


def wait_until_exited(pid: int, timeout: float) -> None:
    """Return once `pid` has exited (see `has_exited`); `TimeoutError` after `timeout` s."""
    wait_until(lambda: has_exited(pid), timeout=timeout, what=f"pid {pid} exits", interval=0.05)
