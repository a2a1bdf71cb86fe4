"""Threaded WSGI server: one thread per connection, so injected latency overlaps."""

from __future__ import annotations

import signal
import socketserver
import sys
import threading
from types import FrameType
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from simulator.app import build
from simulator.config import SimConfig
from simulator.runtime import Simulator


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """WSGIServer handling each connection in a daemon thread."""

    daemon_threads = True
    allow_reuse_address = True
    # Bursts of concurrent clients must queue in the kernel, not be refused.
    request_queue_size = 256


class QuietHandler(WSGIRequestHandler):
    """No per-request line on stderr (the request log is at ``/_sim/requests``)."""

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
