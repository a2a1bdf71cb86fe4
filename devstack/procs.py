"""Starting and stopping child processes without leaving orphans.

Every child runs in its own session (so a Ctrl-C in the terminal reaches only the dev
launcher, which then stops the children in order) and, on Linux, asks the kernel to send it
a signal when its parent dies, so even a launcher killed with SIGKILL leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> Callable[[], None]:
    """A `preexec_fn` that makes the child receive `sig` when its parent exits.

    CPython switches user and group before it calls `preexec_fn`, so the setting survives
    the switch (the kernel clears it on a credential change).
    """

    def set_pdeathsig() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)

    return set_pdeathsig


def spawn(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: IO[Any] | int | None = None,
    user: int | None = None,
    group: int | None = None,
    parent_death_signal: int = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session; stderr goes wherever stdout goes.

    `user`/`group` switch the child to another account (only root can). The child gets
    `parent_death_signal` if this process dies first.
    """
    preexec = _die_with_parent(parent_death_signal) if sys.platform == "linux" else None
    return subprocess.Popen(
        [os.fspath(part) for part in cmd],
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec,  # noqa: PLW1509 - only sets the parent-death signal
        user=user,
        group=group,
        extra_groups=[] if user is not None else None,
    )


def stop_processes(
    procs: Sequence[subprocess.Popen[Any]],
    *,
    sig: int = signal.SIGTERM,
    timeout: float = 15.0,
) -> None:
    """Send `sig` to every child at once, give them `timeout` seconds in all, then SIGKILL.

    Signalling all first lets them shut down in parallel, so the total wait is one grace
    period, not one per child. SIGKILL goes to each child's whole process group: it also
    takes pool processes a worker or server forked, which would otherwise outlive it.
    """
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait()
        # The leader has exited; anything still in its group is an orphaned helper.
        _kill_group(proc)


def stop_process(
    proc: subprocess.Popen[Any],
    *,
    sig: int = signal.SIGTERM,
    timeout: float = 15.0,
) -> int:
    """`stop_processes` for one child; returns its exit code."""
    stop_processes([proc], sig=sig, timeout=timeout)
    return proc.returncode


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    details: Callable[[], str] | None = None,
    interval: float = 0.1,
) -> None:
    """Poll `check` until it returns True; raise `TimeoutError` after `timeout` seconds.

    `alive` is asked between polls so that a process that already died fails at once
    instead of after the whole timeout; `details` (a log tail, say) goes into the error.
    """
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if alive is not None and not alive():
            reason = f"{what}: the process exited before it was ready"
            break
        if time.monotonic() > deadline:
            reason = f"{what}: not ready after {timeout:.0f} s"
            break
        time.sleep(interval)
    extra = details() if details is not None else ""
    raise TimeoutError(f"{reason}\n{extra}".rstrip())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file, or a note that it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return f"--- last lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:])
