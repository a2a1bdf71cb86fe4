"""Do two versions of the shim answer byte for byte alike? A corpus of raw requests.

Run: `.venv/bin/python -m bench.same_answers [--before-ref REF] [--users 200]`

Starts on 127.0.0.1 a private Postgres (seeded with `bench.seed`), Redis and the simulator
(`bench.budget_support.Stack`, no worker: update jobs stay queued), then the shim of
`--before-ref` (by default the last WSGI one, exported with `git archive`) and this tree's,
side by side. Every request of the corpus (each endpoint with valid, invalid and hostile
query strings, raw non-ASCII bytes, every method, CORS preflights, trailing slashes) is
sent over its own connection to one server, then to the other, and the two raw answers
compared: status line, headers in order (only `date` left out) and body. No worker runs,
so an update's job stays queued and the second server's request joins the one the first
created: the same job id and times in both answers (UPDATE_WAIT_SECONDS=1 keeps the
updates without `wait` short).

Prints every difference and a count; exits 1 if any.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import signal
import socket
import sys
import tempfile
from pathlib import Path

from bench import seed as bench_seed
from bench.budget_support import HOST, Stack, exit_on_sigterm
from bench.scale_support import LAST_WSGI_COMMIT
from bench.update_burst import _on_port, after_servers, before_server, running
from devstack.procs import free_port

READ_TIMEOUT_SECONDS = 30.0
UNKNOWN_JOB = "00000000-0000-4000-8000-000000000000"

PATHS = [
    "/ping",
    "/health",
    "/openapi.json",
    "/docs",
    "/peak",
    "/stats_history",
    "/hiscores",
    "/bestplays",
    f"/jobs/{UNKNOWN_JOB}",
    "/jobs/not-a-job",
    "/update",
    "/update/",
    "/peak/",
    "/nowhere",
]
QUERIES: list[bytes] = [
    b"",
    b"user=1&mode=0",
    b"user=2&mode=0&from=2019-01-01&to=2022-12-31",
    b"user=1",
    b"mode=0",
    b"user=abc&mode=0",
    b"user=0x10&mode=0",
    b"user=1&mode=9",
    b"user=1&mode=0&from=2020-02-30",
    b"user=1&mode=0&from=2021-01-02&to=2021-01-01",
    b"user=Player3&mode=0&userMode=username",
    b"user=nobody&mode=0&userMode=username",
    b"user=1&mode=0&userMode=x",
    b"mode=0&limit=5",
    b"mode=0&limit=5&from=2020-01-01&to=2020-03-31",
    b"mode=0&limit=0",
    b"mode=1&limit=10001",
    b"user=%ff&mode=0",
    b"user=\xff&mode=0",
    b"user=\xc3\xa9&mode=0&userMode=username",
    b"user=%C3%A9&mode=0&userMode=username",
    b"user=1&mode=0&wait=x",
    b"user=1&mode=0&wait=61",
    b"user=900000001&mode=0&wait=0",
    b"user=1&user=2&mode=0",
    b"x=" + b"a" * 5000,
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
EXTRA_HEADERS: list[list[tuple[str, str]]] = [
    [],
    [("Origin", "https://example.org"), ("Access-Control-Request-Method", "GET")],
    [
        ("Origin", "https://example.org"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "x-custom"),
    ],
    [("X-Forwarded-For", "203.0.113.9")],
]


def corpus() -> list[bytes]:
    """Raw HTTP/1.1 requests, each closing its connection."""
    requests = []
    for path, query, method in itertools.product(PATHS, QUERIES, METHODS):
        headers = EXTRA_HEADERS[1] if method == "OPTIONS" else []
        requests.append(_request(method, path, query, headers))
    for path, headers in itertools.product(PATHS, EXTRA_HEADERS[1:]):
        for method in ("GET", "OPTIONS", "POST"):
            requests.append(_request(method, path, b"user=1&mode=0", headers))
    return requests


def _request(method: str, path: str, query: bytes, headers: list[tuple[str, str]]) -> bytes:
    target = path.encode() + (b"?" + query if query else b"")
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [f"{name}: {value}".encode() for name, value in headers]
    lines += [b"Content-Length: 0", b"Connection: close", b"", b""]
    return b"\r\n".join(lines)


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection((HOST, port), timeout=READ_TIMEOUT_SECONDS) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def comparable(answer: bytes) -> tuple[bytes, list[bytes], bytes]:
    """Status line, header lines (but `date`, lower-cased names) and body."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() != b"date":
            headers.append(name.strip().lower() + b": " + value.strip())
    return status, headers, body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-ref", default=LAST_WSGI_COMMIT)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    differences = 0
    requests = corpus()
    with contextlib.ExitStack() as exits:
        out = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="same-answers-")))
        stack = Stack(out, exits)
        stack.start_backing()
        assert stack.postgres is not None
        bench_seed.seed(stack.postgres.url, args.users, 1)
        # No worker runs: an update without `wait` would wait the whole default.
        env = stack.env(UPDATE_WAIT_SECONDS="1")
        servers = [before_server(args.before_ref, out), after_servers(0, pooled=False)[0]]
        ports = [free_port(), free_port()]
        urls = [
            exits.enter_context(running(_on_port(server, port), port, env, out / f"api{i}.log"))
            for i, (server, port) in enumerate(zip(servers, ports, strict=True))
        ]
        print("comparing", servers[0].label, "with", servers[1].label, "at", urls, flush=True)
        for request in requests:
            first, second = (comparable(exchange(port, request)) for port in ports)
            if first != second:
                differences += 1
                print("---", request.split(b"\r\n")[0][:200])
                for part, a, b in zip(("status", "headers", "body"), first, second, strict=True):
                    if a != b:
                        print(f"  {part}: {a!r:.600}\n  {' ' * len(part)}  {b!r:.600}")
    print(f"{len(requests)} requests, {differences} answered differently")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
