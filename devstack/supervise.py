"""Foreground children under supervision, as a process manager runs them.

Each child's output is relayed line by line, prefixed with its name. A child that dies is
restarted after a delay that doubles with each recent death, with a loud line saying so; a
child that keeps dying (`RestartPolicy.max_deaths` times within `window_seconds`) makes
`check()` raise `GaveUp`, and the caller stops everything. Children are commands
(`Command`) or servers that start and stop themselves (`Server`: the private Postgres and
Redis of devstack/services.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from devstack.procs import spawn, stop_processes

_print_lock = threading.Lock()
NAME_WIDTH = 9


class _Clock:
    """When a child last wrote a line (see `Supervisor.quiet_for`)."""

    last_output = time.monotonic()


def say(name: str, line: str) -> None:
    """Print one line as `name | line`; whole lines only, so children never interleave."""
    with _print_lock:
        sys.stdout.write(f"{name:<{NAME_WIDTH}}| {line}\n")
        sys.stdout.flush()


def _pump(name: str, stream: IO[bytes], ready_text: str | None, ready: threading.Event) -> None:
    for raw in iter(stream.readline, b""):
        _Clock.last_output = time.monotonic()
        line = raw.decode(errors="replace").rstrip("\r\n")
        say(name, line)
        if ready_text is not None and ready_text in line:
            ready.set()
    stream.close()


def describe_exit(code: int) -> str:
    """`exited with status 1` or `killed by SIGKILL`."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class Unit(Protocol):
    """A supervised child."""

    name: str

    def start(self) -> None:
        """Start it (again); return once it is started."""

    def exit_code(self) -> int | None:
        """None while it runs, else how it ended (negative: the signal that killed it)."""

    @property
    def pid(self) -> int | None:
        """PID of the process last started."""

    def stop(self, timeout: float = 15.0) -> None:
        """Stop it (or, when it already died, reap it) and whatever it left in its group."""


