"""Open /docs in headless Chromium on a machine with no network but loopback.

Run by tests/browser/test_docs_offline.py inside a new network namespace (`unshare --net`),
whose only interface is its own loopback: the API (granian, as `make run` starts it) and
Chromium both run in it, so any file the page tried to fetch from elsewhere could not
load. Writes into OUT: openapi.json (as the API serves it), dom.html (the page after its
scripts ran), docs.png (a screenshot) and the logs of the API and of Chromium.

    python tests/support/offline_docs.py OUT CHROMIUM
"""

from __future__ import annotations

import fcntl
import socket
import struct
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from devstack.commands import api_command
from devstack.env import child_env
from devstack.procs import free_port, spawn, stop_process, tail, wait_until

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
START_TIMEOUT_SECONDS = 60.0
# Chromium's clock runs only while nothing is loading; 10 s of it is plenty for the page.
VIRTUAL_TIME_BUDGET_MS = 10_000
CHROMIUM_TIMEOUT_SECONDS = 90.0
# Every URL points at a closed port: the docs need neither Postgres nor Redis.
CLOSED_SERVICES = {
    "DATABASE_URL": "postgresql+psycopg2://x@127.0.0.1:9/x",
    "REDIS_URL": "redis://127.0.0.1:9/0",
}


def bring_loopback_up() -> None:
    """A new network namespace starts with `lo` down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def interfaces() -> list[str]:
    """Names of this network namespace's interfaces."""
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    return [line.split(":", 1)[0].strip() for line in lines]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def chromium(binary: str, profile: Path, log: Path, *args: str) -> bytes:
    """Run headless Chromium to the end and return its stdout; raises with its log when
    it fails."""
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        *args,
    ]
    with log.open("ab") as out:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=out,
            timeout=CHROMIUM_TIMEOUT_SECONDS,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}:\n{tail(log, 40)}")
    return done.stdout


def main(out: Path, binary: str) -> None:
    bring_loopback_up()
    if interfaces() != ["lo"]:
        raise RuntimeError(f"not an isolated network namespace: {interfaces()}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api_log = out / "api.log"
    with api_log.open("ab") as log:
        api = spawn(api_command("127.0.0.1", port), env=child_env(CLOSED_SERVICES), stdout=log)
    try:
        wait_until(
            lambda: answers(f"{base}/docs"),
            timeout=START_TIMEOUT_SECONDS,
            what=f"the API on {base}",
            alive=lambda: api.poll() is None,
            details=lambda: tail(api_log, 40),
        )
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:
            (out / "openapi.json").write_bytes(response.read())
        chrome_log = out / "chromium.log"
        with tempfile.TemporaryDirectory() as profiles:
            dom = chromium(binary, Path(profiles) / "dom", chrome_log, "--dump-dom", f"{base}/docs")
            (out / "dom.html").write_bytes(dom)
            chromium(
                binary,
                Path(profiles) / "shot",
                chrome_log,
                "--window-size=1280,1400",
                "--hide-scrollbars",
                f"--screenshot={out / 'docs.png'}",
                f"{base}/docs",
            )
    finally:
        stop_process(api)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
