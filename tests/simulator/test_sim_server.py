"""``python -m simulator`` serves real HTTP, concurrently, and stops on SIGTERM."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

# Marked here, not found from fixtures: the module runs the simulator as a server process.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_subprocess_server() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port), "--latency-ms", "300"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"simulator listening on http://127.0.0.1:{port}"
        base = f"http://127.0.0.1:{port}"
        token = requests.post(
            f"{base}/oauth/token",
            data={
                "client_id": "1",
                "client_secret": "simulator-secret",
                "grant_type": "client_credentials",
                "scope": "public",
            },
            timeout=10,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def fetch(user_id: int) -> int:
            url = f"{base}/api/v2/users/{user_id}/scores/best?limit=100"
            return requests.get(url, headers=headers, timeout=10).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(fetch, range(1, 11)))
        assert statuses == [200] * 10
        # Ten requests with 300 ms latency each must overlap, not queue.
        assert time.monotonic() - started < 2.0
        truth = requests.get(f"{base}/_sim/users/1/0", timeout=10).json()
        assert len(truth["top_plays"]) == 100
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


@pytest.fixture
def simulator_port() -> Iterator[int]:
    """A `python -m simulator` on a free port, stopped (and checked to exit cleanly) after."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        yield port
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_connections_stay_open_between_requests(simulator_port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", simulator_port, timeout=10)
    bodies = []
    sockets = []
    for _ in range(3):
        connection.request("GET", "/_sim/latency")
        answer = connection.getresponse()
        bodies.append(json.loads(answer.read()))
        assert answer.version == 11
        assert not answer.will_close
        sockets.append(connection.sock)
    # All three answered on the one TCP connection, as osu! itself keeps it open.
    assert sockets[0] is not None
    assert sockets == [sockets[0]] * 3
    assert bodies == [bodies[0]] * 3
    connection.close()


def test_a_fault_that_ignores_the_body_leaves_the_connection_usable(simulator_port: int) -> None:
    fault = {"kind": "http_500", "count": 1, "path_prefix": "/oauth/token"}
    requests.post(f"http://127.0.0.1:{simulator_port}/_sim/faults", json=fault, timeout=10)
    connection = http.client.HTTPConnection("127.0.0.1", simulator_port, timeout=10)
    form = "client_id=1&client_secret=simulator-secret&grant_type=client_credentials"
    connection.request(
        "POST",
        "/oauth/token",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    failed = connection.getresponse()
    failed.read()
    assert failed.status == 500
    # The form the fault never read must not be taken for the next request line.
    connection.request("GET", "/_sim/latency")
    answer = connection.getresponse()
    assert answer.status == 200
    assert "latency_ms" in json.loads(answer.read())
    connection.close()
