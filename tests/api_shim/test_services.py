"""Each API process builds its connections and threads as it starts serving, not before."""

from __future__ import annotations

import asyncio

import pytest

from api_shim.app import create_app
from api_shim.services import ProcessResources, Services, StartServices
from osutrack.settings import Settings

# Nothing connects while the resources are built, so unreachable addresses are enough.
CLOSED_SETTINGS = Settings(
    database_url="postgresql+psycopg2://x@127.0.0.1:9/x",
    redis_url="redis://127.0.0.1:9/0",
)


def test_resources_are_built_at_lifespan_startup_once_per_process() -> None:
    services = Services.from_settings(CLOSED_SETTINGS)
    # Built before granian forks: nothing of a process may exist yet.
    assert services._process is None
    startup = StartServices(services)
    asyncio.run(startup.process_startup({"type": "lifespan"}, {"type": "lifespan.startup"}))
    built = services._process
    assert built is not None
    assert services.database is built.database
    assert services.broker is built.broker
    # A test client starts the lifespan once per request: the same resources stay.
    asyncio.run(startup.process_startup({"type": "lifespan"}, {"type": "lifespan.startup"}))
    assert services._process is built


def test_a_server_without_lifespan_builds_them_on_first_use() -> None:
    services = Services.from_settings(CLOSED_SETTINGS)
    assert services.blocking is services.blocking
    assert services._process is not None


def test_building_the_app_builds_no_process_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Settings] = []
    real_build = ProcessResources.build

    def build(settings: Settings) -> ProcessResources:
        built.append(settings)
        return real_build(settings)

    monkeypatch.setattr(ProcessResources, "build", staticmethod(build))
    # granian imports the app, then forks: whatever create_app built would be shared.
    create_app(CLOSED_SETTINGS)
    assert built == []
