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
class ProcessResources:
    """The connections and threads of one API process."""

    database: Database
    broker: Broker
    blocking: BlockingPool
    job_waits: JobWaits

    @classmethod
    def build(cls, settings: Settings) -> ProcessResources:
        blocking = BlockingPool(settings.api_threads)
        return cls(
            Database(settings),
            Broker(settings),
            blocking,
            JobWaits(settings.redis_url, blocking),
        )


class Services:
    """Built once by `create_app`, before granian forks its workers; each process then
    builds its own `ProcessResources` as it starts serving (`start`, on the ASGI lifespan
    startup), so no connection, pool or thread crosses a fork."""

    def __init__(self, settings: Settings, *, reads_on_loop: bool = True) -> None:
        self.settings = settings
        self.reads_on_loop = reads_on_loop
        self._process: ProcessResources | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, reads_on_loop: bool = True) -> Services:
        return cls(settings, reads_on_loop=reads_on_loop)

    def start(self) -> ProcessResources:
        """This process's resources, built on the first call (later calls: the lifespan
        of a test client, which starts once per request, or a server without lifespan
        events, whose first request builds them)."""
        current = self._process
        if current is None:
            current = self._process = ProcessResources.build(self.settings)
        return current

    @property
    def database(self) -> Database:
        return self.start().database

    @property
    def broker(self) -> Broker:
        return self.start().broker

    @property
    def blocking(self) -> BlockingPool:
        return self.start().blocking

    @property
    def job_waits(self) -> JobWaits:
        return self.start().job_waits

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


class StartServices:
    """Falcon middleware: builds the process's `Services` resources at lifespan startup."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def process_startup(self, scope: Any, event: Any) -> None:
        self._services.start()
