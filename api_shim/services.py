"""What the resources share: the settings and this process's Postgres and Redis handles."""

from __future__ import annotations

from dataclasses import dataclass

from api_shim.broker import Broker
from api_shim.db import Database
from osutrack.settings import Settings


@dataclass(frozen=True)
class Services:
    """Built once by `create_app`; the connections inside open lazily per process."""

    settings: Settings
    database: Database
    broker: Broker

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        return cls(settings, Database(settings), Broker(settings))
