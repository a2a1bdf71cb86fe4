"""Turns for heavy /bestplays work in one API process: a bounded FIFO on the event loop.

A request that needs heavy work (`api_shim.ranking_endpoints`) waits here for its turn as
an asyncio future: no thread and no database connection is held while it waits. At most
`running` requests of the process hold a turn at once; at most `waiting` more wait for one,
and a request arriving past that bound is refused at once (503 with Retry-After), the only
refusal of a heavy request. A turn ends when its work on the thread pool ends, even when
the client has gone away meanwhile, so the bound counts the work really running.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from api_shim.blocking import BlockingPool

T = TypeVar("T")


class QueueFull(Exception):
    """More requests than the queue's bound already wait for a turn."""


def _retrieve(task: asyncio.Future[Any]) -> None:
    # Work whose waiter was cancelled: its outcome is dropped, not logged as unretrieved.
    if not task.cancelled():
        task.exception()


class Turn:
    """One request's turn; `run` puts work on the thread pool."""

    def __init__(self) -> None:
        self._running: asyncio.Future[Any] | None = None

    async def run(self, pool: BlockingPool, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)` on a pool thread. Shielded: a cancelled request stops waiting for
        it, but its turn lasts until the thread is done."""
        task = asyncio.ensure_future(pool.run(func, *args))
        task.add_done_callback(_retrieve)
        self._running = task
        return await asyncio.shield(task)

    def _when_idle(self, release: Callable[[], None]) -> None:
        task = self._running
        if task is None or task.done():
            release()
        else:
            task.add_done_callback(lambda _: release())


class HeavyQueue:
    """FIFO turns: `running` at once, at most `waiting` more in line (event loop only)."""

    def __init__(self, running: int, waiting: int) -> None:
        self._free = running
        self._waiting = waiting
        self._line: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._line)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Turn]:
        """Wait for a turn (QueueFull when the line is already at its bound)."""
        await self._acquire()
        turn = Turn()
        try:
            yield turn
        finally:
            turn._when_idle(self._release)

    async def _acquire(self) -> None:
        if self._free > 0 and not self._line:
            self._free -= 1
            return
        if len(self._line) >= self._waiting:
            raise QueueFull
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.append(ticket)
        try:
            await ticket
        except asyncio.CancelledError:
            if ticket.done() and not ticket.cancelled():
                # Handed the turn just as the request was cancelled: pass it on.
                self._release()
            elif ticket in self._line:
                self._line.remove(ticket)
            raise

    def _release(self) -> None:
        while self._line:
            ticket = self._line.popleft()
            if not ticket.done():
                ticket.set_result(None)
                return
        self._free += 1
