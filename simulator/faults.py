"""Injected upstream failures: a FIFO queue of faults applied to matching requests.

A fault matches a request when its ``path_prefix`` is a prefix of the path, or, without a
prefix, when the path is an API path (``/api/...``); the token endpoint is only hit when a
prefix names it. Control paths (``/_sim/...``) are never faulted so a test can always clear
the queue. The first matching fault in the queue is used and its count decremented.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from simulator.requestlog import USER_ENDPOINTS
from simulator.responses import bad_request

KINDS = frozenset(
    {
        "http_401",
        "http_429",
        "http_500",
        "http_502",
        "http_503",
        "http_504",
        "garbage",
        "truncated",
        "slow",
        "empty_user",
    }
)
UNTIL_CLEARED = -1
DEFAULT_SLOW_MS = 3000


@dataclass(slots=True)
class Fault:
    """One queued fault; ``count`` -1 means it stays until cleared."""

    kind: str
    count: int = 1
    retry_after: float | None = None
    body: str = "json"
    delay_ms: int = DEFAULT_SLOW_MS
    path_prefix: str | None = None

    def matches(self, path: str, endpoint: str) -> bool:
        """True if this fault applies to a request for ``path`` (classified ``endpoint``)."""
        if path.startswith("/_sim"):
            return False
        if self.kind == "empty_user" and endpoint not in USER_ENDPOINTS:
            return False
        if self.path_prefix is not None:
            return path.startswith(self.path_prefix)
        return path.startswith("/api/")

    def describe(self) -> dict[str, Any]:
        """JSON view for ``GET /_sim/faults``."""
        return {
            "kind": self.kind,
            "count": self.count,
            "retry_after": self.retry_after,
            "body": self.body,
            "delay_ms": self.delay_ms,
            "path_prefix": self.path_prefix,
        }


def _number(spec: dict[str, Any], name: str) -> float | None:
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise bad_request(f"{name} must be a non-negative number")
    return float(value)


def parse_fault(spec: Any) -> Fault:
    """Validate the JSON body of ``POST /_sim/faults``; raises a 400 JsonError."""
    if not isinstance(spec, dict):
        raise bad_request("expected a JSON object")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise bad_request(f"kind must be one of {sorted(KINDS)}")
    count = spec.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or (count < 1 and count != -1):
        raise bad_request("count must be a positive integer or -1")
    body = spec.get("body", "json")
    if body not in ("json", "edge"):
        raise bad_request('body must be "json" or "edge"')
    prefix = spec.get("path_prefix")
    if prefix is not None and (not isinstance(prefix, str) or not prefix.startswith("/")):
        raise bad_request("path_prefix must be a path starting with /")
    delay = _number(spec, "delay_ms")
    return Fault(
        kind=kind,
        count=count,
        retry_after=_number(spec, "retry_after"),
        body=body,
        delay_ms=DEFAULT_SLOW_MS if delay is None else int(delay),
        path_prefix=prefix,
    )


class FaultQueue:
    """Thread-safe queue of pending faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` behind the existing ones."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        """JSON view of the queue."""
        with self._lock:
            return [f.describe() for f in self._faults]

    def take(self, path: str, endpoint: str) -> Fault | None:
        """The fault to apply to this request, consuming one use of it, or None."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, endpoint):
                    if fault.count != UNTIL_CLEARED:
                        fault.count -= 1
                        if fault.count == 0:
                            self._faults.remove(fault)
                    return fault
            return None
