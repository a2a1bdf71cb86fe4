"""A Celery worker refuses to start without the configuration it needs.

`celeryd_init` fires before the worker prints its banner or touches the broker: without
REDIS_URL, Celery would otherwise fall back to amqp://guest@localhost and retry it for ever.
"""

from __future__ import annotations

from typing import Any

from celery.signals import celeryd_init

from osutrack.settings import settings_for


@celeryd_init.connect
def check_configuration(**_: Any) -> None:
    """Exit (status 2, one line on stderr) when the worker lacks a URL or credentials, or
    a value is refused."""
    settings_for("worker")