class Command:
    """A command whose stdout and stderr are relayed with a `name` prefix.

    It counts as ready once it has printed a line containing `ready_text` (at once without).
    """

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        env: Mapping[str, str],
        ready_text: str | None = None,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.env = dict(env)
        self.ready_text = ready_text
        self.proc: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        self._ready.clear()
        self.proc = spawn(self.cmd, env=self.env, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self._pump = threading.Thread(
            target=_pump,
            args=(self.name, self.proc.stdout, self.ready_text, self._ready),
            daemon=True,
        )
        self._pump.start()

    def is_ready(self) -> bool:
        """True once the running process has printed `ready_text`."""
        return self.exit_code() is None and (self.ready_text is None or self._ready.is_set())

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None:
            stop_processes([self.proc], timeout=timeout)
        self.join_output()

    def join_output(self) -> None:
        """Wait (briefly) until the last output of the stopped process has been relayed."""
        if self._pump is not None:
            self._pump.join(timeout=2)


class _ServerLike(Protocol):
    @property
    def pid(self) -> int | None: ...
    @property
    def returncode(self) -> int | None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Server:
    """A server object (PostgresServer, RedisServer) that starts, waits and stops itself."""

    def __init__(self, name: str, server: _ServerLike) -> None:
        self.name = name
        self.server = server

    @property
    def pid(self) -> int | None:
        return self.server.pid

    def start(self) -> None:
        self.server.start()

    def exit_code(self) -> int | None:
        return self.server.returncode

    def stop(self, timeout: float = 15.0) -> None:  # each server has its own timeout
        self.server.stop()


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before restarting a dead child, and when to stop trying."""

    max_deaths: int = 5
    window_seconds: float = 120.0
    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 8.0

    def delay(self, recent_deaths: int) -> float:
        """The wait before the restart that follows the `recent_deaths`-th recent death."""
        return min(self.first_delay_seconds * 2 ** (recent_deaths - 1), self.max_delay_seconds)


class GaveUp(Exception):
    """A child kept dying: the whole stack must stop."""


class Supervisor:
    """Starts named children, restarts the ones that die, and stops them all together."""

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self.children: list[Unit] = []
        self._deaths: dict[str, deque[float]] = {}
        self._restart_at: dict[str, float] = {}

    def start(
        self,
        name: str,
        cmd: Sequence[str],
        env: Mapping[str, str],
        ready_text: str | None = None,
    ) -> Command:
        """Start `cmd` with `env` as a supervised child named `name`."""
        child = Command(name, cmd, env, ready_text)
        self.add(child)
        return child

    def add(self, unit: Unit) -> Unit:
        """Start `unit` and supervise it from now on."""
        # Listed first, so that `stop_all` also stops a unit interrupted while starting.
        self.children.append(unit)
        unit.start()
        say("devstack", f"started {unit.name} (pid {unit.pid})")
        return unit

    def exited(self) -> Unit | None:
        """The first child that is not running right now, if any."""
        return next((c for c in self.children if c.exit_code() is not None), None)

    def check(self) -> None:
        """One round: notice children that died, restart those whose delay has passed.

        Raises `GaveUp` when a child died `max_deaths` times within the policy's window.
        """
        for unit in self.children:
            now = time.monotonic()
            due = self._restart_at.get(unit.name)
            if due is None:
                code = unit.exit_code()
                if code is not None:
                    self._died(unit, describe_exit(code), now)
            elif now >= due:
                self._restart(unit)

    def keep_alive(self) -> bool:
        """`check()` for `wait_until(alive=...)`: restarts happen during start-up waits too."""
        self.check()
        return True

    def all_ready(self) -> bool:
        """True when every command child is running and has said it is ready."""
        return all(c.is_ready() for c in self.children if isinstance(c, Command))

    def quiet_for(self, seconds: float) -> bool:
        """True when no child has written a line for `seconds`."""
        return time.monotonic() - _Clock.last_output >= seconds

    def _died(self, unit: Unit, how: str, now: float) -> None:
        deaths = self._deaths.setdefault(unit.name, deque())
        deaths.append(now)
        while deaths and deaths[0] < now - self.policy.window_seconds:
            deaths.popleft()
        window = f"{self.policy.window_seconds:.0f} s"
        if len(deaths) >= self.policy.max_deaths:
            say(
                "devstack",
                f"!!! {unit.name} (pid {unit.pid}) {how}: it died {len(deaths)} times within "
                f"{window}, giving up",
            )
            raise GaveUp(f"{unit.name} died {len(deaths)} times within {window}")
        delay = self.policy.delay(len(deaths))
        say(
            "devstack",
            f"!!! {unit.name} (pid {unit.pid}) {how}: restarting it in {delay:g} s "
            f"(death {len(deaths)}; at {self.policy.max_deaths} within {window} everything "
            "stops)",
        )
        self._restart_at[unit.name] = now + delay

    def _restart(self, unit: Unit) -> None:
        # Reap it and whatever it left behind (pool processes, Postgres backends) first.
        unit.stop()
        try:
            unit.start()
        except Exception as exc:  # any failure to start is one more death
            del self._restart_at[unit.name]
            self._died(unit, f"could not be restarted ({exc})", time.monotonic())
            return
        del self._restart_at[unit.name]
        say("devstack", f"{unit.name} restarted (pid {unit.pid})")

    def stop_all(self, timeout: float = 15.0) -> None:
        """Stop commands together (SIGTERM, SIGKILL after `timeout` s), then the servers,
        last started first, so children stop before the servers they depend on.

        The last output of each command is relayed before this returns.
        """
        commands = [c for c in reversed(self.children) if isinstance(c, Command)]
        stop_processes([c.proc for c in commands if c.proc is not None], timeout=timeout)
        for command in commands:
            command.join_output()
        for unit in reversed(self.children):
            if not isinstance(unit, Command):
                unit.stop(timeout)
        self.children.clear()
        self._restart_at.clear()


def run_to_end(name: str, cmd: Sequence[str], env: Mapping[str, str]) -> int:
    """Run a one-shot command (migrations) in the foreground, relaying its output."""
    child = Command(name, cmd, env)
    child.start()
    assert child.proc is not None
    try:
        code = child.proc.wait()
    finally:
        child.stop()
    return code
