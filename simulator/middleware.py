"""Falcon middleware for upstream paths: latency, fault injection and the request log.

Latency and ``slow`` faults sleep without holding any lock, so concurrent requests wait in
parallel. Faults that replace the answer (429, 5xx, garbage) complete the response before
routing; ``truncated`` cuts the real body afterwards; ``empty_user`` is flagged on
``req.context`` and honoured by the user resources after authentication.
"""

from __future__ import annotations

import time
from typing import Any

import falcon
import orjson

from simulator.faults import Fault
from simulator.requestlog import classify
from simulator.runtime import Simulator

_GARBAGE = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    b"<body><p>Checking your browser before accessing osu.ppy.sh.</p></body></html>"
)
_GATEWAY_PAGES = {
    502: b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center></body></html>",
    503: b"<html><head><title>503 Service Unavailable</title></head><body>"
    b"<center><h1>503 Service Unavailable</h1></center></body></html>",
}


def _reply(resp: falcon.Response, status: int, content_type: str, body: bytes) -> None:
    resp.status = status
    resp.content_type = content_type
    resp.data = body
    resp.complete = True


def _apply_replacing_fault(resp: falcon.Response, fault: Fault) -> None:
    if fault.kind == "http_429":
        if fault.body == "edge":
            _reply(resp, 429, "text/plain", b"error code: 1015")
        else:
            _reply(resp, 429, falcon.MEDIA_JSON, orjson.dumps({"error": "Too Many Attempts."}))
        if fault.retry_after is not None:
            resp.set_header("Retry-After", f"{fault.retry_after:g}")
    elif fault.kind == "garbage":
        _reply(resp, 200, falcon.MEDIA_HTML, _GARBAGE)
    elif fault.kind == "http_401":
        # osu-web's answer to a missing or refused token (shared fixtures:
        # v2_error_unauthenticated_http401).
        _reply(resp, 401, falcon.MEDIA_JSON, orjson.dumps({"authentication": "basic"}))
    else:
        status = int(fault.kind.removeprefix("http_"))
        page = _GATEWAY_PAGES.get(status)
        if page is not None:
            _reply(resp, status, falcon.MEDIA_HTML, page)
        else:
            message = "Internal Server Error" if status == 500 else "Gateway Timeout"
            _reply(resp, status, falcon.MEDIA_JSON, orjson.dumps({"error": message}))


class UpstreamMiddleware:
    """Applies latency and faults to upstream requests and logs them."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Sleep the configured latency, then apply the next matching fault if any."""
        req.context.arrived = time.time()
        endpoint = classify(req.path)
        req.context.endpoint = endpoint
        req.context.truncate = False
        req.context.empty_user = False
        if endpoint is None:
            return
        if self._sim.latency_ms > 0:
            time.sleep(self._sim.latency_ms / 1000)
        fault = self._sim.faults.take(req.path, endpoint)
        if fault is None:
            return
        if fault.kind == "slow":
            time.sleep(fault.delay_ms / 1000)
        elif fault.kind == "truncated":
            req.context.truncate = True
        elif fault.kind == "empty_user":
            req.context.empty_user = True
        else:
            _apply_replacing_fault(resp, fault)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        """Truncate the body if asked to, then record the request."""
        endpoint = req.context.get("endpoint")
        if endpoint is None:
            return
        if req.context.get("truncate") and isinstance(resp.data, bytes):
            resp.data = resp.data[: len(resp.data) // 2]
            resp.status = 200
        status = falcon.http_status_to_code(resp.status)
        self._sim.log.record(
            time.time(), req.method, req.path, status, endpoint, req.context.get("arrived")
        )
