"""Foreground children whose output is shown line by line, prefixed with their name."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from devstack.procs import spawn, stop_processes

_print_lock = threading.Lock()
NAME_WIDTH = 9


def say(name: str, line: str) -> None:
    """Print one line as `name | line`; whole lines only, so children never interleave."""
    with _print_lock:
        sys.stdout.write(f"{name:<{NAME_WIDTH}}| {line}\n")
        sys.stdout.flush()


def _pump(name: str, stream: IO[bytes]) -> None:
    for raw in iter(stream.readline, b""):
        say(name, raw.decode(errors="replace").rstrip("\r\n"))
    stream.close()


@dataclass
class Child:
    """A running child and the thread that relays its output."""

    name: str
    proc: subprocess.Popen[bytes]
    pump: threading.Thread = field(repr=False)


class Supervisor:
    """Starts named children, notices when one dies, and stops them all together."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, cmd: Sequence[str], env: Mapping[str, str]) -> Child:
        """Start `cmd` with `env`; its stdout and stderr are relayed with a `name` prefix."""
        proc = spawn(cmd, env=env, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        pump = threading.Thread(target=_pump, args=(name, proc.stdout), daemon=True)
        pump.start()
        child = Child(name, proc, pump)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        """The first child that is no longer running, if any."""
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop_all(self, timeout: float = 15.0) -> None:
        """SIGTERM every child, wait up to `timeout` seconds in all, SIGKILL the rest.

        The last output of each child is relayed before this returns.
        """
        stop_processes([c.proc for c in reversed(self.children)], timeout=timeout)
        for child in self.children:
            child.pump.join(timeout=2)
        self.children.clear()


def run_to_end(name: str, cmd: Sequence[str], env: Mapping[str, str]) -> int:
    """Run a one-shot command (migrations) in the foreground, relaying its output."""
    supervisor = Supervisor()
    child = supervisor.start(name, cmd, env)
    try:
        code = child.proc.wait()
    finally:
        supervisor.stop_all()
    return code
