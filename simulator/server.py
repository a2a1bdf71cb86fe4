"""Threaded WSGI server: one thread per connection, so injected latency overlaps."""

from __future__ import annotations

import io
import signal
import socketserver
import sys
import threading
from types import FrameType
from typing import IO, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from simulator.app import build
from simulator.config import SimConfig
from simulator.runtime import Simulator


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """WSGIServer handling each connection in a daemon thread."""

    daemon_threads = True
    allow_reuse_address = True
    # Bursts of concurrent clients must queue in the kernel, not be refused.
    request_queue_size = 256


class KeepAliveServerHandler(ServerHandler):
    """Answers as HTTP/1.1, so a client may send its next request on the same connection."""

    http_version = "1.1"

    def close(self) -> None:
        """End the response; a response without a length ends the connection too."""
        headers = getattr(self, "headers", None)  # set by start_response
        if headers is None or "Content-Length" not in headers:
            # Without a length the client can only find the end of the body by the close.
            self.request_handler.close_connection = True  # type: ignore[attr-defined]
        super().close()


class QuietHandler(WSGIRequestHandler):
    """HTTP/1.1 keep-alive, and no per-request line on stderr (the request log is at
    ``/_sim/requests``).

    wsgiref answers one request per connection (HTTP/1.0). The real API keeps connections
    open, so a client here would pay a TCP connect and a new server thread per request
    that it never pays against osu!, and that cost would show up in benchmarks as the
    client's and the simulator's own.
    """

    protocol_version = "HTTP/1.1"
    # wsgiref writes the headers and the body separately: with Nagle on, the body would
    # wait for the client's delayed ACK of the headers (40 ms) on a kept-open connection.
    disable_nagle_algorithm = True

    def handle(self) -> None:
        """Serve requests on this connection until the client closes it or asks to."""
        self.close_connection = True
        self._handle_one()
        while not self.close_connection:
            self._handle_one()

    def _handle_one(self) -> None:
        # WSGIRequestHandler.handle, with an HTTP/1.1 ServerHandler.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():
            self.close_connection = True
            return
        body = self._read_body()
        if body is None:
            return
        handler = KeepAliveServerHandler(
            body,
            cast(IO[bytes], self.wfile),
            self.get_stderr(),
            self.get_environ(),
            multithread=False,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]

    def _read_body(self) -> io.BytesIO | None:
        """The whole request body, read before the app runs; None after an error answer.

        An app that answers without reading the body (an injected fault on the token
        endpoint) would otherwise leave it on the connection, to be parsed as the next
        request line. Bodies here are small forms and JSON, so reading them first is cheap.
        """
        if self.headers.get("Transfer-Encoding"):
            # Chunked bodies are not used by any client of the simulator; refuse them
            # rather than guess where they end.
            self.send_error(411)
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.send_error(400, "Bad Content-Length")
            self.close_connection = True
            return None
        return io.BytesIO(self.rfile.read(length))

    def log_message(self, format: str, *args: object) -> None:
        """Discard access-log lines."""


def _auto_advance(sim: Simulator, seconds: float, stop: threading.Event) -> None:
    while not stop.wait(seconds):
        with sim.world.lock:
            sim.world.advance_all(1)


def serve(config: SimConfig) -> None:
    """Serve until SIGTERM or SIGINT, printing the listening line once ready."""
    app, sim = build(config)
    server = make_server(
        config.host, config.port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        # shutdown() waits for serve_forever to return, so it must run off the main thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if config.auto_advance_seconds > 0:
        threading.Thread(
            target=_auto_advance, args=(sim, config.auto_advance_seconds, stop), daemon=True
        ).start()
    host, port = config.host, server.server_port
    sys.stdout.write(f"simulator listening on http://{host}:{port}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        server.server_close()
