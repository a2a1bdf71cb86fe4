"""Log of upstream requests (never the key or token) and counts per endpoint and status."""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import Any

MAX_ENTRIES = 100_000

_ROUTES = (
    (re.compile(r"/oauth/token/?"), "oauth_token"),
    (re.compile(r"/api/v2/users/?"), "v2_users_batch"),
    (re.compile(r"/api/v2/users/[^/]+/scores/best/?"), "v2_best"),
    (re.compile(r"/api/v2/users/[^/]+(/[^/]+)?/?"), "v2_user"),
    (re.compile(r"/api/get_user/?"), "v1_get_user"),
    (re.compile(r"/api/get_user_best/?"), "v1_get_user_best"),
)
USER_ENDPOINTS = frozenset(
    {"v2_user", "v2_best", "v2_users_batch", "v1_get_user", "v1_get_user_best"}
)


def classify(path: str) -> str | None:
    """Short endpoint name of an upstream path; None for control (``/_sim/``) paths."""
    if path.startswith("/_sim"):
        return None
    for pattern, name in _ROUTES:
        if pattern.fullmatch(path):
            return name
    return "unknown"


class RequestLog:
    """Thread-safe bounded log plus unbounded counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget every entry and counter."""
        with self._lock:
            self._entries: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)
            self._counts: dict[str, dict[str, int]] = {}
            self._total = 0

    def record(
        self,
        t: float,
        method: str,
        path: str,
        status: int,
        endpoint: str,
        arrived: float | None = None,
    ) -> None:
        """Append one finished request: `t` when it was answered, `arrived` when the
        simulator began to handle it (what a rate limit counts)."""
        entry = {
            "t": t,
            "arrived": t if arrived is None else arrived,
            "method": method,
            "path": path,
            "status": status,
            "endpoint": endpoint,
        }
        with self._lock:
            self._entries.append(entry)
            by_status = self._counts.setdefault(endpoint, {})
            by_status[str(status)] = by_status.get(str(status), 0) + 1
            self._total += 1

    def entries(self) -> list[dict[str, Any]]:
        """Snapshot of the log, oldest first."""
        with self._lock:
            return list(self._entries)

    def stats(self) -> dict[str, Any]:
        """``{"total": n, "by_endpoint": {endpoint: {status: n}}}``."""
        with self._lock:
            counts = {k: dict(v) for k, v in self._counts.items()}
            return {"total": self._total, "by_endpoint": counts}
