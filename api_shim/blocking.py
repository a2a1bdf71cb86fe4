"""The thread pool of each API process, for calls that would block its event loop.

The shim runs on one asyncio event loop per process. Work that may block for more than a
moment (Postgres statements of unbounded size, the heavy /bestplays bodies, the short Redis
and broker steps of POST /update, /health and /metrics) runs here, on at most `threads`
threads per process (API_THREADS); a request waiting for such a thread holds none.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class BlockingPool:
    """A thread pool created on first use in each process (granian forks its workers)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0

    def _current(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is not None and self._pid == os.getpid():
            return executor
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                # A pool inherited across a fork has no threads in this process.
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="api")
                self._pid = os.getpid()
            return self._executor

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)` on a pool thread; the caller's coroutine waits without a thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._current(), functools.partial(func, *args))
