"""What the resources share: the settings and this process's Postgres and Redis handles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from api_shim.blocking import BlockingPool
from api_shim.broker import Broker
from api_shim.db import Database
from api_shim.jobwait import JobWaits
from osutrack.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Services:
    """Built once by `create_app`; the connections inside open lazily per process."""

    settings: Settings
    database: Database
    broker: Broker
    blocking: BlockingPool
    job_waits: JobWaits
    reads_on_loop: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, *, reads_on_loop: bool = True) -> Services:
        blocking = BlockingPool(settings.api_threads)
        return cls(
            settings,
            Database(settings),
            Broker(settings),
            blocking,
            JobWaits(settings.redis_url, blocking),
            reads_on_loop,
        )

    async def read(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)`: a short Postgres read (/stats_history, /hiscores, /peak, and
        the stamp lookup of a /bestplays body the process already holds).

        Run on the event loop itself: one indexed statement of well under a millisecond,
        for which a hop to the thread pool costs more than it saves (bench/README.md,
        "Waiting holds no thread"). `reads_on_loop=False` runs them on the pool instead,
        the alternative that benchmark measures.
        """
        if self.reads_on_loop:
            return func(*args)
        return await self.blocking.run(func, *args)
