"""The thread pool of each API process, for calls that would block its event loop.

The shim runs on one asyncio event loop per process. Work that may block for more than a
moment (Postgres statements of unbounded size, the heavy /bestplays bodies, the short Redis
and broker steps of POST /update, /health and /metrics) runs here, on at most `threads`
threads per process (API_THREADS); a request waiting for such a thread holds none.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class BlockingPool:
    """This process's thread pool; its threads start as work arrives."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="api")

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)` on a pool thread; the caller's coroutine waits without a thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(func, *args))
