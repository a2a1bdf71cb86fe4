"""The ASGI entry point: `granian --interface asgi api_shim.asgi:app`."""

from __future__ import annotations

import logging

from api_shim.app import create_app
from osutrack.settings import settings_for

settings = settings_for("api")
logging.basicConfig(
    level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
app = create_app(settings)
